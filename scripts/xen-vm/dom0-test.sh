# dom0-test.sh - the harness's test steps, run by dom0's /init (busybox sh).
#
# Every result goes to the serial console as one machine-readable line:
#   XENVM_STEP NAME PASS|FAIL|INFO [detail]   a step's verdict
#   XENVM_KV KEY VALUE                         a figure
#   XENVM_JSON NAME {...}                      a --stats-json file, one line
# run.sh on the host turns them into the summary table and results.json.

CONLOG_DIR=/var/log/xen/console
CKPT_COUNT=${CKPT_COUNT:-20}
CKPT_INTERVAL_MS=${CKPT_INTERVAL_MS:-100}
CMD_TIMEOUT=300     # no single save or restore may take longer

now() { cut -d' ' -f1 /proc/uptime; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
kv() { echo "XENVM_KV $*"; }
step() { echo "XENVM_STEP $*"; }
show() { sed "s/^/    [$1] /" "$2"; }      # a command's output, indented
emit_json() { [ -s "$2" ] && echo "XENVM_JSON $1 $(tr -d '\n' < "$2")"; }
domstate() { xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }'; }

# wait_console NAME PATTERN SECONDS
wait_console() {
    i=0
    while ! grep -q "$2" "$CONLOG_DIR/guest-$1.log" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt "$3" ] && return 1
        sleep 1
    done
}

# A command is "not built" while it is still the foundation's placeholder.
built() { ! xc-colo "$1" --help 2>&1 | grep -q "not built yet"; }

# xl restore -p of the stock image under another name: a paused domain of
# the same config whose page-table pages sit at the source's pfns.
# Prints only the new domid on stdout; the rest goes to the console.
restore_paused() {
    t0=$(now)
    xl restore -p "/etc/xen/$1.cfg" /tmp/img_xl > /tmp/xlr.out 2>&1
    rc=$?
    kv "xl_restore_seconds_$1" "$(dt "$t0" "$(now)")" >&2
    show "xl restore $1" /tmp/xlr.out >&2
    [ $rc = 0 ] && xl domid "$1"
}

# timed_save LABEL FILE ARGS...: one xc-colo save, its figures and stats.
timed_save() {
    label=$1; file=$2; shift 2
    rm -f "/tmp/$label.json"
    t0=$(now)
    timeout "$CMD_TIMEOUT" xc-colo save --stats-json "/tmp/$label.json" "$@" "$file" \
        > "/tmp/$label.out" 2>&1
    t1=$(now)
    # busybox sh has no pipefail: success is the CLI's closing line.
    rc=0
    grep -q "saved xen" "/tmp/$label.out" || rc=1
    show "$label" "/tmp/$label.out"
    kv "${label}_rc" $rc | tee -a /tmp/kv.log
    kv "${label}_seconds" "$(dt "$t0" "$t1")"
    # /dev/null has no size: the stats' "transferred" says how much.
    [ "$file" = /dev/null ] || kv "${label}_bytes" "$(stat -c %s "$file" 2>/dev/null || echo 0)"
    emit_json "$label" "/tmp/$label.json"
    return $rc
}

digest_of() { xc-colo digest "$@" 2>/tmp/digest.err | head -n1; }

echo "=== xl info"
xl info | grep -E '^(xen_version|total_memory|free_memory|nr_cpus)'

###########################################################################
echo "=== step create: xl create the domU, wait for its workload"
t0=$(now)
xl create /etc/xen/guest.cfg > /tmp/create.out 2>&1
rc=$?
show "xl create" /tmp/create.out
kv xl_create_seconds "$(dt "$t0" "$(now)")"
D=$(xl domid guest 2>/dev/null)
if [ $rc != 0 ] || [ -z "$D" ] || ! wait_console guest XCC_WORKLOAD 120; then
    step create FAIL "domU did not start its workload"
    tail -n 80 "$CONLOG_DIR/guest-guest.log" 2>/dev/null
    exit 0
fi
step create PASS "dom$D runs the workload"
kv source_domid "$D"
sleep 2

###########################################################################
echo "=== step ops: the backend's ops table on the running domU"
xen-ops-test "$D" > /tmp/ops.out 2>&1
rc=$?
cat /tmp/ops.out
[ $rc = 0 ] && step ops PASS || step ops FAIL "xen-ops-test exit $rc"

echo "=== step cli_digest: xc-colo digest on the Xen backend"
t0=$(now)
out=$(xc-colo digest "xen:$D" 2>&1); rc=$?
kv digest_seconds "$(dt "$t0" "$(now)")"
echo "    [digest] $out"
bad=$(xc-colo digest xen:4000 2>&1); rc2=$?
echo "    [digest xen:4000] $bad"
if [ $rc = 0 ] && echo "$out" | grep -qE '^[0-9a-f]{32}$' && [ $rc2 = 1 ]; then
    step cli_digest PASS
