#!/bin/sh
# make bench: xc-colo's micro-benchmarks, then the quick benchmark matrix.
# Everything lands under bench-out/ (BENCH_OUT overrides): micro/PART.json and
# PART.stderr for each `xc-colo bench PART --json`, then bench-run's
# results.json, summary.md and charts/. A micro-benchmark that fails (or is
# "not built yet") is reported and does not stop the others; the exit status
# is bench-run's (1 when a matrix run failed).
set -u
build=${XCC_BUILD:-build}
out=${BENCH_OUT:-bench-out}
xcc="$build/bin/xc-colo"
case "$xcc" in /*) ;; *) xcc="$PWD/$xcc" ;; esac
here=$(dirname "$0")

if [ ! -x "$xcc" ]; then
    echo "bench.sh: $xcc not found; run make first (XCC_BUILD names the build dir)" >&2
    exit 2
fi
mkdir -p "$out/micro"
# The machine's load when the run began and ended (README states it).
echo "start $(cut -d' ' -f1-3 /proc/loadavg)" > "$out/micro/loadavg.txt"

micro_failed=""
run_micro() {
    part=$1; shift
    echo "bench.sh: xc-colo bench $part $*" >&2
    if "$xcc" bench "$part" "$@" --json >"$out/micro/$part.json" 2>"$out/micro/$part.stderr"; then
        :
    else
        status=$?
        echo "bench.sh: bench $part failed (exit $status): $(tail -n 1 "$out/micro/$part.stderr")" >&2
        micro_failed="$micro_failed $part"
    fi
}
run_micro codec
run_micro mapcache --mem 1G
run_micro dirty --mem 1G
run_micro save --mem 1G
run_micro cache --mem 64M
run_micro threads --reps 3

# Live migration (issue 5's table) and checkpoint rate/latency (issue 6's).
echo "bench.sh: scripts/bench-migrate.sh" >&2
XCC_BUILD=$build BENCH_JSON="$out/micro/migrate.jsonl" sh "$here/bench-migrate.sh" \
    >"$out/micro/migrate.txt" 2>"$out/micro/migrate.stderr" ||
    { echo "bench.sh: bench-migrate.sh failed: $(tail -n 1 "$out/micro/migrate.stderr")" >&2
      micro_failed="$micro_failed migrate"; }
echo "bench.sh: scripts/bench-bandwidth.sh" >&2
XCC_BUILD=$build BENCH_JSON="$out/micro/bandwidth.jsonl" sh "$here/bench-bandwidth.sh" \
    >"$out/micro/bandwidth.txt" 2>"$out/micro/bandwidth.stderr" ||
    { echo "bench.sh: bench-bandwidth.sh failed: $(tail -n 1 "$out/micro/bandwidth.stderr")" >&2
      micro_failed="$micro_failed bandwidth"; }
echo "bench.sh: scripts/bench-wire.sh" >&2
XCC_BUILD=$build BENCH_JSON="$out/micro/wire.jsonl" sh "$here/bench-wire.sh" \
    >"$out/micro/wire.txt" 2>"$out/micro/wire.stderr" ||
    { echo "bench.sh: bench-wire.sh failed: $(tail -n 1 "$out/micro/wire.stderr")" >&2
      micro_failed="$micro_failed wire"; }
echo "bench.sh: scripts/bench-checkpoint.sh" >&2
XCC_BIN=$xcc CK_OUT="$out/micro/checkpoint.json" sh "$here/bench-checkpoint.sh" \
    >"$out/micro/checkpoint.txt" 2>"$out/micro/checkpoint.stderr" ||
    { echo "bench.sh: bench-checkpoint.sh failed: $(tail -n 1 "$out/micro/checkpoint.stderr")" >&2
      micro_failed="$micro_failed checkpoint"; }

"${PYTHON:-python3}" "$here/bench-run" --quick --xc-colo "$xcc" --out "$out"
status=$?
echo "end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/micro/loadavg.txt"

[ -n "$micro_failed" ] && echo "bench.sh: micro-benchmarks that did not run:$micro_failed" >&2
echo "bench.sh: results in $out/ (summary.md, results.json, charts/)" >&2
exit $status
