#!/bin/sh
# Live migration through a pipe: a 1 GiB sim guest running hotpages, then
# sparse64, then random:50000:0.1, migrated with XBZRLE off and on into a
# new sim guest (restore reading the pipe, as `migrate exec:...` gives it).
# Prints one table row per run: bytes on the wire after iteration 0, total
# time, downtime, iterations and the XBZRLE cache-miss rate, and checks that
# the target's memory equals the source's. Targets: >= 5x fewer bytes after
# iteration 0 with XBZRLE on hotpages and sparse64, downtime <= 50 ms
# (issue 5); >= 3x on random:50000:0.1 (issue 16).
#
# random:50000:0.1 writes pages uniformly at random over the whole guest,
# so a page dirtied after iteration 0 is mostly one sent only in iteration
# 0: no cache smaller than the guest holds it (the default 64 MiB holds a
# sixteenth of 1 GiB), whatever it predicts. That workload also runs as
# "xbzrle-whole", with --cache-size the guest's size: such a cache takes
# every page of iteration 0 (hot_predict.h), so every page sent again has a
# base.
#
# Env: XCC_BUILD (default build), BENCH_MEM (default 1G), BENCH_REPS
# (default 1: runs per cell, the table shows the median), BENCH_ARGS (extra
# migrate options for every run), BENCH_JSON (a file to write the rows to as
# JSON lines).
set -u
bench_name=bench-migrate
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
mem=${BENCH_MEM:-1G}
reps=${BENCH_REPS:-1}
extra=${BENCH_ARGS:-}

for workload in hotpages sparse64 random:50000:0.1; do
    key=$(echo "$workload" | tr ':.' '__')
    src="bm-$$-$key"
    guests="$guests $src"
    "$xcc" sim start "$src" --mem "$mem" --workload "$workload" || exit 1
    sleep 1
    modes="plain xbzrle"
    case $workload in random*) modes="$modes xbzrle-whole" ;; esac
    for mode in $modes; do
        opt=""
        [ "$mode" = xbzrle ] && opt="--xbzrle"
        [ "$mode" = xbzrle-whole ] && opt="--xbzrle --cache-size $mem"
        r=1
        while [ $r -le "$reps" ]; do
            # shellcheck disable=SC2086
            migrate_checked "$workload $mode" "$src" "$src-t" \
                "$tmp/$key-$mode-$r.json" $opt $extra
            r=$((r + 1))
        done
    done
    "$xcc" sim stop "$src" >/dev/null 2>&1
done

"$py" - "$tmp" "$reps" "$mem" "${BENCH_JSON:-}" "$extra" <<'EOF' || status=1
import glob, json, os, statistics, sys
tmp, reps, mem, jout, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = []
WORKLOADS = ("hotpages", "sparse64", "random:50000:0.1")
TARGET = {"hotpages": 5, "sparse64": 5, "random:50000:0.1": 3}
for wl in WORKLOADS:
    key = wl.replace(":", "_").replace(".", "_")
    for mode in ("plain", "xbzrle", "xbzrle-whole"):
        runs = [json.load(open(p)) for p in sorted(glob.glob("%s/%s-%s-[0-9]*.json" % (tmp, key, mode)))]
        if not runs:
            continue
        def med(f):
            return statistics.median(f(s) for s in runs)
        rows.append({
            "workload": wl, "mode": mode, "mem": mem, "runs": len(runs),
            "after_iter0_bytes": med(lambda s: sum(i["bytes"] for i in s["iterations"][1:])),
            "wire_bytes": med(lambda s: s["ram"]["transferred"]),
            "total_time_ms": med(lambda s: s["total-time-ms"]),
            "downtime_ms": med(lambda s: s["downtime-ms"]),
            "digest_downtime_ms": med(lambda s: s.get("digest-downtime-ms", 0)),
            "iterations": med(lambda s: len(s["iterations"])),
            "cache_miss_rate": med(lambda s: s["xbzrle-cache"]["cache-miss-rate"]),
            "xbzrle_pages": med(lambda s: s["xbzrle-cache"]["pages"]),
        })
print("live migration through a pipe, %s sim guest, median of %d run(s) per row%s"
      % (mem, reps, ", options: " + extra if extra else ""))
print("%-17s %-12s %14s %12s %10s %10s %6s %10s" % (
    "workload", "mode", "after iter 0", "wire MiB", "total ms", "downtime", "iters", "miss rate"))
by = {}
for r in rows:
    by[(r["workload"], r["mode"])] = r
    print("%-17s %-12s %14d %12.1f %10.1f %10.1f %6d %10s" % (
        r["workload"], r["mode"], r["after_iter0_bytes"], r["wire_bytes"] / 2**20,
        r["total_time_ms"], r["downtime_ms"], r["iterations"],
        "%.3f" % r["cache_miss_rate"] if r["mode"] != "plain" else "-"))
ok = True
for wl in WORKLOADS:
    p = by.get((wl, "plain"))
    for m in ("xbzrle", "xbzrle-whole"):
        x = by.get((wl, m))
        if not p or not x:
            continue
        ratio = p["after_iter0_bytes"] / max(1, x["after_iter0_bytes"])
        worst = max(p["downtime_ms"], x["downtime_ms"])
        print("%-17s %-12s bytes after iteration 0: %.1fx fewer than plain "
              "(target >= %dx); worst downtime %.1f ms (target <= 50)"
              % (wl, m, ratio, TARGET[wl], worst))
if jout:
    with open(jout, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
EOF
exit $status