else
    step cli_digest FAIL "digest rc $rc, missing domain rc $rc2"
fi

###########################################################################
echo "=== step save: xc-colo save (map cache, --no-map-cache, --xbzrle), xl save"
if ! built save; then
    step save_map_cache FAIL "not built"
    step save_no_map_cache FAIL "not built"
    step save_xbzrle FAIL "not built"
    SAVE_OK=0
else
    SAVE_OK=1
    # Same guest, same options, map cache on and off, alternated twice so
    # that neither profits from going second; -c keeps the guest running.
    # The stream goes to /dev/null: this measures the save loop, not tmpfs
    # (a pipe is no better: under TCG it costs more than the save itself).
    for round in 1 2; do
        timed_save "save_no_map_cache_$round" /dev/null --live -c --no-map-cache "xen:$D" ||
            SAVE_OK=0
        timed_save "save_map_cache_$round" /dev/null --live -c "xen:$D" || SAVE_OK=0
    done
    for v in map_cache no_map_cache; do
        if grep -q "XENVM_KV save_${v}_1_rc 0" /tmp/kv.log &&
            grep -q "XENVM_KV save_${v}_2_rc 0" /tmp/kv.log; then
            step "save_$v" PASS
        else
            step "save_$v" FAIL
        fi
    done
fi

if [ $SAVE_OK = 1 ]; then
    # Like for like with xl save, which is not live either: one paused pass.
    timed_save save_no_live /tmp/img_nl --no-live -c "xen:$D" &&
        step save_no_live PASS || step save_no_live FAIL
    rm -f /tmp/img_nl
fi

echo "=== xl save -c (the stock toolstack, same domU)"
t0=$(now)
xl save -c guest /tmp/img_xl > /tmp/xls.out 2>&1
rc=$?
t1=$(now)
show "xl save" /tmp/xls.out
kv xl_save_seconds "$(dt "$t0" "$t1")"
kv xl_save_bytes "$(stat -c %s /tmp/img_xl 2>/dev/null || echo 0)"
if [ $rc = 0 ]; then step xl_save PASS; else step xl_save FAIL "exit $rc"; fi
# The guest resumes after a checkpointing save; give it a moment.
sleep 2

if [ $SAVE_OK = 1 ]; then
    # The image the restore uses: live, XBZRLE, and no -c, so the guest is
    # left paused exactly as the final pass saw it.
    if timed_save save_xbzrle /tmp/img --live --xbzrle "xen:$D"; then
        step save_xbzrle PASS
    else
        step save_xbzrle FAIL; SAVE_OK=0
    fi
    st=$(domstate guest)
    kv source_state_after_save "$st"
    case "$st" in
    *p*) ;;
    *) echo "    source not paused after save (state '$st'); pausing it"
       xl pause guest ;;
    esac
fi

###########################################################################
echo "=== step restore: memory-only restore into a paused domain"
if ! built restore; then
    step restore FAIL "not built"
    step digest_equal FAIL "not built"
elif [ $SAVE_OK != 1 ]; then
    step restore FAIL "no image: save failed"
    step digest_equal FAIL "no image"
else
    T=$(restore_paused guest-target)
    if [ -z "$T" ]; then
        step restore FAIL "xl restore -p of the target failed"
        step digest_equal FAIL "no target"
    else
        kv target_domid "$T"
        t0=$(now)
        timeout "$CMD_TIMEOUT" xc-colo restore --into-existing /tmp/img "xen:$T" \
            > /tmp/restore.out 2>&1
        rc=$?
        kv restore_seconds "$(dt "$t0" "$(now)")"
        kv restore_rc $rc
        show restore /tmp/restore.out
        if [ $rc = 0 ]; then step restore PASS; else step restore FAIL "exit $rc"; fi

        echo "=== step digest_equal: source and target, both paused"
        ds=$(digest_of --exclude-pagetables "xen:$D")
        dtg=$(digest_of --exclude-pagetables "xen:$T")
        kv digest_source "$ds"
        kv digest_target "$dtg"
        if [ -n "$ds" ] && [ "$ds" = "$dtg" ]; then
            step digest_equal PASS "$ds"
        else
            xc-colo digest --chunks --exclude-pagetables "xen:$D" > /tmp/cs 2>&1
            xc-colo digest --chunks --exclude-pagetables "xen:$T" > /tmp/ct 2>&1
            n=$(diff /tmp/cs /tmp/ct | grep -c '^+[0-9]')
            kv digest_chunks_differing "$n"
            diff /tmp/cs /tmp/ct | grep '^[-+][0-9]' | head -n 8
            step digest_equal FAIL "source $ds target $dtg ($n chunks differ)"
        fi
        xl destroy "$T"
    fi

    echo "=== step restore_fresh: into a domain created paused, never run"
    xl create -p /etc/xen/guest-fresh.cfg > /tmp/fresh.out 2>&1
    F=$(xl domid guest-fresh 2>/dev/null)
    if [ -z "$F" ]; then
        show "xl create -p" /tmp/fresh.out
        step restore_fresh FAIL "xl create -p failed"
    else
        xen-ops-test --target "$F" > /tmp/ops2.out 2>&1
        rc=$?
        sed 's/^XOPS /XOPS fresh_/' /tmp/ops2.out
        [ $rc = 0 ] && step ops_fresh_domain PASS || step ops_fresh_domain FAIL "exit $rc"
        t0=$(now)
        timeout "$CMD_TIMEOUT" xc-colo restore --into-existing /tmp/img "xen:$F" \
            > /tmp/restore2.out 2>&1
        rc=$?
        kv restore_fresh_seconds "$(dt "$t0" "$(now)")"
        show restore_fresh /tmp/restore2.out
        # Its page tables are the domain builder's, not the source's, so
        # the digests differ by design: reported, not judged.
        kv digest_fresh_target "$(digest_of --exclude-pagetables "xen:$F")"
        if [ $rc = 0 ]; then step restore_fresh PASS; else step restore_fresh FAIL "exit $rc"; fi
        xl destroy "$F"
    fi
