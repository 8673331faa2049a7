# dom0-test.sh - the harness's test steps, run by dom0's /init (busybox sh).
#
# Every result goes to the serial console as one machine-readable line:
#   XENVM_STEP NAME PASS|FAIL|INFO [detail]   a step's verdict
#   XENVM_KV KEY VALUE                         a figure
#   XENVM_JSON NAME {...}                      a --stats-json file, one line
# run.sh on the host turns them into the summary table and results.json.

# /etc/xcc-harness.conf (written by run.sh): XENVM_XEN (logdirty|security),
# HV_VERSION (the hypervisor package's), HOST_DOMCTL (the domctl interface
# version in the headers xc-colo was built with), LIBXEN_VERSION.
. /etc/xcc-harness.conf
CONLOG_DIR=/var/log/xen/console
CKPT_COUNT=${CKPT_COUNT:-20}
CKPT_INTERVAL_MS=${CKPT_INTERVAL_MS:-100}
CMD_TIMEOUT=300     # no single save or restore may take longer

now() { cut -d' ' -f1 /proc/uptime; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
kv() {
    echo "XENVM_KV $*"
    echo "$*" >> /tmp/kv.all
}
# kv_of KEY: the last value kv reported for KEY.
kv_of() { awk -v k="$1" '$1 == k { $1 = ""; v = substr($0, 2) } END { print v }' /tmp/kv.all 2>/dev/null; }
# In a pending part (run_pending_part: its proof has not yet passed in a
# whole run) a step's verdict is reported as INFO "pending (PASS|FAIL)".
step() {
    if [ "${PENDING_PART:-0}" = 1 ]; then
        _n=$1; _v=$2; shift 2
        echo "XENVM_STEP $_n INFO pending ($_v) $*"
    else
        echo "XENVM_STEP $*"
    fi
}
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

# Lines in a digest log; 0 while it is missing or empty (grep -c prints 0
# and exits 1 then, so "|| echo 0" would print a second 0).
logged_lines() {
    c=$(grep -c . "$1" 2>/dev/null)
    echo "${c:-0}"
}

# new_guest NAME [SECONDS]: xl create /etc/xen/NAME.cfg, then wait for the
# new domain's own workload lines on its console (the log still holds those
# of earlier domains of that name, so a grep alone would not wait). Prints
# "DOMID HEARTBEAT_PFN"; returns 1 (and shows why) if it did not start.
hb_lines() { cat "$CONLOG_DIR/guest-$1.log" 2>/dev/null | awk '/XCC_WORKLOAD ready/ { n++ } END { print n + 0 }'; }
new_guest() {
    n0=$(hb_lines "$1")
    if ! xl create "/etc/xen/$1.cfg" > "/tmp/create-$1.out" 2>&1; then
        show "xl create $1" "/tmp/create-$1.out" >&2
        return 1
    fi
    i=0
    while [ "$(hb_lines "$1")" -le "$n0" ]; do
        i=$((i + 1))
        if [ $i -gt "${2:-180}" ]; then
            echo "    [new_guest] $1 started no workload in ${2:-180} s" >&2
            tail -n 40 "$CONLOG_DIR/guest-$1.log" 2>/dev/null | sed 's/^/    [console] /' >&2
            return 1
        fi
        sleep 1
    done
    echo "$(xl domid "$1" 2>/dev/null) $(sed -n 's/.*XCC_HEARTBEAT pfn \(0x[0-9a-f]*\).*/\1/p' \
        "$CONLOG_DIR/guest-$1.log" | tail -n1)"
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

# continue_guest DOMID: lets a guest a save or checkpoint left stopped run
# again. xc-colo suspends a Xen guest for the final pass, and `xl unpause`
# cannot run a suspended guest: xen-ops-test --continue resumes it (and
# unpauses a paused one).
continue_guest() {
    xen-ops-test --continue "$1" > /tmp/continue.out 2>&1 || show continue /tmp/continue.out
    # A guest that was also paused by xl (a digest taken while it stood)
    # is resumed but still paused: let it run.
    case "$(xl list "$1" 2>/dev/null | awk 'NR == 2 { print $5 }')" in
    *p*) xl unpause "$1" ;;
    esac
}

# wait_listen PORT: until a TCP listener is up on it (30 s at most).
wait_listen() {
    i=0
    until netstat -ltn 2>/dev/null | grep -q ":$1 "; do
        i=$((i + 1)); [ $i -gt 150 ] && return 1
        sleep 0.2
    done
}

# count_of FILE: the byte count an xcc-count relay wrote (0 if none).
count_of() { awk '{ print $1; exit }' "$1" 2>/dev/null | grep . || echo 0; }

# timed_save_pipe LABEL ARGS...: xc-colo save to standard output, into a
# pipe whose reader (xcc-count -n) reads every byte.
timed_save_pipe() {
    label=$1; shift
    rm -f "/tmp/$label.json" "/tmp/$label.cnt"
    t0=$(now)
    { timeout "$CMD_TIMEOUT" xc-colo save --stats-json "/tmp/$label.json" "$@" - \
        2> "/tmp/$label.out"; } | xcc-count -n "/tmp/$label.cnt"
    t1=$(now)
    rc=0
    grep -q "saved xen" "/tmp/$label.out" || rc=1
    show "$label" "/tmp/$label.out"
    kv "${label}_rc" $rc | tee -a /tmp/kv.log
    kv "${label}_seconds" "$(dt "$t0" "$t1")"
    kv "${label}_bytes" "$(count_of "/tmp/$label.cnt")"
    emit_json "$label" "/tmp/$label.json"
    return $rc
}

# timed_save_tcp LABEL PORT TARGET ARGS...: xc-colo save over loopback TCP
# into 'xc-colo restore --listen' writing domain TARGET.
timed_save_tcp() {
    label=$1; port=$2; tgt=$3; shift 3
    rm -f "/tmp/$label.json"
    timeout "$CMD_TIMEOUT" xc-colo restore --listen "tcp:127.0.0.1:$port" \
        --into-existing --no-progress "xen:$tgt" > "/tmp/$label.rout" 2>&1 &
    rpid=$!
    wait_listen "$port" || echo "    [$label] no listener on port $port"
    t0=$(now)
    timeout "$CMD_TIMEOUT" xc-colo save --stats-json "/tmp/$label.json" "$@" \
        "tcp:127.0.0.1:$port" > "/tmp/$label.out" 2>&1
    t1=$(now)
    wait $rpid
    rrc=$?
    rc=0
    grep -q "saved xen" "/tmp/$label.out" || rc=1
    [ $rrc = 0 ] || rc=1
    show "$label" "/tmp/$label.out"
    show "$label restore" "/tmp/$label.rout"
    kv "${label}_rc" $rc | tee -a /tmp/kv.log
    kv "${label}_restore_rc" $rrc
    kv "${label}_seconds" "$(dt "$t0" "$t1")"
    emit_json "$label" "/tmp/$label.json"
    return $rc
}

# The workload's heartbeat page (domu_workload.c): hb_now DOMID prints the
# guest's CLOCK_BOOTTIME; hb_window DOMID SINCE [UNTIL] prints "GAPS MAX_MS
# MEDIAN_MS SUM_MS" for the guest stops that ended in the window.
hb_now() {
    xen-ops-test --heartbeat "$1" "$HB_PFN" 2>/dev/null |
        awk '$2 == "now_ns" { print $3 }'
}
hb_window() {
    xen-ops-test --heartbeat "$1" "$HB_PFN" "$2" "${3:-0}" > /tmp/hb.out 2>&1
    sed 's/^/    [heartbeat] /' /tmp/hb.out >&2
    awk '$2 == "window" { print $4, $6, $8, $10 }' /tmp/hb.out
}
# hb_wait_running DOMID SINCE: until the guest's clock passes SINCE + 1 s,
# i.e. it has run for a while after a stop (120 s at most).
hb_wait_running() {
    i=0
    while :; do
        t=$(hb_now "$1")
        [ -n "$t" ] && [ "$t" -gt $(($2 + 1000000000)) ] && return 0
        i=$((i + 1)); [ $i -gt 240 ] && return 1
        sleep 0.5
    done
}
secs_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# Domains other than dom0 and those named, destroyed by id.
destroy_others() {
    for id in $(xl list | awk 'NR > 1 { print $2 }'); do
        keep=0
        for k in 0 "$@"; do [ "$id" = "$k" ] && keep=1; done
        [ $keep = 1 ] || xl destroy "$id" 2>/dev/null
    done
}

echo "=== step interface: which Xen booted, and the domctl interface"
xl info | grep -E '^(xen_version|xen_extra|xen_changeset|total_memory|free_memory|nr_cpus)'
kv xen_build "$XENVM_XEN"
kv hypervisor_package "$HV_VERSION"
kv xen_version "$(xl info | awk '$1 == "xen_version" { print $3 }')"
kv libxen_dev "$LIBXEN_VERSION"
kv host_domctl_interface "$HOST_DOMCTL"
xen-ops-test --interface > /tmp/if.out 2>&1
rc=$?
cat /tmp/if.out
built_if=$(sed -n 's/.*domctl_interface \(0x[0-9a-f]*\).*/\1/p' /tmp/if.out)
kv domctl_interface "$built_if"
if [ $rc = 0 ] && [ "$built_if" = "$HOST_DOMCTL" ]; then
    step interface PASS "domctl $built_if (libxen-dev $LIBXEN_VERSION headers) accepted by Xen $(xl info | awk '$1 == "xen_version" { print $3 }') ($HV_VERSION)"
else
    step interface FAIL "domctl: built '$built_if', headers '$HOST_DOMCTL', Xen: $(cat /tmp/if.out)"
fi

###########################################################################
echo "=== step create: xl create the domU, wait for its workload"
t0=$(now)
set -- $(new_guest guest 120)
D=${1:-}; HB_PFN=${2:-}
kv xl_create_seconds "$(dt "$t0" "$(now)")"
if [ -z "$D" ] || [ -z "$HB_PFN" ]; then
    step create FAIL "domU did not start its workload"
    exit 0
fi
step create PASS "dom$D runs the workload"
kv source_domid "$D"
kv heartbeat_pfn "$HB_PFN"
sleep 2

###########################################################################
echo "=== step ops: the backend's ops table on the running domU"
# On the log-dirty build the dirty bits must come from Xen; on the security
# build (no shadow paging) from the digest scan.
want_mode=xen-log-dirty
[ "$XENVM_XEN" = security ] && want_mode=digest-scan
xen-ops-test "$D" > /tmp/ops.out 2>&1
rc=$?
cat /tmp/ops.out
mode=$(awk '$2 == "dirty_mode" { print $3 }' /tmp/ops.out)
known=$(sed -n 's/^XOPS dirty_known //p' /tmp/ops.out)
if [ $rc = 0 ] && [ "$mode" = "$want_mode" ]; then
    step ops PASS "$mode: dirty: $known"
else
    step ops FAIL "xen-ops-test exit $rc, dirty mode '$mode' (want $want_mode), $known"
fi
if [ "$XENVM_XEN" != security ]; then
    echo "=== step ops_digest_scan: XCC_XEN_DIRTY=digest on the same domU"
    XCC_XEN_DIRTY=digest xen-ops-test "$D" > /tmp/ops3.out 2>&1
    rc=$?
    sed 's/^XOPS /XOPS dscan_/' /tmp/ops3.out
    mode=$(awk '$2 == "dirty_mode" { print $3 }' /tmp/ops3.out)
    known=$(sed -n 's/^XOPS dirty_known //p' /tmp/ops3.out)
    if [ $rc = 0 ] && [ "$mode" = digest-scan ]; then
        step ops_digest_scan PASS "$mode: dirty: $known"
    else
        step ops_digest_scan FAIL "exit $rc, dirty mode '$mode', $known"
    fi
fi

if [ "${XENVM_QUICK:-0}" = 1 ]; then
    echo "=== XENVM_QUICK=1: interface, create and ops only"
    xl destroy "$D"
    echo "XENVM_TESTS_DONE"
    exit 0
fi

# run_part NAME: a part's own steps, /dom0-NAME-test.sh (run.sh copies every
# scripts/xen-vm/dom0-*-test.sh), sourced so that it shares the helpers
# above and the running domU $D. A part leaves $D running when it ends.
run_part() {
    if [ -f "/dom0-$1-test.sh" ]; then
        echo "=== part $1"
        . "/dom0-$1-test.sh"
    else
        step "part_$1" FAIL "/dom0-$1-test.sh is missing"
    fi
}
# run_pending_part NAME: a part whose steps are reported, not yet counted
# (the issue that adds them is open; README's Xen section lists them).
run_pending_part() {
    PENDING_PART=1
    run_part "$1"
    PENDING_PART=0
}
if [ -n "${XENVM_ONLY:-}" ]; then
    echo "=== XENVM_ONLY=$XENVM_ONLY: interface, create, ops and that part only"
    run_part "$XENVM_ONLY"
    xl destroy "$D" 2>/dev/null
    echo "XENVM_TESTS_DONE"
    exit 0
fi

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
echo "=== step save: xc-colo save (map cache, --no-map-cache) into a reading pipe and over TCP, xl save"
if ! built save; then
    step save_map_cache FAIL "not built"
    step save_no_map_cache FAIL "not built"
    step save_xbzrle FAIL "not built"
    SAVE_OK=0
else
    SAVE_OK=1
    # Same guest, same options, map cache on and off, alternated twice so
    # that neither profits from going second; -c keeps the guest running.
    # The stream goes into a pipe whose reader reads every byte, as a real
    # save's does (/dev/null would skip the copy of the page bytes).
    for round in 1 2; do
        timed_save_pipe "save_no_map_cache_$round" --live -c --no-map-cache "xen:$D" ||
            SAVE_OK=0
        timed_save_pipe "save_map_cache_$round" --live -c "xen:$D" || SAVE_OK=0
    done
    for v in map_cache no_map_cache; do
        if grep -q "XENVM_KV save_${v}_1_rc 0" /tmp/kv.log &&
            grep -q "XENVM_KV save_${v}_2_rc 0" /tmp/kv.log; then
            step "save_$v" PASS
        else
            step "save_$v" FAIL
        fi
    done

    # The same over loopback TCP into 'xc-colo restore --listen', which
    # writes a paused domain made by xl create -p (memory only).
    echo "=== step save_tcp: the same saves into restore over loopback TCP"
    xl create -p /etc/xen/guest-tcp.cfg > /tmp/tcp.out 2>&1
    TT=$(xl domid guest-tcp 2>/dev/null)
    if [ -z "$TT" ]; then
        show "xl create -p" /tmp/tcp.out
        step save_tcp FAIL "xl create -p failed"
    else
        ok=1; port=7001
        for round in 1 2; do
            timed_save_tcp "save_tcp_no_map_cache_$round" $port "$TT" --live -c \
                --no-map-cache "xen:$D" || ok=0
            port=$((port + 1))
            timed_save_tcp "save_tcp_map_cache_$round" $port "$TT" --live -c "xen:$D" || ok=0
            port=$((port + 1))
        done
        [ $ok = 1 ] && step save_tcp PASS "4 saves restored over TCP" ||
            step save_tcp FAIL
        xl destroy "$TT"
    fi
fi

if [ $SAVE_OK = 1 ]; then
    # Like for like with xl save, which is not live either: one paused pass.
    timed_save save_no_live /tmp/img_nl --no-live -c "xen:$D" &&
        step save_no_live PASS || step save_no_live FAIL
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

###########################################################################
echo "=== step restore: 5 live saves under the workload, each piped into a"
echo "    memory-only restore; source and target digests, both paused"
if ! built restore; then
    step restore FAIL "not built"
    step digest_equal FAIL "not built"
elif [ $SAVE_OK != 1 ]; then
    step restore FAIL "save failed"
    step digest_equal FAIL "save failed"
else
    T=$(restore_paused guest-target)
    if [ -z "$T" ]; then
        step restore FAIL "xl restore -p of the target failed"
        step digest_equal FAIL "no target"
    else
        kv target_domid "$T"
        # live_restore LABEL ARGS...: save --live (no -c: the source stays
        # paused as the final pass saw it) | restore; then compare digests
        # and let the source run again. Returns 0 when they are equal.
        live_restore() {
            label=$1; shift
            rm -f "/tmp/$label.json"
            t0=$(now)
            { timeout "$CMD_TIMEOUT" xc-colo save --live --stats-json "/tmp/$label.json" \
                "$@" "xen:$D" - 2> "/tmp/$label.out"; } |
                timeout "$CMD_TIMEOUT" xc-colo restore --into-existing --no-progress - \
                    "xen:$T" > "/tmp/$label.rout" 2>&1
            rrc=$?
            t1=$(now)
            src=0
            grep -q "saved xen" "/tmp/$label.out" || src=1
            show "$label" "/tmp/$label.out"
            show "$label restore" "/tmp/$label.rout"
            kv "${label}_rc" $src
            kv "${label}_restore_rc" $rrc
            kv "${label}_seconds" "$(dt "$t0" "$t1")"
            emit_json "$label" "/tmp/$label.json"
            [ $src = 0 ] && [ $rrc = 0 ] || restores_ok=0
            case "$(domstate guest)" in *p*|*s*) ;; *)
                echo "    source neither paused nor suspended after the save; pausing it"
                xl pause "$D" ;;
            esac
            ds=$(digest_of --exclude-pagetables "xen:$D")
            dtg=$(digest_of --exclude-pagetables "xen:$T")
            kv "${label}_digest_source" "$ds"
            kv "${label}_digest_target" "$dtg"
            continue_guest "$D"
            if [ -n "$ds" ] && [ "$ds" = "$dtg" ]; then
                return 0
            fi
            xc-colo digest --chunks --exclude-pagetables "xen:$D" > /tmp/cs 2>&1
            xc-colo digest --chunks --exclude-pagetables "xen:$T" > /tmp/ct 2>&1
            n=$(diff /tmp/cs /tmp/ct | grep -c '^+[0-9]')
            kv "${label}_chunks_differing" "$n"
            diff /tmp/cs /tmp/ct | grep '^[-+][0-9]' | head -n 8
            return 1
        }
        restores_ok=1; equal=0; last=""
        for i in 1 2 3 4 5; do
            case $i in
            1) live_restore save_xbzrle --xbzrle ;;
            3|5) live_restore "live_$i" --xbzrle ;;
            *) live_restore "live_$i" ;;
            esac && equal=$((equal + 1))
            last=$ds
            sleep 1     # the workload runs and dirties pages again
        done
        kv digest_source "$last"
        kv live_restores_equal "$equal/5"
        [ $restores_ok = 1 ] && step restore PASS "5 saves piped into restore" ||
            step restore FAIL
        if [ $equal = 5 ]; then
            step digest_equal PASS "5/5 live saves restored byte-exact ($want_mode)"
        else
            step digest_equal FAIL "$equal/5 live saves restored byte-exact ($want_mode)"
        fi
        if [ "$XENVM_XEN" != security ]; then
            echo "=== step digest_equal_digest_scan: the same, XCC_XEN_DIRTY=digest"
            restores_ok=1
            export XCC_XEN_DIRTY=digest
            live_restore live_dscan
            rc=$?
            unset XCC_XEN_DIRTY
            if [ $rc = 0 ] && [ $restores_ok = 1 ]; then
                step digest_equal_digest_scan PASS "$ds"
            else
                step digest_equal_digest_scan FAIL "source $ds target $dtg"
            fi
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
        timeout "$CMD_TIMEOUT" xc-colo restore --into-existing /tmp/img_nl "xen:$F" \
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
rm -f /tmp/img_nl
continue_guest "$D"

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
        hb0=""
        xc-colo restore --checkpointed /tmp/ckpt.fifo "xen:$C" > /tmp/recv.out 2>&1 &
        RPID=$!
        t0=$(now)
        xc-colo checkpoint --interval "$CKPT_INTERVAL_MS" --count 100000 \
            --digest-log /tmp/dlog --digest-exclude-pagetables \
            "xen:$D" fd:3 3>/tmp/ckpt.fifo > /tmp/send.out 2>&1 &
        SPID=$!
        i=0
        while [ "$(logged_lines /tmp/dlog)" -lt "$CKPT_COUNT" ]; do
            # The heartbeat window opens once checkpoints are under way, as
            # for xl remus below (the live phase stays out of it).
            if [ -z "$hb0" ] && [ "$(logged_lines /tmp/dlog)" -ge 2 ]; then
                hb0=$(hb_now "$D"); n0=$(logged_lines /tmp/dlog)
            fi
            i=$((i + 1))
            # 300 s: under TCG a Linux PV guest takes up to seconds to
            # suspend itself for a checkpoint.
            if [ $i -gt 1500 ] || ! kill -0 $SPID 2>/dev/null; then break; fi
            sleep 0.2
        done
        n=$(logged_lines /tmp/dlog)
        hb1=$(hb_now "$D")
        kv checkpoints_logged_before_kill "$n"
        kv checkpoint_seconds "$(dt "$t0" "$(now)")"
        kill -9 $SPID 2>/dev/null
        wait $SPID 2>/dev/null
        wait $RPID
        rc=$?
        show sender /tmp/send.out
        show receiver /tmp/recv.out
        kv checkpoint_receiver_rc $rc
        continue_guest "$D"    # the killed sender may have left it suspended
        # The guest's stops in the window, as its heartbeat saw them: the
        # live phase's final pass, then one per checkpoint.
        set -- $(hb_window "$D" "$hb0" "$hb1")
        kv ckpt_hb_window_seconds "$(secs_between "$hb0" "$hb1")"
        kv ckpt_hb_gaps "$1"
        kv ckpt_hb_max_ms "$2"
        kv ckpt_hb_median_ms "$3"
        kv ckpt_logged_in_window "$((n - ${n0:-0}))"
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
# The stock toolstack side by side with xc-colo on the same running domU.
# Downtime and pauses come from the workload's heartbeat (CLOCK_BOOTTIME
# gaps over 20 ms), read from dom0 the same way for every tool.
echo "=== step hb_noise: the heartbeat's gaps while nothing stops the guest"
h0=$(hb_now "$D")
sleep 3
set -- $(hb_window "$D" "$h0")
kv hb_noise_gaps "$1"
kv hb_noise_max_ms "$2"
[ -n "$h0" ] && step hb_noise INFO "$1 gaps over 20 ms in 3 s, max $2 ms" ||
    step hb_noise FAIL "no heartbeat at pfn '$HB_PFN'"

