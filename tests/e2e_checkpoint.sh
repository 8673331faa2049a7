#!/bin/sh
# End-to-end checkpoint mode (`xc-colo checkpoint` into
# `xc-colo restore --checkpointed`), over loopback TCP and pipes:
#
#   basic      N checkpoints, clean END: exit 0 on both sides, the target
#              equals the digest-log line of the last checkpoint, the stats
#              JSON has the per-checkpoint figures and acknowledgements.
#   failover   the sender is killed (kill -9) at a random moment after
#              checkpoint 1, FAILOVER_RUNS times (default 10): the receiver
#              exits 3, prints "failover: kept checkpoint K", and its target
#              equals the digest-log line K (DESIGN.md invariant 2).
#   torn       the stream is cut by tests/stream_cut.py in an exec:
#              transport (no back channel), a random number of bytes after
#              the first CHECKPOINT record (the offset taken from the stream
#              itself): same checks.
#   sigterm    SIGTERM ends the run cleanly: the current checkpoint, END.
#   colo       both sides run ledger+random; after the last checkpoint
#              (both paused) the digests are equal and `sim verify` passes
#              on the secondary.
#   colo-cache the primary's hotpages live in its XBZRLE cache and are sent
#              as deltas every epoch, while the secondary's own guest writes
#              random bytes over those same pages: the back-channel pfns must
#              be dropped from the cache (invariant 1) for the next
#              checkpoint to restore them exactly.
#
# Env: XCC_BIN (absolute path of xc-colo); FAILOVER_RUNS, TORN_RUNS;
# E2E_SEED (the random choices: kill moments, cut offsets; printed).
set -u
e2e_tmp=ck
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib_e2e.sh"
. "$here/lib_progress.sh"
failover_runs=${FAILOVER_RUNS:-10}
torn_runs=${TORN_RUNS:-3}
tag="ck$$"

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

digest() { "$X" sim digest "$1" 2>/dev/null; }

# log_line FILE K: the digest logged for checkpoint K.
log_line() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

# wait_lines FILE N: until the digest log has N lines (60 s at most).
wait_lines() {
    wl_n=0
    while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && [ $wl_n -lt 1200 ]; do
        sleep 0.05
        wl_n=$((wl_n + 1))
    done
}

start_guest() { # name mem workload
    guests="$guests $1"
    "$X" sim start "$1" --mem "$2" --workload "$3" --seed 11 >/dev/null ||
        { bad "sim start $1 ($3)"; return 1; }
}

# Starts a receiver listening on $port into target $1 (more options after);
# sets rpid. Output in $tmp/$1.out/.err, exit status in $tmp/$1.rc.
start_receiver() {
    tgt=$1
    shift
    guests="$guests $tgt"
    ( "$X" restore --checkpointed "$@" --listen "tcp:127.0.0.1:$port" \
          "sim:$tgt" > "$tmp/$tgt.out" 2> "$tmp/$tgt.err"
      echo $? > "$tmp/$tgt.rc" ) &
    rpid=$!
    pids="$pids $rpid"
}

receiver_rc() { cat "$tmp/$1.rc" 2>/dev/null || echo none; }

# check_kept TARGET LOG WHAT: exit 3, the kept K's digest equals the log's.
check_kept() {
    tgt=$1 log=$2 what=$3
    rc=$(receiver_rc "$tgt")
    k=$(sed -n 's/^failover: kept checkpoint \([0-9]*\)$/\1/p' "$tmp/$tgt.out")
    if [ "$rc" != 3 ] || [ -z "$k" ]; then
        bad "$what: receiver exit $rc (want 3), kept '$k': $(tail -2 "$tmp/$tgt.err")"
        return
    fi
    want=$(log_line "$log" "$k")
    got=$(digest "$tgt")
    if [ -n "$want" ] && [ "$want" = "$got" ]; then
        ok "$what: exit 3, kept checkpoint $k, digest matches the log"
    else
        bad "$what: kept checkpoint $k: target $got, log '$want'"
    fi
}

