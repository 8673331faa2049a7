# dom0-receiver-test.sh - the receiver part (issue 15): `xc-colo restore
# IMG xen:` makes a new domain, through libxl, from a stock `xl save` image
# and from an xc-colo live XBZRLE stream (the translator); `xc-colo migrate`
# hands a guest over to a new domain and destroys the source only after
# the receiver runs it. In each the guest runs: its heartbeat advances and
# its self-check passes.
# Sourced by dom0-test.sh (run_part receiver): uses its helpers and $D, and
# leaves a running domU named guest in $D.

# hb_selfcheck DOMID: "CHECKS FAILURES LEDGER" from the workload's page.
hb_selfcheck() {
    xen-ops-test --heartbeat "$1" "$HB_PFN" 2>/dev/null |
        awk '$2 == "selfcheck" { print $4, $6, $8 }'
}
# selfcheck_advances DOMID: until the self-check has passed twice more, with
# no failure (60 s at most); prints "CHECKS0 CHECKS1 FAILURES".
selfcheck_advances() {
    set -- "$1" $(hb_selfcheck "$1")
    c0=${2:-0}; i=0
    while :; do
        set -- "$1" $(hb_selfcheck "$1")
        [ -n "$2" ] && [ "$2" -ge $((c0 + 2)) ] && break
        i=$((i + 1)); [ $i -gt 120 ] && break
        sleep 0.5
    done
    echo "$c0 ${2:-0} ${3:-?}"
}
ndomains() { xl list | awk 'NR > 1' | wc -l; }
# recv_restore LABEL ARGS...: one xc-colo restore into a new domain.
recv_restore() {
    label=$1; shift
    rm -f "/tmp/$label.json"
    t0=$(now)
    timeout "$CMD_TIMEOUT" xc-colo restore --stats-json "/tmp/$label.json" "$@" \
        > "/tmp/$label.dom" 2> "/tmp/$label.out"
    rc=$?
    kv "${label}_seconds" "$(dt "$t0" "$(now)")"
    kv "${label}_rc" $rc
    show "$label" "/tmp/$label.out"
    emit_json "$label" "/tmp/$label.json"
    return $rc
}
# Makes sure a domU named guest runs at the end, whatever happened.
recv_ensure_guest() {
    D=$(xl domid guest 2>/dev/null)
    [ -n "$D" ] && { xl unpause "$D" 2>/dev/null; return 0; }
    echo "    [receiver] no domU named guest: xl create /etc/xen/guest.cfg"
    set -- $(new_guest guest 120)
    D=${1:-}
    [ -n "${2:-}" ] && HB_PFN=$2
    [ -n "$D" ]
}

echo "=== step receiver_xl_save: xl save of the running domU (destroys it)"
set -- $(hb_selfcheck "$D")
kv receiver_selfcheck_before "checks=$1 failures=$2 ledger=$3"
since=$(hb_now "$D")
t0=$(now)
xl save "$D" /tmp/recv_img > /tmp/recv_save.out 2>&1
rc=$?
kv receiver_xl_save_seconds "$(dt "$t0" "$(now)")"
kv receiver_xl_save_bytes "$(stat -c %s /tmp/recv_img 2>/dev/null || echo 0)"
show "xl save" /tmp/recv_save.out
if [ $rc != 0 ] || [ -n "$(xl domid guest 2>/dev/null)" ]; then
    step receiver_xl_save FAIL "xl save exit $rc"
    recv_ensure_guest