if [ "$XENVM_XEN" = security ]; then
    step migrate_xl INFO "not run: this Xen has no PV log-dirty"
    step remus_xl INFO "not run: this Xen has no PV log-dirty"
else
    echo "=== step migrate_xl: xl migrate into the same host, through a counting relay"
    since=$(hb_now "$D")
    t0=$(now)
    timeout "$CMD_TIMEOUT" xl migrate -s '' guest \
        "xcc-count /tmp/xlmig.cnt | xl migrate-receive -e" > /tmp/xlmig.out 2>&1
    rc=$?
    t1=$(now)
    # Progress lines repeat per percent: one line per iteration is enough.
    grep -v '%' /tmp/xlmig.out | head -n 40 | sed 's/^/    [xl migrate] /'
    its=$(grep -o 'Frames iteration [0-9]*' /tmp/xlmig.out | awk '{ print $3 }' | sort -n | tail -n1)
    D2=$(xl domid guest 2>/dev/null)
    kv xl_migrate_rc $rc
    kv xl_migrate_seconds "$(dt "$t0" "$t1")"
    kv xl_migrate_bytes "$(count_of /tmp/xlmig.cnt)"
    # xl hides libxc's progress lines while it migrates (they name each
    # iteration); without them the count is unknown, not guessed.
    if [ -n "$its" ]; then kv xl_migrate_iterations "$((its + 1))"; else kv xl_migrate_iterations -; fi
    if [ $rc = 0 ] && [ -n "$D2" ] && [ "$D2" != "$D" ] && hb_wait_running "$D2" "$since"; then
        set -- $(hb_window "$D2" "$since")
        kv xl_migrate_downtime_ms "$2"
        kv xl_migrate_hb_gaps "$1"
        step migrate_xl PASS "dom$D -> dom$D2, downtime $2 ms (heartbeat)"
        D=$D2
    else
        step migrate_xl FAIL "exit $rc, guest now dom'$D2'"
        [ -n "$D2" ] && D=$D2
    fi
    destroy_others "$D"