# ---- basic ----------------------------------------------------------------
P="${tag}p"
start_guest "$P" 32M random:3000:0.1 || exit 1
port=$(free_port)
start_receiver "${tag}b"
"$X" checkpoint --xbzrle --verify --count 8 --interval 10 -q \
    --digest-log "$tmp/basic.log" --stats-json "$tmp/basic.json" \
    "sim:$P" "tcp:127.0.0.1:$port"
src=$?
wait "$rpid"
if [ $src = 0 ] && [ "$(receiver_rc "${tag}b")" = 0 ]; then
    ok "basic: sender and receiver exit 0"
else
    bad "basic: sender $src, receiver $(receiver_rc "${tag}b"): $(tail -2 "$tmp/${tag}b.err")"
fi
if [ "$(cut -d' ' -f1 "$tmp/basic.log" | tr '\n' ' ')" = "1 2 3 4 5 6 7 8 " ] &&
    [ "$(log_line "$tmp/basic.log" 8)" = "$(digest "${tag}b")" ]; then
    ok "basic: digest log 1..8, target equals checkpoint 8"
else
    bad "basic: log $(cat "$tmp/basic.log" | tr '\n' ' '), target $(digest "${tag}b")"
fi
if "$PY" - "$tmp/basic.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))["checkpoint"]
assert c["count"] == 8 and c["acknowledged"] == 8, c
assert len(c["checkpoints"]) == 8
for key in ("pause-ms", "commit-ms", "bytes", "pages"):
    assert set(c[key]) == {"p50", "p99", "max"}, key
    assert c[key]["p50"] <= c[key]["p99"] <= c[key]["max"], key
for e in c["checkpoints"]:
    assert e["commit-ms"] is not None and e["pause-ms"] >= 0
EOF
then ok "basic: stats JSON: 8 checkpoints, all acknowledged, percentiles"
else bad "basic: stats JSON"
fi
"$X" sim stop "${tag}b" >/dev/null 2>&1
"$X" sim unpause "$P"

# ---- failover: kill -9 the sender -------------------------------------------
i=1
while [ $i -le "$failover_runs" ]; do
    tgt="${tag}f$i"
    log="$tmp/f$i.log"
    port=$(free_port)
    start_receiver "$tgt"
    xb=""
    [ $((i % 2)) = 1 ] && xb="--xbzrle"
    "$X" checkpoint $xb --interval 5 --digest-log "$log" -q \
        "sim:$P" "tcp:127.0.0.1:$port" 2>/dev/null &
    spid=$!
    pids="$pids $spid"
    wait_lines "$log" 1
    # The kill moment is the random choice under test (0..0.99 s after
    # checkpoint 1), not a wait before an assertion.
    sleep "0.$(rand 10 "f$i.a")$(rand 10 "f$i.b")"
    kill -9 "$spid"
    wait "$spid" 2>/dev/null
    wait "$rpid"
    check_kept "$tgt" "$log" "failover run $i ($([ -n "$xb" ] && echo xbzrle || echo plain))"
    "$X" sim stop "$tgt" >/dev/null 2>&1
    "$X" sim unpause "$P" >/dev/null 2>&1
    i=$((i + 1))
done

# ---- torn network: the stream stops after N bytes --------------------------
i=1
while [ $i -le "$torn_runs" ]; do
    tgt="${tag}t$i"
    log="$tmp/t$i.log"
    guests="$guests $tgt"
    # Cut 0..3 MB after the first CHECKPOINT record, wherever the live
    # phase ended: the receiver has committed checkpoint 1, the cut falls
    # (mostly mid-record) in a later epoch.
    extra=$(rand 3000000 "t$i")
    rm -f "$tmp/t$i.cut"
    "$X" checkpoint --interval 2 --digest-log "$log" -q "sim:$P" \
        "exec:'$PY' '$here/stream_cut.py' $extra $tmp/t$i.cut | '$X' restore --checkpointed - sim:$tgt > $tmp/$tgt.out 2> $tmp/$tgt.err; echo \$? > $tmp/$tgt.rc" \
        2>/dev/null
    if [ -s "$tmp/t$i.cut" ]; then
        check_kept "$tgt" "$log" "torn stream at byte $(cat "$tmp/t$i.cut") ($extra after the first CHECKPOINT)"
    else
        bad "torn run $i: the stream ended before its cut ($extra bytes after the first CHECKPOINT)"
    fi
    "$X" sim stop "$tgt" >/dev/null 2>&1
    "$X" sim unpause "$P" >/dev/null 2>&1
    i=$((i + 1))
