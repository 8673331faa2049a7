#!/bin/sh
# e2e_sim.sh - `xc-colo sim ...` end to end: start/list/pause/unpause/digest/
# verify/stop, restore-style copies resumed and verified, a corrupted ledger
# page named by verify, crash clean-up, and bad input (exit 1, clear message,
# nothing left behind). Uses $XCC_BIN; guest names carry this shell's pid.
set -u
XCC=${XCC_BIN:-build/bin/xc-colo}
P=e2esim-$$
ROOT=${XCC_SIM_ROOT:-/dev/shm/xc-colo}
failures=0
tmp=$(mktemp -d)
X=$XCC PY=${PYTHON:-python3}
. "$(dirname "$0")/lib_progress.sh"

cleanup() {
    for g in "$ROOT/$P"-*; do
        [ -d "$g" ] && "$XCC" sim stop "$(basename "$g")" >/dev/null 2>&1
    done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# expect STATUS DESCRIPTION CMD...: runs CMD, checks its exit status
expect() {
    want=$1; what=$2; shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$what: exit $got, wanted $want"
        sed 's/^/    /' "$tmp/out" "$tmp/err"
        return 1
    fi
    ok "$what"
}

# err_has TEXT: the last command's stderr mentions TEXT
err_has() {
    grep -q -- "$1" "$tmp/err" || { fail "stderr lacks '$1':"; sed 's/^/    /' "$tmp/err"; }
}

pid_of() { sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$ROOT/$1/meta.json"; }
state_of() { "$XCC" sim list | awk -v n="$1" '$1 == n { print $3 }'; }
alive() { # alive PID: there and not a zombie
    [ -r "/proc/$1/stat" ] || return 1
    st=$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)
    [ -n "$st" ] && [ "$st" != Z ]
}

# ---- help ----
for c in start create resume list pause unpause stop digest verify; do
    expect 0 "sim $c --help" "$XCC" sim "$c" --help
done
expect 0 "sim --help" "$XCC" sim --help

# ---- start, list, pause, digest, verify ----
G=$P-a
expect 0 "start ledger+hotpages" "$XCC" sim start "$G" --mem 32M \
    --workload ledger+hotpages --seed 9 || exit 1
pid=$(pid_of "$G")
alive "$pid" || fail "guest process $pid not running"
[ "$(state_of "$G")" = running ] || fail "list state $(state_of "$G"), wanted running"
"$XCC" sim list | grep -q "^$G .* 32M .*ledger+hotpages" || fail "list lacks size/workload"
"$XCC" sim list --json | grep -q "\"name\": \"$G\"" || fail "list --json lacks $G"
grep -q '"tracking": "\(pagemap\|bitmap\)"' "$ROOT/$G/meta.json" || fail "meta lacks tracking"
for k in pid mem_bytes page_size holes workload ram_addr tracking; do
    grep -q "\"$k\":" "$ROOT/$G/meta.json" || fail "meta.json lacks $k"
done

expect 0 "pause" "$XCC" sim pause "$G"
[ "$(state_of "$G")" = paused ] || fail "state after pause: $(state_of "$G")"
d1=$("$XCC" sim digest "$G")
t1=$(ticks_of "$G")
# A negative check: load can only shorten the guest's chance to run, never
# make a paused guest write, so a fixed window is right here.
sleep 0.2
d2=$("$XCC" sim digest "$G")
[ "$d1" = "$d2" ] || fail "digest changed while paused ($d1 $d2)"
[ "$t1" = "$(ticks_of "$G")" ] || fail "ticks moved while paused ($t1 $(ticks_of "$G"))"
echo "$d1" | grep -qx '[0-9a-f]\{32\}' || fail "digest '$d1' is not 32 hex digits"
[ "$("$XCC" sim digest "$G" --chunks | wc -l)" -eq 17 ] || fail "--chunks: want 1 + 16 lines"
expect 0 "verify paused" "$XCC" sim verify "$G"
grep -q '^OK' "$tmp/out" || fail "verify did not print OK"

# copy the paused RAM into a restore target, as a restore would
T=$P-t
expect 0 "create target" "$XCC" sim create "$T" --mem 32M
[ "$(state_of "$T")" = none ] || fail "created target state $(state_of "$T")"
cp "$ROOT/$G/ram" "$ROOT/$T/ram"
expect 0 "unpause" "$XCC" sim unpause "$G"
[ "$(state_of "$G")" = running ] || fail "state after unpause: $(state_of "$G")"
wait_ticks "$G" 2 || fail "guest made no progress after unpause"
d3=$("$XCC" sim digest "$G")
[ "$d3" != "$d1" ] || fail "digest did not change after unpause"
expect 0 "verify running (pauses itself)" "$XCC" sim verify "$G"
[ "$(state_of "$G")" = running ] || fail "verify left the guest $(state_of "$G")"

[ "$("$XCC" sim digest "$T")" = "$d1" ] || fail "target digest differs from the copied RAM"
expect 0 "resume target" "$XCC" sim resume "$T" --workload ledger+hotpages
[ "$(state_of "$T")" = running ] || fail "resumed target state $(state_of "$T")"
wait_ticks "$T" 3 || fail "resumed target made no progress"
expect 0 "verify resumed target" "$XCC" sim verify "$T"
expect 1 "resume running target" "$XCC" sim resume "$T" && err_has "already running"

# corrupt one ledger page (pfn 4400) of the paused target
expect 0 "pause target" "$XCC" sim pause "$T"
"$PY" -c 'import random, sys; sys.stdout.buffer.write(random.Random(int(sys.argv[1])).randbytes(4096))' \
    "$e2e_seed" | dd of="$ROOT/$T/ram" bs=4096 seek=4400 conv=notrunc 2>/dev/null
expect 1 "verify corrupted" "$XCC" sim verify "$T"
grep -q "page pfn 4400:" "$tmp/out" || { fail "verify does not name pfn 4400"; cat "$tmp/out"; }
grep -q "in 1 page(s)" "$tmp/out" || fail "verify blames more than the corrupted page"

# ---- crash clean-up ----
kill -9 "$(pid_of "$T")"
wait_state "$T" dead
[ "$(state_of "$T")" = dead ] || fail "killed guest state $(state_of "$T"), wanted dead"
expect 1 "pause dead guest" "$XCC" sim pause "$T" && err_has "dead"
tpid=$(pid_of "$T")
expect 0 "stop dead guest" "$XCC" sim stop "$T"
[ -e "$ROOT/$T" ] && fail "$ROOT/$T left behind"
alive "$tpid" && fail "process $tpid left behind"

expect 0 "stop" "$XCC" sim stop "$G"
[ -e "$ROOT/$G" ] && fail "$ROOT/$G left behind"
alive "$pid" && fail "process $pid left behind"

# ---- tracking modes, holes ----
B=$P-b
expect 0 "start --tracking bitmap with holes" "$XCC" sim start "$B" --mem 8M \
    --workload random:1000 --tracking bitmap --holes 10-19,100
"$XCC" sim list | grep -q "^$B .* bitmap " || fail "list does not show bitmap tracking"
cmp -s -n 40960 /dev/zero "$ROOT/$B/ram" 2>/dev/null && fail "RAM not filled"
dd if="$ROOT/$B/ram" bs=4096 skip=10 count=10 2>/dev/null | cmp -s - /dev/zero -n 40960 \
    || fail "holes 10-19 are not zero"
expect 0 "stop bitmap guest" "$XCC" sim stop "$B"

# ---- bad input: exit 1, a message naming the problem, nothing made ----
X=$P-x
expect 1 "size not a page multiple" "$XCC" sim start "$X" --mem 12345 --workload idle && err_has "page size"
expect 2 "bad size" "$XCC" sim start "$X" --mem 12Q --workload idle && err_has "--mem"
expect 1 "unknown workload" "$XCC" sim start "$X" --mem 8M --workload frobnicate && err_has "frobnicate"
expect 1 "ledger too small" "$XCC" sim start "$X" --mem 8M --workload ledger && err_has "ledger"
expect 1 "bad holes" "$XCC" sim start "$X" --mem 8M --workload idle --holes 1-x && err_has "holes"
expect 1 "bad tracking" "$XCC" sim start "$X" --mem 8M --workload idle --tracking psychic && err_has "tracking"
expect 1 "bad name" "$XCC" sim start "../evil" --mem 8M --workload idle && err_has "bad guest name"
[ -e "$ROOT/$X" ] && fail "$ROOT/$X left behind by bad input"
[ -e "$ROOT/../evil" ] && fail "path escape"
expect 2 "missing --mem" "$XCC" sim start "$X" --workload idle
expect 2 "unknown option" "$XCC" sim list --frob
expect 2 "unknown subcommand" "$XCC" sim frob
expect 0 "create for name clash" "$XCC" sim create "$X" --mem 4M
expect 1 "name in use" "$XCC" sim start "$X" --mem 4M --workload idle && err_has "in use"
expect 1 "pause processless" "$XCC" sim pause "$X" && err_has "no process"
expect 1 "verify without ledger" "$XCC" sim verify "$X"
expect 0 "stop processless" "$XCC" sim stop "$X"
expect 1 "stop missing" "$XCC" sim stop "$P-nosuch" && err_has "no simulated guest"
expect 1 "digest missing" "$XCC" sim digest "$P-nosuch" && err_has "no simulated guest"
expect 1 "resume missing" "$XCC" sim resume "$P-nosuch" --workload idle

left=$(ls -d "$ROOT/$P"-* 2>/dev/null)
[ -n "$left" ] && fail "left behind: $left"

if [ "$failures" -ne 0 ]; then
    echo "e2e_sim: $failures failure(s); $(seed_note)"
    exit 1
fi
echo "e2e_sim: all passed"
