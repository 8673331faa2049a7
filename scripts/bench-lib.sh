# bench-lib.sh - the set-up the live-migration benchmarks share, sourced by
# bench-bandwidth.sh and bench-migrate.sh (not run on its own).
#
# Before sourcing, set bench_name (messages and the scratch directory's name
# start with it). Afterwards:
#   xcc     the xc-colo binary (absolute path; exit 2 when it is missing)
#   py      the Python interpreter
#   tmp     a scratch directory, removed on exit
#   guests  sim guests to stop on exit (add every name you create)
#   status  0; set to 1 by a run that failed (exit with it)
# and migrate_checked (below).
#
# Env: XCC_BUILD (default build), PYTHON (default python3).
# shellcheck shell=sh disable=SC2034 # the variables are the sourcer's
build=${XCC_BUILD:-build}
xcc="$build/bin/xc-colo"
case "$xcc" in /*) ;; *) xcc="$PWD/$xcc" ;; esac
py=${PYTHON:-python3}
tmp=$(mktemp -d "/tmp/xc-colo-${bench_name:?set before sourcing}.XXXXXX") ||
    exit 1
guests=""
status=0

bench_cleanup() {
    for g in $guests; do "$xcc" sim stop "$g" >/dev/null 2>&1; done
    rm -rf "$tmp"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

[ -x "$xcc" ] || { echo "$bench_name: $xcc not found" >&2; exit 2; }

# migrate_checked WHAT SRC DST JSON [OPTION...]: live-migrates sim:SRC with
# the options through a pipe into a restore to a new sim:DST (as `migrate
# exec:` hands it the stream), its figures into JSON. Then checks DST's
# memory against SRC's (paused: the migration leaves it so), stops DST and
# continues SRC, so that the next run migrates a running guest again. A
# failure is reported, naming WHAT, and sets status=1.
migrate_checked() {
    mc_what=$1 mc_src=$2 mc_dst=$3 mc_json=$4
    shift 4
    guests="$guests $mc_dst"
    if ! "$xcc" migrate -q "$@" --stats-json "$mc_json" "sim:$mc_src" \
            "exec:'$xcc' restore -q - sim:$mc_dst"; then
        echo "$bench_name: $mc_what: migration failed" >&2
        status=1
    elif [ "$("$xcc" sim digest "$mc_src")" != \
           "$("$xcc" sim digest "$mc_dst")" ]; then
        echo "$bench_name: $mc_what: target differs from source" >&2
        status=1
    fi
    "$xcc" sim stop "$mc_dst" >/dev/null 2>&1
    "$xcc" sim unpause "$mc_src" >/dev/null 2>&1 ||
        { echo "$bench_name: $mc_what: cannot continue $mc_src" >&2; status=1; }
}
