# lib_e2e.sh - the preamble e2e_checkpoint.sh and e2e_roundtrip.sh share;
# sourced, not run (the runner runs only tests/e2e_*.sh).
#
# Before sourcing, set e2e_tmp to a short name for the scratch directory.
# It defines X (the xc-colo binary, from XCC_BIN), PY, tmp (a fresh scratch
# directory), the lists `guests` (sim guests to stop) and `pids` (processes
# to kill -9) that the exit trap cleans up, and ok/bad, which count into
# `checks` and `failures`.
X=${XCC_BIN:?XCC_BIN must name the xc-colo binary}
PY=${PYTHON:-python3}
tmp=$(mktemp -d "/tmp/xc-colo-${e2e_tmp:?set e2e_tmp before sourcing}.XXXXXX") ||
    exit 1
guests=""
pids=""
failures=0
checks=0

cleanup() {
    for p in $pids; do
        kill -9 "$p" 2>/dev/null
    done
    for g in $guests; do
        "$X" sim stop "$g" >/dev/null 2>&1
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }
