#!/bin/sh
# Runs every test kind and prints one summary. Exit status 1 if any failed.
#   $1: Criterion test binaries   $2: fuzz target names (corpus replays)
#   $3: end-to-end scripts (tests/e2e_*.sh, tests/*_test.py)
# XCC_BUILD names the build directory; the e2e tests use $XCC_BUILD/bin/xc-colo.
set -u
build=${XCC_BUILD:-build}
export XCC_BUILD="$build"
export XCC_BIN="$PWD/$build/bin/xc-colo"
failed=""
passed=0

run() {
    name=$1; shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "FAILED: $name (exit $?)"
        failed="$failed $name"
    fi
}

for t in $1; do
    run "$(basename "$t")" "$t" --jobs 1 -q
done
for f in $2; do
    if [ -d "tests/corpus/$f" ]; then
        run "replay_$f" "$build/tests/replay_$f" "tests/corpus/$f"
    else
        echo "FAILED: replay_$f: tests/corpus/$f is missing"
        failed="$failed replay_$f"
    fi
done
for e in $3; do
    case "$e" in
    *.py) run "$(basename "$e")" "${PYTHON:-python3}" "$e" ;;
    *) run "$(basename "$e")" sh "$e" ;;
    esac
done

echo
if [ -n "$failed" ]; then
    echo "TESTS: $passed passed, FAILED:$failed"
    exit 1
fi
echo "TESTS: $passed passed, 0 failed"