else
    step receiver_xl_save PASS "$(stat -c %s /tmp/recv_img) bytes, source destroyed"

    echo "=== step receiver_bad_input: truncated header, refused config, truncated stream"
    n0=$(ndomains)
    ok=1; why=""
    head -c 40 /tmp/recv_img > /tmp/recv_trunc_hdr
    recv_restore recv_bad_header -e /tmp/recv_trunc_hdr xen:
    rc=$?
    { [ $rc = 1 ] && grep -qE "after 40 of its 48 bytes|ends at offset 40" /tmp/recv_bad_header.out; } ||
        { ok=0; why="$why header:rc=$rc"; }
    echo '{"c_info": {"type": "no-such-type", "name": "recv-bad"}}' > /tmp/recv_bad.json
    recv_restore recv_bad_config -e --config /tmp/recv_bad.json /tmp/recv_img xen:
    rc=$?
    { [ $rc = 1 ] && grep -q "not one libxl takes" /tmp/recv_bad_config.out; } ||
        { ok=0; why="$why config:rc=$rc"; }
    # Half the image: libxl makes the domain, the stream ends in its memory.
    half=$(($(stat -c %s /tmp/recv_img) / 2))
    head -c "$half" /tmp/recv_img > /tmp/recv_half
    recv_restore recv_truncated -e --name recv-half /tmp/recv_half xen:
    rc=$?
    left=$(xl domid recv-half 2>/dev/null)
    { [ $rc = 1 ] && grep -qE "offset [0-9]+" /tmp/recv_truncated.out &&
        [ -z "$left" ] && [ "$(ndomains)" = "$n0" ]; } ||
        { ok=0; why="$why truncated:rc=$rc,left='$left'"; }
    [ -n "$left" ] && xl destroy "$left"
    rm -f /tmp/recv_half /tmp/recv_trunc_hdr
    xl list
    if [ $ok = 1 ]; then
        step receiver_bad_input PASS "3 bad inputs: exit 1, named, no domain left"
    else
        step receiver_bad_input FAIL "$why"
    fi

    echo "=== step receiver_xl_image: xc-colo restore IMG xen: makes a domain that runs"
    recv_restore receiver_restore -e /tmp/recv_img xen:
    rc=$?
    N=$(xl domid guest 2>/dev/null)
    printed=$(cat /tmp/receiver_restore.dom)
    kv receiver_domid "$N"
    if [ $rc = 0 ] && [ -n "$N" ] && [ "$printed" = "$N" ] &&
        hb_wait_running "$N" "$since"; then
        set -- $(selfcheck_advances "$N")
        SC="$1 -> $2"
        kv receiver_selfcheck "checks $1 -> $2, failures $3"
        set -- $(hb_window "$N" "$since")
        kv receiver_hb_max_gap_ms "$2"
        set -- $(hb_selfcheck "$N")
        if [ "${2:-x}" = 0 ] && [ "$1" -ge 2 ]; then
            step receiver_xl_image PASS "dom$N runs: heartbeat advances, self-check passes (checks $SC), 0 failures"
        else
            step receiver_xl_image FAIL "dom$N: self-check checks '$1' failures '$2'"
        fi
        D=$N
    else
        step receiver_xl_image FAIL "exit $rc, domain '$N' (printed '$printed')"
        tail -n 20 "$CONLOG_DIR/guest-guest.log" 2>/dev/null
    fi
fi
recv_ensure_guest
rm -f /tmp/recv_img

echo "=== step receiver_paused: xl save -c, then restore -p --config guest.cfg (xl syntax) --name (no -e: xc-colo waits)"
xl save -c "$D" /tmp/recv_img2 > /tmp/recv_save2.out 2>&1
rc=$?
show "xl save -c" /tmp/recv_save2.out
if [ $rc != 0 ]; then
    step receiver_paused FAIL "xl save -c exit $rc"
else
    rm -f /tmp/recv_p.dom
    timeout "$CMD_TIMEOUT" xc-colo restore -p --config /etc/xen/guest.cfg \
        --name guest-recvp /tmp/recv_img2 xen: \
        > /tmp/recv_p.dom 2> /tmp/recv_p.out &
    WP=$!
    i=0
    while [ ! -s /tmp/recv_p.dom ] && kill -0 $WP 2>/dev/null && [ $i -lt 600 ]; do
        i=$((i + 1)); sleep 0.5
    done
    P=$(xl domid guest-recvp 2>/dev/null)
    st=$(domstate guest-recvp)
    alive=0; kill -0 $WP 2>/dev/null && alive=1
    [ -n "$P" ] && xl destroy "$P"
    wait $WP
    wrc=$?
    show "restore -p" /tmp/recv_p.out
    kv receiver_paused_state "$st"
    kv receiver_paused_wait_rc "$wrc"
    if [ -n "$P" ] && echo "$st" | grep -q p && [ $alive = 1 ] && [ $wrc = 0 ] &&
        grep -q "was destroyed" /tmp/recv_p.out; then
        step receiver_paused PASS "dom$P paused ($st); xc-colo waited and exited 0 when it was destroyed"
    else
        step receiver_paused FAIL "dom'$P' state '$st', waiting $alive, exit $wrc"
    fi
fi
rm -f /tmp/recv_img2
recv_ensure_guest

