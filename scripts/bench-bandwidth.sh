#!/bin/sh
# Live migration under --max-bandwidth, where bytes saved become time
# saved: a sim guest running hotpages, then random:50000:0.1, migrated
# through a pipe into a new sim guest with XBZRLE off and on, at a 1 Gbit/s
# and a 10 Gbit/s limit. One row per cell (median of BENCH_REPS runs):
# bytes on the wire, total time, downtime, iterations, and the time and
# bytes of iteration 0 and of the passes after it; then the ratio of plain
# to XBZRLE total time under the same limit, measured in the same run, and
# its bound: iteration 0 sends every page of the guest in both modes (the
# sim guest's RAM is non-zero), so even passes after it that cost nothing
# leave plain's total over plain's iteration 0 as the most XBZRLE can gain.
# random:50000:0.1 also runs as "xbzrle-whole", with --cache-size the
# guest's size, which takes every page of iteration 0 (a uniformly random
# writer leaves a smaller cache little to hit; bench-migrate.sh).
# Every target's memory is checked against its source.
#
# Env: XCC_BUILD (default build), BENCH_MEM (default 256M), BENCH_REPS
# (default 3), BENCH_LIMITS (default "1G 10G"), BENCH_JSON (JSON lines out).
set -u
bench_name=bench-bandwidth
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
mem=${BENCH_MEM:-256M}
reps=${BENCH_REPS:-3}
limits=${BENCH_LIMITS:-1G 10G}

for workload in hotpages random:50000:0.1; do
    src="bb-$$-$(echo "$workload" | tr ':.' '__')"
    guests="$guests $src"
    "$xcc" sim start "$src" --mem "$mem" --workload "$workload" --seed 5 ||
        exit 1
    echo "$workload" > "$tmp/$src.wl"
    sleep 1 # warm-up: the workload reaches its steady dirty rate
    modes="plain xbzrle"
    case $workload in random*) modes="$modes xbzrle-whole" ;; esac
    for limit in $limits; do
        for mode in $modes; do
            opt=""
            [ "$mode" = xbzrle ] && opt="--xbzrle"
            [ "$mode" = xbzrle-whole ] && opt="--xbzrle --cache-size $mem"
            r=1
            while [ "$r" -le "$reps" ]; do
                # shellcheck disable=SC2086
                migrate_checked "$workload $limit $mode" "$src" "$src-t" \
                    "$tmp/$src-$limit-$mode-$r.json" \
                    $opt --max-bandwidth "$limit"
                r=$((r + 1))
            done
        done
    done
done

"$py" - "$tmp" "$mem" "$limits" "${BENCH_JSON:-}" <<'PY'
import glob, json, os, statistics, sys
tmp, mem, limits, out = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4]
rows = {}
for f in sorted(glob.glob(os.path.join(tmp, "bb-*.json"))):
    base = os.path.basename(f)[:-5]
    # bb-PID-WORKLOAD-LIMIT-MODE-REP; MODE may hold a dash (xbzrle-whole)
    head, rep = base.rsplit("-", 1)
    for mode in ("xbzrle-whole", "xbzrle", "plain"):
        if head.endswith("-" + mode):
            head = head[:-len(mode) - 1]
            break
    src, limit = head.rsplit("-", 1)
    d = json.load(open(f))
    rows.setdefault((src, limit, mode), []).append(d)
def med(ds, f):
    return statistics.median(f(d) for d in ds)
def after0(d, key):
    its = d.get("iterations", [])
    return sum(i.get(key, 0) for i in its[1:])
def iter0(d, key):
    its = d.get("iterations", [])
    return its[0].get(key, 0) if its else 0
print("| workload (%s, pipe) | limit | mode | bytes | total s | downtime ms | iterations | iteration 0: s, bytes | after it: s, bytes |" % mem)
print("|---|---|---|---|---|---|---|---|---|")
lines = []
for (src, limit, mode), ds in sorted(rows.items()):
    wl = open(os.path.join(tmp, src + ".wl")).read().strip()
    r = {"workload": wl, "mem": mem, "limit": limit, "mode": mode,
         "runs": len(ds),
         "bytes": med(ds, lambda d: d["ram"]["transferred"]),
         "total_s": med(ds, lambda d: d["total-time"] / 1000),
         "downtime_ms": med(ds, lambda d: d["downtime"]),
         "iterations": med(ds, lambda d: d["ram"]["dirty-sync-count"]),
         "iter0_s": med(ds, lambda d: iter0(d, "duration-ms") / 1000),
         "iter0_bytes": med(ds, lambda d: iter0(d, "bytes")),
         "after_iter0_s": med(ds, lambda d: after0(d, "duration-ms") / 1000),
         "after_iter0_bytes": med(ds, lambda d: after0(d, "bytes"))}
    lines.append(r)
    print("| %s | %s | %s | %d | %.2f | %.0f | %d | %.2f, %d | %.3f, %d |" % (
        wl, limit, mode, r["bytes"], r["total_s"], r["downtime_ms"],
        r["iterations"], r["iter0_s"], r["iter0_bytes"], r["after_iter0_s"],
        r["after_iter0_bytes"]))
print()
for r in lines:
    if r["mode"] != "plain":
        continue
    bound = r["total_s"] / r["iter0_s"] if r["iter0_s"] else float("nan")
    for x in [q for q in lines if q["mode"] != "plain" and
              q["workload"] == r["workload"] and q["limit"] == r["limit"]]:
        x["xbzrle_time_ratio"] = r["total_s"] / x["total_s"]
        x["time_ratio_bound"] = bound
        after = (r["after_iter0_s"] / x["after_iter0_s"]
                 if x["after_iter0_s"] else float("nan"))
        x["after_iter0_time_ratio"] = after
        print("%s at %s, %s: plain / XBZRLE total time %.2fx (bound %.2fx: "
              "plain's total over its iteration 0), bytes %.2fx; after "
              "iteration 0: time %.2fx, bytes %.2fx" % (
                  r["workload"], r["limit"], x["mode"], x["xbzrle_time_ratio"],
                  bound, r["bytes"] / x["bytes"], after,
                  r["after_iter0_bytes"] / x["after_iter0_bytes"]
                  if x["after_iter0_bytes"] else float("nan")))
if out:
    with open(out, "w") as f:
        for r in lines:
            f.write(json.dumps(r) + "\n")
PY
exit $status
