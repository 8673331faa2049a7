#!/bin/sh
# e2e_security_saver.sh - one saver per guest, and signals during a save.
#
#   lock       a second save of a guest whose save is under way exits 1 and
#              names the first saver's pid; the first one completes and
#              its image restores (verified by DIGEST).
#   pipelines  two `save --live --xbzrle | restore` pipelines at once on a
#              busy ledger guest: each either completes with a verified,
#              ledger-consistent target, or its save is refused by the lock.
#              Neither may succeed with a wrong target.
#   stopped    `sim stop` of the guest during its save: the save exits 1,
#              it does not report success.
#   signals    SIGTERM to `save` and SIGINT to `migrate` while the guest is
#              paused: exit 143 / 130, a message, the guest runs again
#              (its ticks advance), the stream is refused by restore.
#
# The moment of each action is taken from the stream: the save writes
# into a FIFO read by a relay, which copies RELAY_BYTES of it (well into
# the single paused pass of a --no-live save), then stops reading, so the
# saver is blocked mid-pass with the guest paused; the test acts, then lets
# the relay drain the rest.
#
# Env: XCC_BIN (absolute path of xc-colo).
set -u
e2e_tmp=svl
. "$(dirname "$0")/lib_e2e.sh"
tag="svl$$"
RELAY_BYTES=1048576

# relay FIFO OUT: copies RELAY_BYTES from FIFO to OUT, creates OUT.mark,
# waits for OUT.go, then copies the rest. Runs in the background.
relay() {
    "$PY" - "$1" "$2" "$RELAY_BYTES" <<'EOF' &
import os, shutil, sys, time
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb", buffering=0) as fi, open(dst, "wb") as fo:
    got = 0
    while got < n:
        b = fi.read(min(65536, n - got))
        if not b:
            break
        fo.write(b)
        got += len(b)
    fo.flush()
    open(dst + ".mark", "w").close()
    while not os.path.exists(dst + ".go"):  # the test's action comes first
        time.sleep(0.01)
    shutil.copyfileobj(fi, fo)
EOF
    relay_pid=$!
    pids="$pids $relay_pid"
}

# wait_file F: until F exists (60 s at most); 1 on timeout.
wait_file() {
    wf_n=0
    while [ ! -e "$1" ]; do
        wf_n=$((wf_n + 1))
        [ $wf_n -gt 6000 ] && return 1
        sleep 0.01
    done
}

# field NAME KEY: KEY of guest NAME in `sim list --json`.
field() {
    "$X" sim list --json | "$PY" -c '
import json, sys
for g in json.load(sys.stdin):
    if g["name"] == sys.argv[1]:
        print(g[sys.argv[2]])' "$1" "$2"
}

# wait_ticks NAME: until the guest's ticks advance (20 s at most); 1 if not.
wait_ticks() {
    wt_0=$(field "$1" ticks)
    wt_n=0
    while [ "$(field "$1" ticks)" = "$wt_0" ]; do
        wt_n=$((wt_n + 1))
        [ $wt_n -gt 400 ] && return 1
        sleep 0.05
    done
}

start_guest() { # name workload
    guests="$guests $1"
    "$X" sim start "$1" --mem 64M --workload "$2" --seed 5 >/dev/null ||
        { bad "sim start $1"; return 1; }
}

# ---- lock: a second saver is refused and names the first ------------------
G="${tag}a"
start_guest "$G" ledger+random:20000:0.5 || exit 1
mkfifo "$tmp/a.fifo"
relay "$tmp/a.fifo" "$tmp/a.img"
"$X" save -q "sim:$G" - >"$tmp/a.fifo" 2>"$tmp/a.err" &
first=$!
pids="$pids $first"
if wait_file "$tmp/a.img.mark"; then
    "$X" save -q --live "sim:$G" "$tmp/b.img" 2>"$tmp/b.err"
    second=$?
    if [ $second = 1 ] && grep -q "being saved by process $first" "$tmp/b.err"; then
        ok "lock: second save exits 1 naming pid $first"
    else
        bad "lock: second save exit $second: $(cat "$tmp/b.err")"
    fi
else
    bad "lock: the first save never wrote $RELAY_BYTES bytes"
fi
touch "$tmp/a.img.go"
wait "$first"
rc1=$?
wait "$relay_pid"
guests="$guests ${G}-t"
if [ $rc1 = 0 ] && "$X" restore -q "$tmp/a.img" "sim:${G}-t" 2>"$tmp/a.rerr"; then
    ok "lock: the first save completes and restores (DIGEST verified)"
