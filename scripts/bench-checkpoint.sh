#!/bin/sh
# Checkpoint rate and latency (issue 6's benchmark): a 1 GiB sim guest
# running random:R (R sized so that about CK_PAGES pages are dirtied per
# epoch at each interval), replicated over loopback TCP with
# `xc-colo checkpoint` into `xc-colo restore --checkpointed --listen`, at
# intervals of 0 (as fast as possible), 20 and 200 ms, with XBZRLE and the
# map cache each on and off. Prints a table, then the same as JSON (last
# line, and in $CK_OUT if set).
#
# Figures are steady state: the first quarter of each run's checkpoints is
# left out (checkpoint 1 closes the live phase: it is a migration's final
# pass, not a checkpoint's), then
#   ckpt/s        checkpoints per second (pause to pause)
#   pause p50/p99 guest paused per checkpoint, ms
#   commit p50    CHECKPOINT written -> receiver's acknowledgement read, ms
#   KiB/ckpt      stream bytes per checkpoint; pages/ckpt pages sent
# --no-verify and no digest log: both hash memory inside the pause.
#
# Env: XCC_BIN or XCC_BUILD (default build), CK_MEM (1G), CK_PAGES (1000),
# CK_INTERVALS ("0 20 200"), CK_MODES ("xbzrle+mc plain+mc xbzrle+nomc
# plain+nomc"), CK_SECONDS (seconds of checkpoints per run at 20/200 ms, 4).
set -u
X=${XCC_BIN:-$PWD/${XCC_BUILD:-build}/bin/xc-colo}
PY=${PYTHON:-python3}
mem=${CK_MEM:-1G}
pages=${CK_PAGES:-1000}
intervals=${CK_INTERVALS:-0 20 200}
modes=${CK_MODES:-xbzrle+mc plain+mc xbzrle+nomc plain+nomc}
seconds=${CK_SECONDS:-4}
tag="ckb$$"
tmp=$(mktemp -d /tmp/xc-colo-ckb.XXXXXX) || exit 1
guest=""
target=""

cleanup() {
    [ -n "$guest" ] && "$X" sim stop "$guest" >/dev/null 2>&1
    [ -n "$target" ] && "$X" sim stop "$target" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# At interval 0 an epoch lasts about one checkpoint cycle (a few ms); the
# guest only runs between unpause and the next pause, so it dirties fewer.
rate_for() { # interval_ms
    case "$1" in
    0) echo $((pages * 250)) ;;          # a ~4 ms cycle
    *) echo $((pages * 1000 / $1)) ;;
    esac
}

count_for() { # interval_ms
    case "$1" in
    0) echo 400 ;;
    *) echo $((seconds * 1000 / $1)) ;;
    esac
}

: > "$tmp/results"
for iv in $intervals; do
    rate=$(rate_for "$iv")
    guest="${tag}g$iv"
    "$X" sim start "$guest" --mem "$mem" --workload "random:$rate:0.05" \
        --seed 5 >/dev/null || { echo "sim start failed"; exit 1; }
    for mode in $modes; do
        opts="--no-verify --max-iters 2"
        case "$mode" in xbzrle*) opts="$opts --xbzrle" ;; esac
        ropts="--no-verify"
        case "$mode" in *nomc) opts="$opts --no-map-cache"
                              ropts="$ropts --no-map-cache" ;; esac
        target="${tag}t"
        port=$(free_port)
        "$X" restore --checkpointed $ropts -q --listen "tcp:127.0.0.1:$port" \
            "sim:$target" 2> "$tmp/r.err" &
        rpid=$!
        "$X" checkpoint $opts -q --count "$(count_for "$iv")" \
            --interval "$iv" --stats-json "$tmp/s.json" "sim:$guest" \
            "tcp:127.0.0.1:$port" || echo "checkpoint failed ($mode, $iv ms)"
        wait $rpid || echo "restore failed ($mode, $iv ms): $(tail -1 "$tmp/r.err")"
        "$X" sim stop "$target" >/dev/null 2>&1
        "$X" sim unpause "$guest" >/dev/null 2>&1
        "$PY" - "$tmp/s.json" "$mode" "$iv" "$rate" >> "$tmp/results" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["checkpoint"]["checkpoints"]
c = c[max(1, len(c) // 4):]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, -(-len(v) * p // 100) - 1))] if v else None
pause = [e["pause-ms"] for e in c]
commit = [e["commit-ms"] for e in c if e["commit-ms"] is not None]
span = (c[-1]["at-ms"] - c[0]["at-ms"]) / 1e3
print(json.dumps({
    "mode": sys.argv[2], "interval_ms": int(sys.argv[3]),
    "random_rate": int(sys.argv[4]), "checkpoints": len(c),
    "per_second": round((len(c) - 1) / span, 1) if span > 0 else None,
    "pause_p50_ms": round(pct(pause, 50), 3),
    "pause_p99_ms": round(pct(pause, 99), 3),
    "commit_p50_ms": round(pct(commit, 50), 3) if commit else None,
    "kib_per_checkpoint": round(sum(e["bytes"] for e in c) / len(c) / 1024, 1),
    "pages_per_checkpoint": round(sum(e["pages"] for e in c) / len(c), 1),
}))
EOF
    done
    "$X" sim stop "$guest" >/dev/null 2>&1
    guest=""
done

"$PY" - "$tmp/results" "${CK_OUT:-}" <<'EOF'
import json, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), platform.machine())
print(f"checkpoint benchmark: 1 GiB sim guest, loopback TCP, {cpu}")
print(f"{'interval':>8} {'mode':<12} {'random:R':>9} {'ckpt/s':>7} "
      f"{'pause p50':>9} {'p99':>7} {'commit p50':>10} {'KiB/ckpt':>9} "
      f"{'pages/ckpt':>10}")
for r in rows:
    f = lambda v, w, p=2: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    print(f"{r['interval_ms']:>6}ms {r['mode']:<12} {r['random_rate']:>9} "
          f"{f(r['per_second'], 7, 1)} {f(r['pause_p50_ms'], 9)} "
          f"{f(r['pause_p99_ms'], 7)} {f(r['commit_p50_ms'], 10)} "
          f"{f(r['kib_per_checkpoint'], 9, 0)} {f(r['pages_per_checkpoint'], 10, 0)}")
out = json.dumps({"cpu": cpu, "results": rows})
if sys.argv[2]:
    open(sys.argv[2], "w").write(out + "\n")
print(out)
EOF
