#!/bin/sh
# --max-bandwidth: a live save (plain and XBZRLE) through a pipe into
# restore stays byte-exact under the limit, the stream's average rate stays
# at or under it (the wait only lengthens the save, so this holds under
# any load), and malformed rates are bad usage (exit 2).
set -u
X=${XCC_BIN:?XCC_BIN must name the xc-colo binary}
name="bw$$"
tmp=$(mktemp -d /tmp/xc-colo-bw.XXXXXX) || exit 1
fail=0
cleanup() {
    "$X" sim stop "$name" >/dev/null 2>&1
    for m in plain xbzrle; do "$X" sim stop "$name-$m" >/dev/null 2>&1; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
bad() { echo "FAIL $*"; fail=1; }

"$X" sim start "$name" --mem 16M --workload random:2000:0.5 --seed 11 \
    >/dev/null || { echo "FAIL sim start"; exit 1; }
# 80 Mbit/s = 10 MB/s: a 16 MiB guest's first pass alone takes > 1.5 s.
for m in plain xbzrle; do
    opt=""; [ $m = xbzrle ] && opt="--xbzrle"
    # shellcheck disable=SC2086
    if ! "$X" save -q --live $opt --max-bandwidth 80M \
            --stats-json "$tmp/$m.json" "sim:$name" - |
         "$X" restore -q - "sim:$name-$m" 2>"$tmp/err-$m"; then
        bad "$m: save | restore under --max-bandwidth 80M: $(cat "$tmp/err-$m")"
        continue
    fi
    echo "ok   $m: save | restore under --max-bandwidth 80M, DIGEST checked"
    rate=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("%.0f %.3f" % (d["ram"]["transferred"] * 8 / (d["total-time"] / 1000),
                     d["total-time"] / 1000))' "$tmp/$m.json")
    bps=${rate% *}
    # The bucket starts full (one 256 KiB burst), so allow 5% over.
    if [ "$bps" -le 84000000 ]; then
        echo "ok   $m: average $bps bit/s over ${rate#* } s, limit 80000000"
    else
        bad "$m: average $bps bit/s, over the 80 Mbit/s limit"
    fi
done
for r in 0 1x -5 "" 12Q 1e30; do
    "$X" save --max-bandwidth "$r" "sim:$name" "$tmp/never" 2>"$tmp/err"
    rc=$?
    if [ $rc = 2 ] && grep -q -- "--max-bandwidth" "$tmp/err"; then
        echo "ok   --max-bandwidth '$r' refused, exit 2"
    else
        bad "--max-bandwidth '$r': exit $rc, $(cat "$tmp/err")"
    fi
done
[ -e "$tmp/never" ] && bad "a refused save created its file"
[ $fail = 0 ] && echo "e2e_bandwidth: all passed"
exit $fail
