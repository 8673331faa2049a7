#!/bin/sh
# --threads N: parallel classification and encoding restores byte-exact.
#
#   save       a live XBZRLE save of a busy guest (hotpages, then
#              random:400000:0.5) piped into restore, for N = 1, 2 and 4:
#              restore exits 0 (its DIGEST check passed) and the target's
#              digest equals the source's, paused where the save left it.
#              The stats JSON names N threads with a busy time for each, and
#              the cache took pages (the sharded path ran).
#   checkpoint three XBZRLE checkpoints with --threads 4 into restore
#              --checkpointed over loopback TCP: the target equals the
#              digest logged for checkpoint 3.
#   usage      --threads 0, 65, x and an empty value are bad usage (exit 2,
#              message names the option), and nothing is created.
#   bench      `bench threads --json` (1 rep, 2 epochs, --threads 1,2) gives
#              every cell a row per count with its pass rate and the
#              machine's two ceilings measured beside it: ratio 1 for the
#              first count, positive rates for the second.
#
# Env: XCC_BIN; E2E_SEED (the guests' seeds; printed).
set -u
e2e_tmp=thr
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_e2e.sh"
. "$here/lib_progress.sh"
tag="thr$$"
seed=$(rand 100000 guest-seed)

digest() { "$X" sim digest "$1" 2>/dev/null; }

# ---- save | restore for N = 1, 2, 4 ----------------------------------------
for wl in hotpages random:400000:0.5; do
    src="${tag}s"
    guests="$guests $src"
    "$X" sim start "$src" --mem 32M --workload "$wl" --seed "$seed" \
        >/dev/null || { bad "sim start $wl"; continue; }
    wait_ticks "$src" 1 || bad "$wl: the guest made no progress"
    for n in 1 2 4; do
        tgt="${tag}t$n"
        guests="$guests $tgt"
        what="$wl, --threads $n"
        if ! "$X" save -q --live --xbzrle --threads "$n" \
                --stats-json "$tmp/$n.json" "sim:$src" - 2>"$tmp/save.err" |
             "$X" restore -q - "sim:$tgt" 2>"$tmp/restore.err"; then
            bad "$what: save | restore: $(cat "$tmp/save.err" "$tmp/restore.err")"
        elif [ "$(digest "$src")" = "$(digest "$tgt")" ]; then
            ok "$what: restored, DIGEST checked, target equals source"
        else
            bad "$what: target $(digest "$tgt"), source $(digest "$src")"
        fi
        if "$PY" - "$tmp/$n.json" "$n" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
e = d["encode"]
assert e["threads"] == n, e
assert len(e["thread-busy-ms"]) == n, e
assert all(t >= 0 for t in e["thread-busy-ms"]), e
assert e["pages"] >= d["iterations"][0]["pages"] > 0, e
assert e["wall-ms"] > 0, e
assert d["xbzrle-cache"]["inserts"] > 0, d["xbzrle-cache"]
print("    %s xbzrle pages, %s cache hits, busy ms %s" % (
    d["xbzrle-cache"]["pages"], d["xbzrle-cache"]["cache-hit"],
    e["thread-busy-ms"]))
EOF
        then ok "$what: stats JSON: $n threads, a busy time each, cache used"
        else bad "$what: stats JSON"
        fi
        "$X" sim stop "$tgt" >/dev/null 2>&1
        "$X" sim unpause "$src" >/dev/null
    done
    "$X" sim stop "$src" >/dev/null 2>&1
done

# ---- checkpoint --threads 4 --------------------------------------------------
src="${tag}c"
tgt="${tag}r"
guests="$guests $src $tgt"
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if "$X" sim start "$src" --mem 32M --workload hotpages --seed "$seed" >/dev/null; then
    ( "$X" restore --checkpointed -q --listen "tcp:127.0.0.1:$port" \
          "sim:$tgt" 2>"$tmp/ck.err"; echo $? >"$tmp/ck.rc" ) &
    rpid=$!
    pids="$pids $rpid"
    "$X" checkpoint --xbzrle --threads 4 --count 3 --interval 10 -q \
        --digest-log "$tmp/ck.log" "sim:$src" "tcp:127.0.0.1:$port"
    rc=$?
    wait "$rpid"
    want=$(awk '$1 == 3 { print $2 }' "$tmp/ck.log")
    if [ $rc = 0 ] && [ "$(cat "$tmp/ck.rc")" = 0 ] && [ -n "$want" ] &&
        [ "$want" = "$(digest "$tgt")" ]; then
        ok "checkpoint --threads 4: 3 checkpoints, target equals checkpoint 3"
    else
        bad "checkpoint --threads 4: sender $rc, receiver $(cat "$tmp/ck.rc"), log '$want', target $(digest "$tgt"): $(cat "$tmp/ck.err")"
    fi
else
    bad "sim start (checkpoint)"
fi

# ---- bad usage ---------------------------------------------------------------
for v in 0 65 x ""; do
    "$X" save --threads "$v" "sim:$src" "$tmp/never" 2>"$tmp/err"
    rc=$?
    if [ $rc = 2 ] && grep -q -- "--threads" "$tmp/err"; then
        ok "--threads '$v' refused, exit 2"
    else
        bad "--threads '$v': exit $rc, $(cat "$tmp/err")"
    fi
done
[ -e "$tmp/never" ] && bad "a refused save created its file"

# ---- bench threads: the rows and the machine's ceilings ----------------------
if "$X" bench threads --json --reps 1 --epochs 2 --threads 1,2 \
        >"$tmp/bench.json" 2>"$tmp/bench.err"; then
    if python3 - "$tmp/bench.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cpus"] >= 1, d
assert len(d["cells"]) == 3, d["cells"]
for c in d["cells"]:
    rows = c["rows"]
    assert [r["threads"] for r in rows] == [1, 2], rows
    assert rows[0]["machine-ratio"] == 1 and rows[0]["machine-compute-ratio"] == 1, rows[0]
    for r in rows:
        for k in ("pass-pages-per-s", "encode-pages-per-s",
                  "machine-pages-per-s", "machine-compute-pages-per-s"):
            assert r[k] > 0, (c["workload"], k, r)
        assert r["machine-ratio"] > 0 and r["machine-compute-ratio"] > 0, r
PY
    then
        ok "bench threads: rows for 1 and 2 threads, machine ceilings beside them"
    else
        bad "bench threads: JSON: $(head -c 600 "$tmp/bench.json")"
    fi
else
    bad "bench threads failed: $(tail -n 3 "$tmp/bench.err")"
fi

seed_note
echo "e2e_threads: $checks checks, $failures failed"
[ "$failures" = 0 ]