echo "=== step receiver_vs_xl: the same domU, xl save then xl restore -e or xc-colo restore -e, alternately"
# Time from the restore command's start to its return (the domain runs);
# the guest's stop as its heartbeat saw it (xl save's suspend to running).
ok=1
for round in 1 2; do
    for tool in xl xcc; do
        label=receiver_vs_${tool}_$round
        since=$(hb_now "$D")
        xl save "$D" /tmp/recv_img3 > /tmp/recv_save3.out 2>&1 ||
            { show "xl save" /tmp/recv_save3.out; ok=0; break 2; }
        t0=$(now)
        if [ $tool = xl ]; then
            timeout "$CMD_TIMEOUT" xl restore -e /tmp/recv_img3 > "/tmp/$label.out" 2>&1
        else
            timeout "$CMD_TIMEOUT" xc-colo restore -e --stats-json "/tmp/$label.json" \
                /tmp/recv_img3 xen: > /dev/null 2> "/tmp/$label.out"
        fi
        rc=$?
        kv "${label}_seconds" "$(dt "$t0" "$(now)")"
        [ $rc = 0 ] || { show "$label" "/tmp/$label.out"; ok=0; }
        emit_json "$label" "/tmp/$label.json"
        rm -f "/tmp/$label.json"
        D=$(xl domid guest 2>/dev/null)
        if [ -n "$D" ] && hb_wait_running "$D" "$since"; then
            set -- $(hb_window "$D" "$since")
            kv "${label}_guest_stop_ms" "$2"
        else
            ok=0; recv_ensure_guest
        fi
    done
done
rm -f /tmp/recv_img3
recv_ensure_guest
[ $ok = 1 ] && step receiver_vs_xl PASS "2 rounds each; figures in receiver_vs_*" ||
    step receiver_vs_xl FAIL "a save or restore failed"

# recv_runs LABEL DOMID SINCE: the guest in DOMID runs (heartbeat advances
# after SINCE) and its self-check passes; kv lines for the self-check and
# the largest heartbeat gap; sets SC, GAP, and WHY when it does not run.
# Returns 0 when it runs.
recv_runs() {
    label=$1; N=$2; since=$3; WHY=""
    hb_wait_running "$N" "$since" || { WHY="no heartbeat in dom$N"; return 1; }
    set -- $(selfcheck_advances "$N")
    SC="$1 -> $2"
    kv "${label}_selfcheck" "checks $1 -> $2, failures $3"
    set -- $(hb_window "$N" "$since")
    kv "${label}_hb_max_gap_ms" "$2"
    GAP=$2
    set -- $(hb_selfcheck "$N")
    [ "${2:-x}" = 0 ] && [ "${1:-0}" -ge 2 ] ||
        { WHY="self-check checks '$1' failures '$2'"; return 1; }
    return 0
}

echo "=== step receiver_xcc_live: xc-colo save --live --xbzrle, xl destroy, xc-colo restore FILE xen: (the translator)"
since=$(hb_now "$D")
OLD=$D
if ! timed_save recv_xcc_save /tmp/recv_xcc --live --xbzrle --verify "xen:$D"; then
    step receiver_xcc_live FAIL "xc-colo save failed"
    continue_guest "$D"
else
    xc-colo inspect /tmp/recv_xcc > /tmp/recv_xcc.inspect 2>&1
    kv receiver_xcc_xbzrle_records "$(grep -c XBZRLE_PAGES /tmp/recv_xcc.inspect)"
    xl destroy "$OLD"
    n0=$(ndomains)
    # A cut stream first: exit 1, named, no domain left behind.
    half=$(($(stat -c %s /tmp/recv_xcc) / 2))
    head -c "$half" /tmp/recv_xcc > /tmp/recv_xhalf
    recv_restore recv_xcc_truncated -e --name recv-xhalf /tmp/recv_xhalf xen:
    trc=$?
    left=$(xl domid recv-xhalf 2>/dev/null)
    [ -n "$left" ] && xl destroy "$left"
    rm -f /tmp/recv_xhalf
    recv_restore receiver_xcc_restore -e /tmp/recv_xcc xen:
    rc=$?
    N=$(xl domid guest 2>/dev/null)
    if [ $trc != 1 ] || [ -n "$left" ] || ! grep -q "offset" /tmp/recv_xcc_truncated.out; then
        step receiver_xcc_live FAIL "the cut stream: exit $trc, domain left '$left'"
    elif [ $rc = 0 ] && [ -n "$N" ] && recv_runs receiver_xcc "$N" "$since"; then
        step receiver_xcc_live PASS "dom$N runs from an xc-colo live XBZRLE stream ($(grep -c XBZRLE_PAGES /tmp/recv_xcc.inspect) XBZRLE records): heartbeat advances, self-check $SC, 0 failures; source destroyed first; a cut stream exits 1 and leaves no domain"
        D=$N
    else
        step receiver_xcc_live FAIL "exit $rc, domain '$N': $WHY"
    fi
