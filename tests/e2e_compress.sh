#!/bin/sh
# --compress zstd: byte-exact restores of live saves (alone and with
# --xbzrle) of busy guests, a checkpoint stream with compression restored
# --checkpointed, COMPRESSED_PAGES records seen by inspect, compression
# off by itself on random memory, bad usage (exit 2: unknown method or
# level, with --xen-compat), and a hostile COMPRESSED_PAGES record refused
# by restore (exit 1, naming the record). REPS (default 3) repetitions of
# each round trip.
set -u
e2e_tmp=zstd
. "$(dirname "$0")/lib_e2e.sh"
reps=${REPS:-3}
tag="zs$$"

# An idle-Linux-like image (compressible) under a random workload gentle
# enough to leave it compressible (500 pages/s, 5% of their bytes),
# and the ledger + hotpages guest (its ledger proves a consistent image).
"$X" sim create "${tag}l" --mem 32M --fill linux --seed 7 >/dev/null &&
    "$X" sim resume "${tag}l" --workload random:500:0.05 --seed 7 >/dev/null ||
    { bad "sim create --fill linux + resume"; exit 1; }
guests="$guests ${tag}l"
"$X" sim start "${tag}h" --mem 32M --workload ledger+hotpages --seed 3 \
    >/dev/null || { bad "sim start ledger+hotpages"; exit 1; }
guests="$guests ${tag}h"

for g in l h; do
    for mode in "--compress zstd" "--compress zstd:3 --xbzrle"; do
        r=1
        while [ $r -le "$reps" ]; do
            t="${tag}t"
            guests="$guests $t"
            # shellcheck disable=SC2086
            if "$X" save -q --live $mode --stats-json "$tmp/s.json" \
                    "sim:$tag$g" - 2>"$tmp/err" |
                    "$X" restore -q - "sim:$t" 2>>"$tmp/err"; then
                ok "$g '$mode' run $r: save | restore, DIGEST matched"
            else
                bad "$g '$mode' run $r: $(cat "$tmp/err")"
            fi
            if [ $g = h ] && ! "$X" sim verify "$t" >/dev/null 2>&1; then
                bad "$g '$mode' run $r: the restored ledger is inconsistent"
            fi
            "$X" sim stop "$t" >/dev/null 2>&1
            "$X" sim unpause "$tag$g" >/dev/null 2>&1
            r=$((r + 1))
        done
        if [ $g = l ] && "$PY" - "$tmp/s.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["compression"]
assert c["compressed-batches"] > 0 and c["frame-bytes"] * 2 < c["raw-bytes"], c
PYEOF
        then
            ok "$g '$mode': compression section, frames under half the raw bytes"
        elif [ $g = l ]; then
            bad "$g '$mode': compression figures: $(cat "$tmp/s.json")"
        fi
    done
done

# A non-live image to a file: inspect sees COMPRESSED_PAGES records.
"$X" sim pause "${tag}l" >/dev/null
if "$X" save -q --compress zstd "sim:${tag}l" "$tmp/img" &&
        "$X" inspect --json "$tmp/img" >"$tmp/insp.json" &&
        "$PY" - "$tmp/img" <<'PYEOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
off, n = 40, 0
while off < len(data):
    t, ln = struct.unpack_from("<II", data, off)
    n += t == 0x58430007
    off += 8 + ln + (-ln % 8)
assert n > 0, "no COMPRESSED_PAGES record"
PYEOF
then
    ok "save --compress to a file: inspect accepts it, COMPRESSED_PAGES present"
else
    bad "save --compress to a file / inspect"
fi

# --threads 2 decides per batch as one thread does: the same paused guest
# saved with 1 and 2 threads makes as many compression decisions (one per
# batch, whatever the lanes), and the 2-thread image restores exact.
guests="$guests ${tag}t2"
if "$X" save -q --compress zstd --threads 1 --stats-json "$tmp/t1.json" \
        "sim:${tag}l" "$tmp/img1" &&
        "$X" save -q --compress zstd --threads 2 --stats-json "$tmp/t2.json" \
            "sim:${tag}l" "$tmp/img2" &&
        "$X" restore -q "$tmp/img2" "sim:${tag}t2" &&
        [ "$("$X" sim digest "${tag}l")" = "$("$X" sim digest "${tag}t2")" ] &&
        "$PY" - "$tmp/t1.json" "$tmp/t2.json" <<'PYEOF'