fi

echo "=== step migrate_xcc: xc-colo migrate --live [-x] into a paused xl create -p domain"
xl create -p /etc/xen/guest-mig.cfg > /tmp/mig.out 2>&1
M=$(xl domid guest-mig 2>/dev/null)
if [ -z "$M" ]; then
    show "xl create -p" /tmp/mig.out
    step migrate_xcc FAIL "xl create -p failed"
else
    ok=1
    for v in plain xbzrle; do
        label=migrate_xcc_$v
        x=""; [ $v = xbzrle ] && x=--xbzrle
        since=$(hb_now "$D")
        rm -f "/tmp/$label.json" "/tmp/$label.cnt"
        t0=$(now)
        # -c: the source runs on afterwards (the target is memory only and
        # cannot), so its heartbeat shows the stop the migration caused.
        { timeout "$CMD_TIMEOUT" xc-colo migrate --live -c $x --stats-json "/tmp/$label.json" \
            "xen:$D" - 2> "/tmp/$label.out"; } | xcc-count "/tmp/$label.cnt" |
            timeout "$CMD_TIMEOUT" xc-colo restore --into-existing --no-progress - "xen:$M" \
                > "/tmp/$label.rout" 2>&1
        rrc=$?
        t1=$(now)
        src=0; grep -q "saved xen" "/tmp/$label.out" || src=1
        show "$label" "/tmp/$label.out"
        show "$label restore" "/tmp/$label.rout"
        kv "${label}_rc" $src
        kv "${label}_restore_rc" $rrc
        kv "${label}_seconds" "$(dt "$t0" "$t1")"
        kv "${label}_bytes" "$(count_of "/tmp/$label.cnt")"
        emit_json "$label" "/tmp/$label.json"
        if [ $src = 0 ] && [ $rrc = 0 ] && hb_wait_running "$D" "$since"; then
            set -- $(hb_window "$D" "$since")
            kv "${label}_downtime_ms" "$2"
        else
            ok=0
        fi
    done
    [ $ok = 1 ] && step migrate_xcc PASS || step migrate_xcc FAIL
    xl destroy "$M"