done

# ---- SIGTERM: finish the checkpoint, END -----------------------------------
tgt="${tag}s"
port=$(free_port)
start_receiver "$tgt"
"$X" checkpoint --interval 10 --digest-log "$tmp/s.log" -q \
    "sim:$P" "tcp:127.0.0.1:$port" &
spid=$!
wait_lines "$tmp/s.log" 3
kill -TERM "$spid"
wait "$spid"
src=$?
wait "$rpid"
last=$(tail -1 "$tmp/s.log" | cut -d' ' -f2)
if [ $src = 0 ] && [ "$(receiver_rc "$tgt")" = 0 ] && [ "$last" = "$(digest "$tgt")" ]; then
    ok "sigterm: both exit 0, target equals the last checkpoint ($(wc -l < "$tmp/s.log") checkpoints)"
else
    bad "sigterm: sender $src, receiver $(receiver_rc "$tgt"), last '$last', target $(digest "$tgt")"
fi
"$X" sim stop "$tgt" >/dev/null 2>&1
"$X" sim stop "$P" >/dev/null 2>&1

# ---- COLO ------------------------------------------------------------------
# colo_run NAME PRIMARY_WORKLOAD SECONDARY_WORKLOAD: checkpoints with
# --colo --xbzrle; checks exit codes, digests and (ledger) sim verify.
colo_run() {
    name=$1 pwl=$2 swl=$3
    p="${tag}${name}p" s="${tag}${name}s"
    start_guest "$p" 48M "$pwl" || return
    port=$(free_port)
    start_receiver "$s" --colo --workload "$swl"
    "$X" checkpoint --colo --xbzrle --count 10 --interval 20 -q \
        --digest-log "$tmp/$name.log" --stats-json "$tmp/$name.json" \
        "sim:$p" "tcp:127.0.0.1:$port"
    src=$?
    wait "$rpid"
    if [ $src != 0 ] || [ "$(receiver_rc "$s")" != 0 ]; then
        bad "$name: sender $src, receiver $(receiver_rc "$s"): $(tail -2 "$tmp/$s.err")"
        return
    fi
    dp=$(digest "$p") ds=$(digest "$s")
    if [ "$dp" = "$ds" ] && [ "$ds" = "$(log_line "$tmp/$name.log" 10)" ]; then
        ok "$name: primary and secondary paused on the same memory"
    else
        bad "$name: primary $dp, secondary $ds, log $(log_line "$tmp/$name.log" 10)"
    fi
    if "$PY" - "$tmp/$name.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["checkpoint"]
assert c["colo"] and c["secondary-dirty-pages"] > 0, c["secondary-dirty-pages"]
assert d["xbzrle-cache"]["pages"] > 0, d["xbzrle-cache"]
EOF
    then ok "$name: the secondary ran (dirty pages came back), XBZRLE was used"
    else bad "$name: stats show no secondary dirty pages or no XBZRLE pages"
    fi
}

colo_run colo ledger+random:2000 ledger+random:2000
if "$X" sim verify "${tag}colos" >/dev/null 2>&1; then
    ok "colo: sim verify passes on the secondary"
else
    bad "colo: sim verify on the secondary: $("$X" sim verify "${tag}colos" 2>&1 | head -2)"
fi
colo_run colocache hotpages random:20000:0.3

# ---- usage -----------------------------------------------------------------
"$X" restore --colo - sim:x </dev/null >/dev/null 2>&1
[ $? = 2 ] && ok "usage: restore --colo without --checkpointed exits 2" ||
    bad "usage: restore --colo without --checkpointed"
"$X" checkpoint --colo sim:nonexistent-$tag "exec:cat >/dev/null" >/dev/null 2>&1
[ $? = 1 ] && ok "usage: checkpoint of a missing domain exits 1" ||
    bad "usage: checkpoint of a missing domain"

echo "e2e_checkpoint: $checks checks, $failures failed; $(seed_note)"
[ $failures = 0 ]
