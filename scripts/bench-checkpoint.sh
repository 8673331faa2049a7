#!/bin/sh
# Checkpoint rate and latency (issue 6's benchmark): a sim guest (CK_MEM, 1 GiB)
# replicated over loopback TCP with `xc-colo checkpoint` into
# `xc-colo restore --checkpointed --listen`, with XBZRLE and the map cache
# each on and off. Two sets of runs:
#
#   fixed epochs  the guest runs count:N (the same N pages, spread over RAM,
#                 rewritten every ~1 ms tick) for N in CK_EPOCH_PAGES
#                 (100 1000 10000), checkpointed at an interval probed per
#                 N: from CK_EPOCH_INTERVAL ms (20) doubled until the
#                 slowest mode sees >= 90% exact epochs. Every epoch in
#                 which the guest ran a whole pass holds
#                 exactly N dirty pages; the figures are taken over those
#                 epochs only ("exact" says how many of the run's), so every
#                 mode is measured on the same work.
#   random        random:R (R sized so that about CK_PAGES pages are
#                 dirtied per epoch) at intervals CK_INTERVALS (20 200): a
#                 workload with no fixed page set.
#
# (Interval 0 is not benchmarked: there the guest hardly runs between a
# resume and the next pause, so epochs held 1 to 4000 pages depending on the
# mode's speed, and rows compared different work.)
# Prints a table, then the same as JSON (last line, and in $CK_OUT if set).
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
# Env: XCC_BIN or XCC_BUILD (default build), CK_MEM (1G), CK_EPOCH_PAGES
# ("100 1000 10000"), CK_EPOCH_INTERVAL (20), CK_PAGES (1000),
# CK_INTERVALS ("20 200"), CK_MODES ("xbzrle+mc plain+mc xbzrle+nomc
# plain+nomc"), CK_SECONDS (seconds of checkpoints per run, 4).
set -u
X=${XCC_BIN:-$PWD/${XCC_BUILD:-build}/bin/xc-colo}
PY=${PYTHON:-python3}
mem=${CK_MEM:-1G}
pages=${CK_PAGES:-1000}
intervals=${CK_INTERVALS:-20 200}
epoch_pages=${CK_EPOCH_PAGES:-100 1000 10000}
epoch_interval=${CK_EPOCH_INTERVAL:-20}
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