fi
rm -f /tmp/recv_xcc
recv_ensure_guest

echo "=== step receiver_migrate: xc-colo migrate --live --xbzrle xen:D exec:'xc-colo restore - xen:' (same Xen, new domain)"
since=$(hb_now "$D")
OLD=$D
rm -f /tmp/recv_mig.json /tmp/recv_mig_rx.json
t0=$(now)
timeout "$CMD_TIMEOUT" xc-colo migrate --live --xbzrle --stats-json /tmp/recv_mig.json \
    "xen:$D" "exec:xc-colo restore -e --stats-json /tmp/recv_mig_rx.json - xen: > /tmp/recv_mig_rx.dom 2> /tmp/recv_mig_rx.out" \
    > /tmp/recv_mig.out 2>&1
rc=$?
kv receiver_migrate_seconds "$(dt "$t0" "$(now)")"
show "migrate" /tmp/recv_mig.out
show "receiver" /tmp/recv_mig_rx.out
emit_json receiver_migrate /tmp/recv_mig.json
emit_json receiver_migrate_rx /tmp/recv_mig_rx.json
kv receiver_migrate_bytes "$(sed -n 's/.*"transferred": *\([0-9]*\).*/\1/p' /tmp/recv_mig.json | head -n1)"
N=$(xl domid guest 2>/dev/null)
gone=1; xl list "$OLD" > /dev/null 2>&1 && gone=0
away=$(xl domid guest--migratedaway 2>/dev/null)
if [ $rc = 0 ] && [ -n "$N" ] && [ "$N" != "$OLD" ] && [ $gone = 1 ] && [ -z "$away" ] &&
    recv_runs receiver_migrate "$N" "$since"; then
    kv receiver_migrate_downtime_ms "$GAP"
    step receiver_migrate PASS "dom$OLD -> dom$N: source destroyed after the receiver ran it; heartbeat advances (largest gap $GAP ms), self-check $SC, 0 failures"
    D=$N
else
    step receiver_migrate FAIL "exit $rc, new '$N', source gone $gone, away '$away': $WHY"
fi
recv_ensure_guest

echo "=== step receiver_migrate_fails: the receiver goes away mid-stream; the source runs on, under its name"
since=$(hb_now "$D")
OLD=$D
timeout "$CMD_TIMEOUT" xc-colo migrate --live --xbzrle "xen:$D" \
    "exec:head -c 20000000 > /dev/null" > /tmp/recv_migf.out 2>&1
rc=$?
show "migrate" /tmp/recv_migf.out
N=$(xl domid guest 2>/dev/null)
if [ $rc = 1 ] && [ "$N" = "$OLD" ] && hb_wait_running "$N" "$(hb_now "$N")"; then
    step receiver_migrate_fails PASS "exit 1; dom$N keeps its name and its heartbeat advances"
else
    step receiver_migrate_fails FAIL "exit $rc, guest is '$N' (was $OLD)"
    continue_guest "$OLD"
fi
recv_ensure_guest

# The secondary's memory, before it runs, is compared with the logged
# digest of the kept checkpoint, with PV page tables and the pages
# written before the secondary runs counted as zeros on both sides: those
# libxenguest rewrites with the new domain's frames (the guest's p2m frames
# and its start_info page, from the guest's own X86_PV_P2M_FRAMES and vCPU
# 0 records in an `xl save -c` image read by inspect) and the xenstore and
# console rings dom0's daemons serve (xen-ops-test --ring-pfns). Without
# the rings the two differed; with them they are equal.
recv_rewritten_pfns() {
    xl save -c "$1" /tmp/rck_probe.img > /tmp/rck_probe.out 2>&1 || return 1
    case "$(domstate "$1")" in *p*) xl unpause "$1" ;; esac
    xc-colo inspect --json /tmp/rck_probe.img > /tmp/rck_probe.json 2>/dev/null
    rm -f /tmp/rck_probe.img
    fr=$(grep '"name":"X86_PV_P2M_FRAMES"' /tmp/rck_probe.json |
        sed -n 's/.*"frame_pfns":"\([^"]*\)".*/\1/p')
    si=$(grep '"name":"X86_PV_VCPU_BASIC"' /tmp/rck_probe.json | head -n1 |
        sed -n 's/.*"start_info_pfn":\([0-9]*\).*/\1/p')
    # The xenstore and console rings: xenstored and xenconsoled serve a
    # restored domain's rings (indexes move) as soon as it exists.
    rings=$(xen-ops-test --ring-pfns "$(xl domid "$1")" 2>/dev/null |
        awk '$2 == "ring_pfns" && $3 ~ /^[0-9]+$/ { print $3 "," $4 }')
    [ -n "$fr" ] && [ -n "$si" ] && [ -n "$rings" ] || return 1
    echo "$fr,$si,$rings"
}
echo "=== step receiver_failover: checkpoints every 100 ms into restore --checkpointed xen: (a new domain, Remus), kill -9 of the sender after 11 logged"
rm -f /tmp/rck.fifo /tmp/rdlog /tmp/rck.json
mkfifo /tmp/rck.fifo
OLD=$D
RW=$(recv_rewritten_pfns guest) || RW=""
kv receiver_failover_rewritten_pfns "$RW"
timeout "$CMD_TIMEOUT" xc-colo restore --checkpointed -p -e --name guest-sec \
    --stats-json /tmp/rck.json /tmp/rck.fifo xen: > /tmp/rck.dom 2> /tmp/rck.out &