else
    bad "lock: first save exit $rc1; restore: $(cat "$tmp/a.err" "$tmp/a.rerr")"
fi
"$X" sim unpause "$G" >/dev/null 2>&1

# ---- pipelines: the issue's reproducer --------------------------------------
pipeline() { # n
    guests="$guests ${G}-p$1"
    { "$X" save -q --live --xbzrle "sim:$G" - 2>"$tmp/p$1.err"
      echo $? >"$tmp/p$1.rc"; } |
        "$X" restore -q - "sim:${G}-p$1" 2>"$tmp/p$1.rerr"
    echo $? >"$tmp/p$1.rrc"
}
pipeline 1 &
p1=$!
pipeline 2 &
p2=$!
wait $p1
wait $p2
good=0
for n in 1 2; do
    s=$(cat "$tmp/p$n.rc") r=$(cat "$tmp/p$n.rrc")
    if [ "$s" = 0 ] && [ "$r" = 0 ] && "$X" sim verify "${G}-p$n" >/dev/null; then
        good=$((good + 1))
    elif [ "$s" = 1 ] && grep -q "being saved by process" "$tmp/p$n.err"; then
        ok "pipelines: save $n refused by the lock: $(grep -o 'being saved by process [0-9]*' "$tmp/p$n.err")"
    else
        bad "pipelines: save $n exit $s, restore exit $r: $(cat "$tmp/p$n.err" "$tmp/p$n.rerr")"
    fi
done
if [ $good -ge 1 ]; then
    ok "pipelines: $good of 2 completed with a verified target"
else
    bad "pipelines: no pipeline completed"
fi
"$X" sim unpause "$G" >/dev/null 2>&1

# ---- stopped: the guest is destroyed under its save -------------------------
G="${tag}b"
start_guest "$G" random:20000:0.5 || exit 1
mkfifo "$tmp/c.fifo"
relay "$tmp/c.fifo" "$tmp/c.img"
"$X" save -q "sim:$G" - >"$tmp/c.fifo" 2>"$tmp/c.err" &
saver=$!
pids="$pids $saver"
wait_file "$tmp/c.img.mark" || bad "stopped: no stream"
"$X" sim stop "$G" >/dev/null 2>&1
touch "$tmp/c.img.go"
wait "$saver"
rc=$?
wait "$relay_pid"
if [ $rc = 1 ] && grep -q "destroyed during the save" "$tmp/c.err"; then
    ok "stopped: the save exits 1: $(grep -o "'.*' was destroyed during the save" "$tmp/c.err")"
else
    bad "stopped: save exit $rc: $(cat "$tmp/c.err")"
fi

# ---- signals: the guest is continued -----------------------------------------
# signal_case CMD SIGNAL WANT: CMD (save or migrate) without --live, the
# signal sent while the guest is paused mid-pass.
signal_case() {
    cmd=$1 sig=$2 want=$3
    G="${tag}s$sig"
    start_guest "$G" random:2000:0.5 || return
    mkfifo "$tmp/$sig.fifo"
    relay "$tmp/$sig.fifo" "$tmp/$sig.img"
    "$X" "$cmd" --no-live -q "sim:$G" - >"$tmp/$sig.fifo" 2>"$tmp/$sig.err" &
    saver=$!
    pids="$pids $saver"
    wait_file "$tmp/$sig.img.mark" || bad "$cmd $sig: no stream"
    state=$(field "$G" state)
    kill -"$sig" "$saver"
    touch "$tmp/$sig.img.go"
    wait "$saver"
    rc=$?
    wait "$relay_pid"
    if [ "$state" != paused ]; then
        bad "$cmd $sig: the guest was '$state' mid-pass, not paused"
    elif [ $rc = "$want" ] && grep -q "cancelled" "$tmp/$sig.err" &&
        wait_ticks "$G"; then
        ok "$cmd $sig while paused: exit $rc, the guest runs again ($(cat "$tmp/$sig.err"))"
    else
        bad "$cmd $sig: exit $rc (want $want), guest $(field "$G" state): $(cat "$tmp/$sig.err")"
    fi
    guests="$guests ${G}-t"
    if "$X" restore -q "$tmp/$sig.img" "sim:${G}-t" 2>/dev/null; then
        bad "$cmd $sig: restore accepted the cancelled stream"
    else
        ok "$cmd $sig: restore refuses the cancelled stream"
    fi
}
signal_case save TERM 143
signal_case migrate INT 130

echo "e2e_security_saver: $checks checks, $failures failed"
[ "$failures" = 0 ]