fi

if [ "$XENVM_XEN" != security ]; then
    echo "=== step remus_xl: xl remus -i 100, no network or disk buffering"
    rm -f /tmp/remus.pid /tmp/remus.cnt
    since=$(hb_now "$D")
    timeout 300 xl remus -F -n -d -u -e -i 100 -s '' guest \
        "xcc-count -p /tmp/remus.pid /tmp/remus.cnt | xl migrate-receive -r -e" \
        > /tmp/remus.out 2>&1 &
    RP=$!
    # Wait for the checkpoints to start: the heartbeat sees a stop per
    # checkpoint; measure over the next 10 s of guest time.
    i=0; started=0
    while [ $i -lt 240 ] && kill -0 $RP 2>/dev/null; do
        set -- $(hb_window "$D" "$since" 2>/dev/null)
        [ "${1:-0}" -ge 3 ] && { started=1; break; }
        i=$((i + 1)); sleep 0.5
    done
    w0=$(hb_now "$D")
    [ $started = 1 ] && sleep 10
    w1=$(hb_now "$D")
    [ -s /tmp/remus.pid ] && kill -TERM "$(cat /tmp/remus.pid)" 2>/dev/null
    i=0
    while kill -0 $RP 2>/dev/null && [ $i -lt 120 ]; do i=$((i + 1)); sleep 0.5; done
    kill $RP 2>/dev/null    # timeout passes SIGTERM on to xl remus
    wait $RP
    rc=$?
    grep -v '%' /tmp/remus.out | head -n 30 | sed 's/^/    [xl remus] /'
    set -- $(hb_window "$D" "$w0" "$w1")
    win=$(secs_between "$w0" "$w1")
    kv remus_xl_rc $rc
    kv remus_xl_window_seconds "$win"
    kv remus_xl_checkpoints "$1"
    kv remus_xl_median_pause_ms "$3"
    kv remus_xl_max_pause_ms "$2"
    kv remus_xl_bytes "$(count_of /tmp/remus.cnt)"
    xl list
    destroy_others "$D"
    continue_guest "$D"
    if [ $started = 1 ] && [ "${1:-0}" -gt 0 ]; then
        step remus_xl PASS "$1 checkpoints in $win s, median pause $3 ms"
    else
        step remus_xl FAIL "no checkpoints seen (exit $rc)"
    fi