RPID=$!
xc-colo checkpoint --interval 100 --count 100000 --xbzrle \
    --digest-log /tmp/rdlog --digest-exclude-pagetables ${RW:+--digest-exclude-pfns "$RW"} \
    "xen:$D" fd:3 3>/tmp/rck.fifo > /tmp/rck_send.out 2>&1 &
SPID=$!
i=0
# 11 logged: the 11th may still be on its way when the sender dies, so
# the receiver holds 10 at least.
while [ "$(logged_lines /tmp/rdlog)" -lt 11 ]; do
    i=$((i + 1))
    if [ $i -gt 1500 ] || ! kill -0 $SPID 2>/dev/null; then break; fi
    sleep 0.2
done
n=$(logged_lines /tmp/rdlog)
kv receiver_failover_logged_before_kill "$n"
kill -9 $SPID 2>/dev/null
wait $SPID 2>/dev/null
wait $RPID
rc=$?
show sender /tmp/rck_send.out
show receiver /tmp/rck.out
emit_json receiver_failover /tmp/rck.json
kv receiver_failover_rc $rc
K=$(sed -n 's/^failover: kept checkpoint \([0-9][0-9]*\), domain \([0-9][0-9]*\).*/\1/p' /tmp/rck.dom)
S=$(sed -n 's/^failover: kept checkpoint \([0-9][0-9]*\), domain \([0-9][0-9]*\).*/\2/p' /tmp/rck.dom)
kv receiver_failover_kept "$K"
# The secondary's memory before it runs, against the primary's digest of
# the kept checkpoint (page tables as zeros on both sides). libxenguest
# rewrites the guest's p2m frames and start_info with the new domain's
# frames, so a difference there is expected: reported, not judged.
want=$(awk -v k="$K" '$1 == k' /tmp/rdlog 2>/dev/null | grep -oE '[0-9a-f]{32}' | head -n1)
gotx=""
[ -n "$S" ] && gotx=$(digest_of --exclude-pagetables ${RW:+--exclude-pfns "$RW"} "xen:$S")
kv receiver_failover_digest_logged "$want"
kv receiver_failover_digest_secondary "$gotx"
# The primary is gone (its sender died): destroy it, then the secondary
# runs under the guest's name.
xl destroy "$OLD" 2>/dev/null
same=no; [ -n "$want" ] && [ "$want" = "$gotx" ] && same=yes
kv receiver_failover_memory_equals_log "$same"
WHY="memory $gotx, logged $want"
if [ $rc = 3 ] && [ -n "$K" ] && [ "$K" -ge 10 ] && [ -n "$S" ] &&
    [ -n "$RW" ] && [ $same = yes ] &&
    xl rename guest-sec guest && xl unpause "$S" &&
    recv_runs receiver_failover "$S" "$(hb_now "$S")"; then
    step receiver_failover PASS "exit 3, kept checkpoint $K of $n logged; dom$S's memory before it ran = the logged digest of $K ($want; page tables, p2m frames, start_info and the xenstore and console rings as zeros); it runs after the primary is destroyed: heartbeat advances, self-check $SC, 0 failures"
    D=$S
else
    step receiver_failover FAIL "exit $rc, kept '$K', secondary '$S', rewritten pfns '$RW': $WHY"
    [ -n "$S" ] && xl destroy "$S" 2>/dev/null
fi
rm -f /tmp/rck.fifo
recv_ensure_guest