import json, sys
one, two = (json.load(open(f)) for f in sys.argv[1:3])
assert two["encode"]["threads"] == 2, two["encode"]
c1, c2 = one["compression"], two["compression"]
assert c1["batches"] == c2["batches"] > 0, (c1, c2)
print("    %d decisions with 1 thread and with 2 (%d and %d compressed)" % (
    c2["batches"], c1["compressed-batches"], c2["compressed-batches"]))
PYEOF
then
    ok "--compress --threads 2: one decision per batch, as one thread; exact"
else
    bad "--compress --threads 2: $(cat "$tmp/t1.json" "$tmp/t2.json" 2>/dev/null | head -c 900)"
fi

# Hostile: frame_len of the first COMPRESSED_PAGES record off by 8.
"$PY" - "$tmp/img" "$tmp/bad" <<'PYEOF'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
off = 40
while True:
    t, ln = struct.unpack_from("<II", data, off)
    if t == 0x58430007:
        count, flen = struct.unpack_from("<II", data, off + 8)
        struct.pack_into("<I", data, off + 12, flen + 8)
        break
    off += 8 + ln + (-ln % 8)
open(sys.argv[2], "wb").write(data)
PYEOF
"$X" restore -q "$tmp/bad" "sim:${tag}x" 2>"$tmp/err"
rc=$?
guests="$guests ${tag}x"
if [ $rc = 1 ] && grep -q "COMPRESSED_PAGES record (type 0x58430007) at offset" "$tmp/err"; then
    ok "hostile COMPRESSED_PAGES: restore exit 1, $(head -c 160 "$tmp/err")"
else
    bad "hostile COMPRESSED_PAGES: exit $rc, $(cat "$tmp/err")"
fi
"$X" sim unpause "${tag}l" >/dev/null

# Random memory: compression switches itself off, the restore is exact.
"$X" sim create "${tag}r" --mem 16M --fill random --seed 5 >/dev/null
guests="$guests ${tag}r ${tag}rt"
if "$X" save -q --compress zstd --stats-json "$tmp/r.json" "sim:${tag}r" - |
        "$X" restore -q - "sim:${tag}rt" &&
        [ "$("$X" sim digest "${tag}r")" = "$("$X" sim digest "${tag}rt")" ] &&
        "$PY" - "$tmp/r.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))["compression"]
assert c["compressed-batches"] == 0 and c["not-paying"] == 0, c
assert c["skipped"] == c["batches"] == c["probes"], c
PYEOF
then
    ok "random memory: only samples tried, PAGE_DATA, exact"
else
    bad "random memory: $(cat "$tmp/r.json" 2>/dev/null | head -c 600)"
fi

# A checkpoint stream with compression, restored --checkpointed.
"$X" checkpoint -q --compress zstd --xbzrle --count 3 --interval 10 \
    "sim:${tag}h" "$tmp/ck" 2>"$tmp/err" &&
    "$X" restore -q --checkpointed "$tmp/ck" "sim:${tag}c" 2>>"$tmp/err"
rc=$?
guests="$guests ${tag}c"
if [ $rc = 0 ] && "$X" sim verify "${tag}c" >/dev/null 2>&1; then
    ok "checkpoint --compress: restore --checkpointed, ledger consistent"
else
    bad "checkpoint --compress: exit $rc: $(cat "$tmp/err")"
fi
"$X" sim unpause "${tag}h" >/dev/null 2>&1

# Bad usage: exit 2, naming the option.
for a in lz4 zstd:0 zstd:20 zstd: zstdx "zstd:1 --xen-compat"; do
    # shellcheck disable=SC2086
    "$X" save --compress $a "sim:${tag}h" "$tmp/never" 2>"$tmp/err"
    rc=$?
    if [ $rc = 2 ] && grep -q -- "--compress" "$tmp/err"; then
        ok "--compress $a: exit 2"
    else
        bad "--compress $a: exit $rc, $(cat "$tmp/err")"
    fi
done
[ -e "$tmp/never" ] && bad "a refused save created its file"

echo "e2e_compress: $checks checks, $failures failed"
[ $failures = 0 ]
