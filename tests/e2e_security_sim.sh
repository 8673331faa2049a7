#!/bin/sh
# e2e_security_sim.sh - the directory of sim guests cannot be turned against
# the user who runs xc-colo. A guest root made by another user, a root that is
# a symbolic link or writable by others, and a guest directory swapped for a
# symbolic link are refused with an error naming the path, and nothing outside
# the root is removed or created. A fresh root is made 0700. The hostile steps
# run as `nobody` (setpriv, util-linux), and an unprivileged user's own guests
# work in its own root.
#
# Every root here is a scratch directory under /dev/shm named by XCC_SIM_ROOT,
# world-writable and sticky as /dev/shm is, so no real guest is touched.
set -u
XCC=${XCC_BIN:-build/bin/xc-colo}
case "$XCC" in /*) ;; *) XCC=$PWD/$XCC ;; esac
failures=0
checks=0

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: e2e_security_sim.sh acts as two users and needs root"
    exit 0
fi
T=$(mktemp -d /dev/shm/xcc-sec.XXXXXX) || exit 1
chmod 1777 "$T"
out=$T/out
err=$T/err

cleanup() {
    for r in "$T"/root*; do
        [ -d "$r" ] && [ ! -L "$r" ] || continue
        for g in "$r"/*; do
            [ -d "$g" ] && [ ! -L "$g" ] &&
                XCC_SIM_ROOT=$r "$XCC" sim stop "$(basename "$g")" >/dev/null 2>&1
        done
    done
    if [ -n "${nobody_default:-}" ] && [ -d "$nobody_default" ]; then
        for g in "$nobody_default"/"sec$$"-*; do
            [ -d "$g" ] && as_nobody env -u XCC_SIM_ROOT "$XCC" sim stop \
                "$(basename "$g")" >/dev/null 2>&1
        done
        rmdir "$nobody_default" 2>/dev/null
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ok() { checks=$((checks + 1)); echo "ok   $*"; }
bad() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL $*"; }

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# run ROOT CMD...: xc-colo CMD with XCC_SIM_ROOT=ROOT, as root; sets rc
run() {
    r=$1; shift
    XCC_SIM_ROOT=$r "$XCC" "$@" >"$out" 2>"$err"
    rc=$?
}
run_nobody() {
    r=$1; shift
    as_nobody env XCC_SIM_ROOT="$r" "$XCC" "$@" >"$out" 2>"$err"
    rc=$?
}

# expect_refused WHAT TEXT...: the last command exited 1 and its stderr holds
# every TEXT
expect_refused() {
    what=$1; shift
    if [ "$rc" -ne 1 ]; then
        bad "$what: exit $rc, wanted 1"
        sed 's/^/    /' "$err"
        return
    fi
    for t in "$@"; do
        if ! grep -qF -- "$t" "$err"; then
            bad "$what: stderr lacks '$t':"
            sed 's/^/    /' "$err"
            return
        fi
    done
    ok "$what: $(head -n 1 "$err")"
}

expect_ok() {
    if [ "$rc" -eq 0 ]; then
        ok "$1"
    else
        bad "$1: exit $rc"
        sed 's/^/    /' "$out" "$err"
    fi
}

# victim DIR: a directory of root's with two files in it
victim() {
    mkdir -p "$1" && echo precious >"$1/f1" && echo precious >"$1/f2"
}
victim_intact() { # victim_intact WHAT DIR
    if [ -f "$2/f1" ] && [ -f "$2/f2" ]; then
        ok "$1: $2 still holds its files"
    else
        bad "$1: files of $2 were removed: $(ls -A "$2" 2>&1 | tr '\n' ' ')"
    fi
}

if ! as_nobody "$XCC" --version >/dev/null 2>&1; then
    echo "SKIP: user nobody cannot run $XCC (setpriv missing, or a directory" \
        "on its path is closed to other users)"
    exit 0
fi

# ---- 1. the reproducer: another user's root with a symlink at NAME ----
R=$T/root1
as_nobody mkdir "$R"
victim "$T/victim1"
as_nobody ln -s "$T/victim1" "$R/evil"
run "$R" sim stop evil
expect_refused "stop through another user's root" "$R" "owned by uid"
victim_intact "stop through another user's root" "$T/victim1"
run "$R" sim create evil2 --mem 1M
expect_refused "create in another user's root" "$R" "owned by uid"
[ ! -e "$R/evil2" ] && ok "create made nothing in another user's root" ||
    bad "create made $R/evil2 in another user's root"

# ---- 2. the root itself a symlink ----
R=$T/root2
as_nobody mkdir "$T/elsewhere2"
as_nobody ln -s "$T/elsewhere2" "$R"
run "$R" sim create g --mem 1M
expect_refused "create through a symlinked root" "$R" "symbolic link"
if [ -z "$(ls -A "$T/elsewhere2")" ]; then
    ok "create through a symlinked root left its target empty"
else
    bad "create through a symlinked root put $(ls -A "$T/elsewhere2") there"
fi
# the same, the link being root's own
R=$T/root2b
mkdir "$T/elsewhere2b"
ln -s "$T/elsewhere2b" "$R"
run "$R" sim create g --mem 1M
expect_refused "create through root's own symlinked root" "$R" "symbolic link"

# ---- 3. a guest directory swapped for a symlink after it was made ----
R=$T/root3
run "$R" sim create g --mem 1M
expect_ok "create g in a fresh root"
victim "$T/victim3"
mv "$R/g" "$T/g3-moved"
ln -s "$T/victim3" "$R/g"
run "$R" sim stop g
expect_refused "stop of a guest swapped for a symlink" "$R/g" "symbolic link"
victim_intact "stop of a guest swapped for a symlink" "$T/victim3"
run "$R" sim resume g --workload idle
expect_refused "resume of a guest swapped for a symlink" "$R/g" \
    "symbolic link"
# a real stream, from a second guest of the same size
run "$R" sim create h --mem 1M
run "$R" save sim:h "$T/h.xcc"
expect_ok "save sim:h"
for opt in --into-existing ""; do
    run "$R" restore $opt "$T/h.xcc" sim:g
    if [ "$rc" -ne 0 ] && [ ! -e "$T/victim3/ram" ]; then
        ok "restore ${opt:-(new)} into a guest swapped for a symlink refused:" \
            "$(head -n 1 "$err")"
    else
        bad "restore ${opt:-(new)} into a guest swapped for a symlink: exit $rc"
        sed 's/^/    /' "$err"
    fi
done
victim_intact "resume/restore of a guest swapped for a symlink" "$T/victim3"
rm "$R/g"
mv "$T/g3-moved" "$R/g"
# a file of the guest swapped for a symlink: never opened through it
echo precious >"$T/victim3-ram"
mv "$R/g/ram" "$T/g3-ram"
ln -s "$T/victim3-ram" "$R/g/ram"
run "$R" digest sim:g
expect_refused "digest of a guest whose ram is a symlink" "$R/g/ram" \
    "symbolic link"
run "$R" sim stop g
expect_ok "stop of a guest whose ram is a symlink"
[ "$(cat "$T/victim3-ram")" = precious ] && [ ! -e "$R/g" ] &&
    ok "stop removed the link, not its target" ||
    bad "stop: $R/g remains or $T/victim3-ram changed"

# ---- 4. a root of ours that others may write to ----
R=$T/root4
mkdir "$R"
chmod 1777 "$R"
run "$R" sim create g --mem 1M
expect_refused "create in a root writable by others" "$R" "writable by"

# ---- 5. a fresh root: 0700, and a whole life cycle in it ----
R=$T/root5
run "$R" sim start g --mem 32M --workload idle
expect_ok "start g in a fresh root"
mode=$(stat -c %a "$R")
[ "$mode" = 700 ] && ok "a fresh root is made 0700" ||
    bad "a fresh root is made $mode, wanted 700"
run "$R" sim list
grep -q "^g " "$out" && ok "list shows g" || bad "list lacks g: $(cat "$out")"
# another user cannot use root's root, nor remove root's guest
run_nobody "$R" sim stop g
expect_refused "nobody's stop in root's root" "$R"
run_nobody "$R" sim list
expect_refused "nobody's list of root's root" "$R"
[ -f "$R/g/meta.json" ] && ok "root's guest survives nobody's stop" ||
    bad "root's guest lost files to nobody's stop"
run "$R" sim stop g
expect_ok "stop g"
[ ! -e "$R/g" ] && [ -d "$R" ] && ok "stop removed g and kept the root" ||
    bad "after stop: $(ls -la "$R" 2>&1)"

# ---- 6. an unprivileged user's own guests, and root refusing its root ----
R=$T/root6
run_nobody "$R" sim start g --mem 32M --workload ledger --seed 3
expect_ok "nobody starts a guest in its own root"
[ "$(stat -c %U:%a "$R")" = nobody:700 ] && ok "nobody's root is nobody's, 0700" ||
    bad "nobody's root is $(stat -c %U:%a "$R")"
run_nobody "$R" sim verify g
expect_ok "nobody verifies its guest's ledger"
run "$R" sim stop g
expect_refused "root's stop in nobody's root" "$R" "owned by uid"
run_nobody "$R" sim stop g
expect_ok "nobody stops its guest"
[ ! -e "$R/g" ] && ok "nobody's guest removed" || bad "$R/g remains"

# the default root of a user other than root is its own
nobody_uid=$(id -u nobody)
nd=/dev/shm/xc-colo-$nobody_uid
if [ -e "$nd" ]; then
    echo "note: $nd exists already; its default-root check is left out"
else
    nobody_default=$nd
    as_nobody env -u XCC_SIM_ROOT "$XCC" sim create "sec$$-g" --mem 1M \
        >"$out" 2>"$err"
    rc=$?
    expect_ok "nobody creates a guest in its default root"
    [ -d "$nd/sec$$-g" ] && [ "$(stat -c %U:%a "$nd")" = nobody:700 ] &&
        ok "nobody's default root is $nd, its own, 0700" ||
        bad "nobody's default root: $(ls -ld "$nd" "$nd/sec$$-g" 2>&1)"
fi

echo "e2e_security_sim: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
