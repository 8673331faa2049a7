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
run_micro threads --reps 5

# run_script PART SCRIPT [VAR=VALUE...]: scripts/SCRIPT with the variables
# set, its output in micro/PART.txt and PART.stderr; a failure is reported
# and does not stop the others.
run_script() {
    part=$1 script=$2
    shift 2
    echo "bench.sh: scripts/$script" >&2
    if ! env "$@" sh "$here/$script" >"$out/micro/$part.txt" \
            2>"$out/micro/$part.stderr"; then
        echo "bench.sh: $script failed: $(tail -n 1 "$out/micro/$part.stderr")" >&2
        micro_failed="$micro_failed $part"
    fi
}

# Live migration (issue 5's table) and checkpoint rate/latency (issue 6's).
run_script migrate bench-migrate.sh XCC_BUILD="$build" \
    BENCH_JSON="$out/micro/migrate.jsonl"
run_script bandwidth bench-bandwidth.sh XCC_BUILD="$build" \
    BENCH_JSON="$out/micro/bandwidth.jsonl"
run_script wire bench-wire.sh XCC_BUILD="$build" \
    BENCH_JSON="$out/micro/wire.jsonl"
run_script checkpoint bench-checkpoint.sh XCC_BIN="$xcc" \
    CK_OUT="$out/micro/checkpoint.json"

"${PYTHON:-python3}" "$here/bench-run" --quick --xc-colo "$xcc" --out "$out"
status=$?
echo "end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/micro/loadavg.txt"

[ -n "$micro_failed" ] && echo "bench.sh: micro-benchmarks that did not run:$micro_failed" >&2
echo "bench.sh: results in $out/ (summary.md, results.json, charts/)" >&2
exit $status