fi

run_part suspend
# Parts' own steps that need the running domU $D (destroyed below).
# pvstate only saves $D; compat and receiver replace it by a restored one.
run_part pvstate
run_part compat
run_part receiver
# These need the running domU the receiver part leaves in $D, so they come
# before it is destroyed below. A part whose proof has not yet passed in a
# whole run goes in as run_pending_part (reported, not counted).
run_part pagetypes
run_part wire
run_part threads

###########################################################################
echo "=== domU console (tail)"
tail -n 5 "$CONLOG_DIR/guest-guest.log" 2>/dev/null
xl list
xl destroy "$D"

###########################################################################
# PVH: the same kernel and workload as type = "pvh". Under -cpu qemu64 the
# CPU has SVM without nested paging, so Xen runs it on shadow paging; a Xen
# without shadow paging (the security build) cannot run it at all.
if [ "$XENVM_XEN" = security ]; then
    step pvh INFO "not run: no HAP under TCG and no shadow paging in this Xen"
elif [ "${XENVM_PVH:-0}" = 0 ]; then
    step pvh INFO "not run: XENVM_PVH=1 adds it (its 128 MiB kernel panicked, out of memory, in the last try)"
else
    echo "=== step pvh: a PVH domU: ops, live save | restore, digests"
    t0=$(now)
    xl create /etc/xen/guest-pvh.cfg > /tmp/pvh.out 2>&1
    rc=$?
    show "xl create pvh" /tmp/pvh.out
    P=$(xl domid guest-pvh 2>/dev/null)
    if [ $rc != 0 ] || [ -z "$P" ] || ! wait_console guest-pvh XCC_WORKLOAD 180; then
        step pvh FAIL "the PVH domU did not start its workload"
        tail -n 40 "$CONLOG_DIR/guest-guest-pvh.log" 2>/dev/null
    else
        kv pvh_create_seconds "$(dt "$t0" "$(now)")"
        sleep 2
        xen-ops-test "$P" > /tmp/opsp.out 2>&1
        rc=$?
        sed 's/^XOPS /XOPS pvh_/' /tmp/opsp.out
        mode=$(awk '$2 == "dirty_mode" { print $3 }' /tmp/opsp.out)
        known=$(sed -n 's/^XOPS dirty_known //p' /tmp/opsp.out)
        [ $rc = 0 ] && [ "$mode" = xen-log-dirty ] &&
            step pvh_ops PASS "$mode: dirty: $known" ||
            step pvh_ops FAIL "exit $rc, mode '$mode', $known"
        xl create -p /etc/xen/guest-pvh-target.cfg > /tmp/pvht.out 2>&1
        PT=$(xl domid guest-pvh-target 2>/dev/null)
        if [ -z "$PT" ]; then
            show "xl create -p pvh" /tmp/pvht.out
            step pvh FAIL "xl create -p of the PVH target failed"
        else
            t0=$(now)
            { timeout "$CMD_TIMEOUT" xc-colo save --live --stats-json /tmp/pvh_save.json \
                "xen:$P" - 2> /tmp/pvh_save.out; } |
                timeout "$CMD_TIMEOUT" xc-colo restore --into-existing --no-progress - \
                    "xen:$PT" > /tmp/pvh_restore.out 2>&1
            rrc=$?
            kv pvh_save_restore_seconds "$(dt "$t0" "$(now)")"
            show "pvh save" /tmp/pvh_save.out
            show "pvh restore" /tmp/pvh_restore.out
            emit_json pvh_save /tmp/pvh_save.json
            ds=$(digest_of "xen:$P")
            dtg=$(digest_of "xen:$PT")
            kv pvh_digest_source "$ds"
            kv pvh_digest_target "$dtg"
            if grep -q "saved xen" /tmp/pvh_save.out && [ $rrc = 0 ] &&
                [ -n "$ds" ] && [ "$ds" = "$dtg" ]; then
                step pvh PASS "live save | restore, digests equal $ds"
            else
                step pvh FAIL "restore exit $rrc, source $ds target $dtg"
            fi
            xl destroy "$PT"
        fi
    fi
    xl destroy guest-pvh 2>/dev/null
fi
echo "XENVM_TESTS_DONE"