fi
rm -f /tmp/img
xl unpause guest 2>/dev/null

###########################################################################
# Lines in a digest log; 0 while it is missing or empty (grep -c prints 0
# and exits 1 then, so "|| echo 0" would print a second 0).
logged_lines() {
    c=$(grep -c . "$1" 2>/dev/null)
    echo "${c:-0}"
}

echo "=== step checkpoint: $CKPT_COUNT checkpoints, then the sender dies"
if ! built checkpoint || ! built restore; then
    step checkpoint FAIL "not built"
elif [ ! -s /tmp/img_xl ]; then
    step checkpoint FAIL "no stock image for the receiving domain"
else
    C=$(restore_paused guest-ckpt)
    if [ -z "$C" ]; then
        step checkpoint FAIL "xl restore -p of the receiver failed"
    else
        kv checkpoint_target_domid "$C"
        rm -f /tmp/ckpt.fifo /tmp/dlog
        mkfifo /tmp/ckpt.fifo
        xc-colo restore --checkpointed /tmp/ckpt.fifo "xen:$C" > /tmp/recv.out 2>&1 &
        RPID=$!
        t0=$(now)
        xc-colo checkpoint --interval "$CKPT_INTERVAL_MS" --count 100000 \
            --digest-log /tmp/dlog --digest-exclude-pagetables \
            "xen:$D" fd:3 3>/tmp/ckpt.fifo > /tmp/send.out 2>&1 &
        SPID=$!
        i=0
        while [ "$(logged_lines /tmp/dlog)" -lt "$CKPT_COUNT" ]; do
            i=$((i + 1))
            if [ $i -gt 600 ] || ! kill -0 $SPID 2>/dev/null; then break; fi
            sleep 0.2
        done
        n=$(logged_lines /tmp/dlog)
        kv checkpoints_logged_before_kill "$n"
        kv checkpoint_seconds "$(dt "$t0" "$(now)")"
        kill -9 $SPID 2>/dev/null
        wait $SPID 2>/dev/null
        wait $RPID
        rc=$?
        show sender /tmp/send.out
        show receiver /tmp/recv.out
        kv checkpoint_receiver_rc $rc
        K=$(sed -n 's/.*failover: kept checkpoint \([0-9][0-9]*\).*/\1/p' /tmp/recv.out | tail -n1)
        kv checkpoint_kept "$K"
        echo "    [digest-log] $(tail -n 3 /tmp/dlog 2>/dev/null | tr '\n' '|')"
        want=$(awk -v k="$K" '$1 == k' /tmp/dlog 2>/dev/null | grep -oE '[0-9a-f]{32}' | head -n1)
        got=$(digest_of "xen:$C")
        gotx=$(digest_of --exclude-pagetables "xen:$C")
        kv checkpoint_digest_logged "$want"
        kv checkpoint_digest_target "$got"
        kv checkpoint_digest_target_nopt "$gotx"
        if [ $rc = 3 ] && [ -n "$K" ] && [ "$n" -ge "$CKPT_COUNT" ] &&
            [ -n "$want" ] && { [ "$want" = "$got" ] || [ "$want" = "$gotx" ]; }; then
            step checkpoint PASS "kept checkpoint $K, digest $want"
        else
            step checkpoint FAIL "receiver exit $rc, kept '$K', logged '$want', target '$got'/'$gotx'"
        fi
        xl destroy "$C"
    fi
fi
rm -f /tmp/img_xl

###########################################################################
echo "=== domU console (tail)"
tail -n 5 "$CONLOG_DIR/guest-guest.log" 2>/dev/null
xl list
xl destroy guest
echo "XENVM_TESTS_DONE"