# run_set WORKLOAD INTERVAL_MS EPOCH_PAGES(or -) MODES OUT: each of MODES
# on one guest, a JSON line per mode appended to OUT.
run_set() {
    wl=$1 iv=$2 ep=$3 set_modes=$4 out=$5
    count=$((seconds * 1000 / iv))
    [ "$count" -ge 10 ] || count=10
    guest="${tag}g"
    "$X" sim start "$guest" --mem "$mem" --workload "$wl" \
        --seed 5 >/dev/null || { echo "sim start failed ($wl)"; exit 1; }
    for mode in $set_modes; do
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
        "$X" checkpoint $opts -q --count "$count" \
            --interval "$iv" --stats-json "$tmp/s.json" "sim:$guest" \
            "tcp:127.0.0.1:$port" || echo "checkpoint failed ($mode, $wl, $iv ms)"
        wait $rpid || echo "restore failed ($mode, $wl, $iv ms): $(tail -1 "$tmp/r.err")"
        "$X" sim stop "$target" >/dev/null 2>&1
        "$X" sim unpause "$guest" >/dev/null 2>&1
        "$PY" - "$tmp/s.json" "$mode" "$iv" "$wl" "$ep" >> "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["checkpoint"]["checkpoints"]
c = c[max(1, len(c) // 4):]
steady = len(c)
ep = None if sys.argv[5] == "-" else int(sys.argv[5])
span = (c[-1]["at-ms"] - c[0]["at-ms"]) / 1e3
rate = round((len(c) - 1) / span, 1) if span > 0 else None
if ep is not None:
    # The same work in every mode: only the epochs that held exactly N.
    c = [e for e in c if e["pages"] == ep]
def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, -(-len(v) * p // 100) - 1))] if v else None
def r3(v):
    return round(v, 3) if v is not None else None
pause = [e["pause-ms"] for e in c]
commit = [e["commit-ms"] for e in c if e["commit-ms"] is not None]
print(json.dumps({
    "mode": sys.argv[2], "interval_ms": int(sys.argv[3]),
    "workload": sys.argv[4], "epoch_pages": ep,
    "checkpoints": steady, "exact": len(c) if ep is not None else None,
    "per_second": rate,
    "pause_p50_ms": r3(pct(pause, 50)),
    "pause_p99_ms": r3(pct(pause, 99)),
    "commit_p50_ms": r3(pct(commit, 50)),
    "kib_per_checkpoint": round(sum(e["bytes"] for e in c) / len(c) / 1024, 1) if c else None,
    "pages_per_checkpoint": round(sum(e["pages"] for e in c) / len(c), 1) if c else None,
}))
EOF
    done
    "$X" sim stop "$guest" >/dev/null 2>&1
    guest=""
}

: > "$tmp/results"
# The interval for count:N: from CK_EPOCH_INTERVAL up, doubled until the
# slowest mode (the last of CK_MODES) sees at least 90% exact epochs, so the
# guest runs a whole pass in nearly every epoch in every mode (a pass of
# 10000 pages takes the guest far longer than one of 100).
slowest=$(echo $modes | awk '{ print $NF }')
for n in $epoch_pages; do
    iv=$epoch_interval
    while :; do
        : > "$tmp/probe"
        run_set "count:$n" "$iv" "$n" "$slowest" "$tmp/probe"
        frac=$("$PY" -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline() or "{}")
e, c = r.get("exact"), r.get("checkpoints")
print(f"{e}/{c}" if e is not None and c else "0/1")' "$tmp/probe")
        echo "count:$n at $iv ms: $frac epochs exact ($slowest)" >&2
        ok=$(echo "$frac" | awk -F/ '{ print ($1 >= 0.9 * $2) ? 1 : 0 }')
        [ "$ok" = 1 ] || [ "$iv" -ge 1000 ] && break
        iv=$((iv * 2))
    done
    run_set "count:$n" "$iv" "$n" "$modes" "$tmp/results"
done
for iv in $intervals; do
    run_set "random:$((pages * 1000 / iv)):0.05" "$iv" - "$modes" "$tmp/results"
done

"$PY" - "$tmp/results" "${CK_OUT:-}" "$mem" <<'EOF'
import json, platform, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), platform.machine())
print(f"checkpoint benchmark: {sys.argv[3]} sim guest, loopback TCP, {cpu}")
print(f"{'interval':>8} {'workload':<18} {'mode':<12} {'exact':>7} {'ckpt/s':>7} "
      f"{'pause p50':>9} {'p99':>7} {'commit p50':>10} {'KiB/ckpt':>9} "
      f"{'pages/ckpt':>10}")
for r in rows:
    f = lambda v, w, p=2: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    exact = f"{r['exact']}/{r['checkpoints']}" if r["exact"] is not None else "-"
    print(f"{r['interval_ms']:>6}ms {r['workload']:<18} {r['mode']:<12} {exact:>7} "
          f"{f(r['per_second'], 7, 1)} {f(r['pause_p50_ms'], 9)} "
          f"{f(r['pause_p99_ms'], 7)} {f(r['commit_p50_ms'], 10)} "
          f"{f(r['kib_per_checkpoint'], 9, 0)} {f(r['pages_per_checkpoint'], 10, 0)}")
out = json.dumps({"cpu": cpu, "mem": sys.argv[3], "results": rows})
if sys.argv[2]:
    open(sys.argv[2], "w").write(out + "\n")
print(out)
EOF
