# dom0-pvstate-test.sh - the PV domain-state records in a real save of the
# running PV domU $D, sourced by dom0-test.sh (run_part pvstate;
# XENVM_ONLY=pvstate runs it alone). It shares that script's helpers and
# leaves $D running.
#
#   pvstate_save     xc-colo save -c of $D (not live) exits 0, guest runs on
#   pvstate_inspect  xc-colo inspect --json of the image accepts it (so every
#                    record passed the checks: vCPU ids, cr3 typed L4 in the
#                    stream's PAGE_DATA, P2M_FRAMES against X86_PV_INFO)
#                    and lists every record: X86_PV_INFO, X86_CPUID_POLICY,
#                    X86_MSR_POLICY, STATIC_DATA_END, X86_PV_P2M_FRAMES
#                    before the first PAGE_DATA; X86_TSC_INFO, SHARED_INFO
#                    and the vCPU records after the last one
#   pvstate_fields   the decoded fields are the domain's: guest width 8 and
#                    4 levels, one X86_PV_VCPU_BASIC per vCPU of
#                    `xl vcpu-list`, every cr3 pfn below nr_pfns, the p2m
#                    range ending at nr_pfns - 1, XL_CONFIG's name that of
#                    `xl domname`
#   pvstate_live     the same for save --live -c: accepted by inspect, state
#                    records present once, after the last pages
#   pvstate_2vcpu    a second PV domU with 2 vCPUs (guest-2vcpu): its save
#                    carries a BASIC record for vCPU 0 and vCPU 1, each cr3
#                    typed L4 (inspect accepts it) and below nr_pfns

# pv_records FILE: the record names of an inspect --json output, in order.
pv_records() {
    sed -n 's/.*"name":"\([A-Z0-9_]*\)".*/\1/p' "$1"
}
# pv_field FILE RECORD KEY: KEY's values in the fields of RECORD's lines.
pv_field() {
    grep "\"name\":\"$2\"" "$1" | sed -n "s/.*\"fields\":{.*\"$3\":\"*\([^,\"}]*\).*/\1/p"
}
# pv_order FILE: "ok" when the static records precede the first page record
# (PAGE_DATA, ZERO_PAGES, XBZRLE_PAGES) and the tail records follow the
# last one; else what is out of place.
pv_order() {
    pv_records "$1" | awk '
        /^(PAGE_DATA|ZERO_PAGES|XBZRLE_PAGES)$/ { if (!first) first = NR; last = NR; next }
        /^(X86_PV_INFO|X86_CPUID_POLICY|X86_MSR_POLICY|STATIC_DATA_END|X86_PV_P2M_FRAMES|XL_CONFIG)$/ {
            pre[NR] = $0; next }
        /^(X86_TSC_INFO|SHARED_INFO|X86_PV_VCPU_[A-Z]*)$/ { post[NR] = $0; next }
        END {
            bad = ""
            for (i in pre) if (first && i > first) bad = bad " " pre[i] "@" i
            for (i in post) if (i < last) bad = bad " " post[i] "@" i
            print (first && bad == "") ? "ok" : "out of place:" bad " (pages " first ".." last ")"
        }'
}

pv_check_image() { # LABEL IMAGE
    xc-colo inspect --json "$2" > "/tmp/$1.json" 2> "/tmp/$1.err"
    irc=$?
    kv "${1}_inspect_rc" "$irc"
    show "$1 inspect" "/tmp/$1.err"
    missing=""
    for r in X86_PV_INFO X86_CPUID_POLICY X86_MSR_POLICY STATIC_DATA_END \
        X86_PV_P2M_FRAMES X86_TSC_INFO SHARED_INFO X86_PV_VCPU_BASIC \
        X86_PV_VCPU_EXTENDED XL_CONFIG; do
        pv_records "/tmp/$1.json" | grep -qx "$r" || missing="$missing $r"
    done
    # XSAVE and MSRS are left out (as by libxenguest) for a vCPU without
    # any: reported, not required.
    for r in X86_PV_VCPU_XSAVE X86_PV_VCPU_MSRS; do
        kv "${1}_records_$r" "$(pv_records "/tmp/$1.json" | grep -cx "$r")"
    done
    order=$(pv_order "/tmp/$1.json")
    kv "${1}_order" "$order"
}

echo "=== step pvstate_save: xc-colo save -c of the PV domU (not live)"
timed_save pvstate_save /tmp/img_pvstate -c "xen:$D"
rc=$?
st=$(domstate "$D")
if [ $rc = 0 ] && [ -s /tmp/img_pvstate ] && case "$st" in *p*|*s*|*c*|*d*|"") false ;; *) true ;; esac; then
    step pvstate_save PASS "$(wc -c < /tmp/img_pvstate) bytes, domU state '$st'"
else
    step pvstate_save FAIL "save rc $rc, domU state '$st'"
fi

echo "=== step pvstate_inspect: inspect --json lists and accepts every state record"
pv_check_image pvstate /tmp/img_pvstate
if [ "$irc" = 0 ] && [ -z "$missing" ] && [ "$order" = ok ]; then
    step pvstate_inspect PASS "$(pv_records /tmp/pvstate.json | grep -vE '^(PAGE_DATA|ZERO_PAGES|XBZRLE_PAGES)$' | tr '\n' ' ')(page records left out)"
else
    step pvstate_inspect FAIL "inspect rc $irc, missing:$missing, order: $order"
fi

echo "=== step pvstate_fields: decoded fields against the domain"
nr=$(pv_field /tmp/pvstate.json GUEST_INFO nr_pfns)
[ -n "$nr" ] || nr=$(sed -n 's/.*"name":"GUEST_INFO".*"nr_pfns":\([0-9]*\).*/\1/p' /tmp/pvstate.json)
width=$(pv_field /tmp/pvstate.json X86_PV_INFO guest_width)
levels=$(pv_field /tmp/pvstate.json X86_PV_INFO pt_levels)
p2m_end=$(pv_field /tmp/pvstate.json X86_PV_P2M_FRAMES end_pfn)
p2m_frames=$(pv_field /tmp/pvstate.json X86_PV_P2M_FRAMES frames)
cr3s=$(pv_field /tmp/pvstate.json X86_PV_VCPU_BASIC cr3_pfn | tr '\n' ' ')
vcpus_stream=$(pv_records /tmp/pvstate.json | grep -cx X86_PV_VCPU_BASIC)
vcpus_xl=$(xl vcpu-list "$D" 2>/dev/null | awk 'NR > 1 && $4 != "-" { n++ } END { print n + 0 }')
tsc=$(pv_field /tmp/pvstate.json X86_TSC_INFO tsc_mode_name)
cfg_name=$(pv_field /tmp/pvstate.json XL_CONFIG name)
dom_name=$(xl domname "$D" 2>/dev/null)
cfg_mem=$(pv_field /tmp/pvstate.json XL_CONFIG max_memkb)
kv pvstate_nr_pfns "$nr"
kv pvstate_guest_width "$width"
kv pvstate_p2m_end_pfn "$p2m_end"
kv pvstate_p2m_frames "$p2m_frames"
kv pvstate_cr3_pfns "$cr3s"
kv pvstate_vcpus_stream "$vcpus_stream"
kv pvstate_vcpus_xl "$vcpus_xl"
kv pvstate_tsc_mode "$tsc"
kv pvstate_config_name "$cfg_name"
kv pvstate_config_max_memkb "$cfg_mem"
cr3_ok=1
[ -n "$cr3s" ] || cr3_ok=0
for c in $cr3s; do
    [ -n "$nr" ] && [ "$c" -lt "$nr" ] || cr3_ok=0
done
if [ "$width" = 8 ] && [ "$levels" = 4 ] && [ -n "$nr" ] &&
    [ "$p2m_end" = "$((nr - 1))" ] && [ "$vcpus_stream" = "$vcpus_xl" ] &&
    [ "$vcpus_stream" -ge 1 ] && [ $cr3_ok = 1 ] && [ -n "$tsc" ] &&
    [ -n "$dom_name" ] && [ "$cfg_name" = "$dom_name" ]; then
    step pvstate_fields PASS "width $width/$levels, $vcpus_stream vCPUs (xl: $vcpus_xl), cr3 pfns $cr3s< $nr, p2m 0..$p2m_end in $p2m_frames frames, TSC $tsc, config '$cfg_name' ${cfg_mem} KiB"
else
    step pvstate_fields FAIL "width $width/$levels, vCPUs $vcpus_stream (xl $vcpus_xl), cr3 [$cr3s] nr_pfns $nr, p2m end $p2m_end, tsc '$tsc', config '$cfg_name' vs domain '$dom_name'"
fi
rm -f /tmp/img_pvstate

echo "=== step pvstate_live: the same for save --live -c"
timed_save pvstate_live /tmp/img_pvstate_live --live -c "xen:$D"
rc=$?
pv_check_image pvstate_live /tmp/img_pvstate_live
n_info=$(pv_records /tmp/pvstate_live.json | grep -cx X86_PV_INFO)
n_tsc=$(pv_records /tmp/pvstate_live.json | grep -cx X86_TSC_INFO)
if [ $rc = 0 ] && [ "$irc" = 0 ] && [ -z "$missing" ] && [ "$order" = ok ] &&
    [ "$n_info" = 1 ] && [ "$n_tsc" = 1 ]; then
    step pvstate_live PASS "$(wc -c < /tmp/img_pvstate_live) bytes, state records once, after the last pages"
else
    step pvstate_live FAIL "save rc $rc, inspect rc $irc, missing:$missing, order: $order, X86_PV_INFO x$n_info, TSC x$n_tsc"
fi
rm -f /tmp/img_pvstate_live

echo "=== step pvstate_2vcpu: a domU with 2 vCPUs"
xl create /etc/xen/guest-2vcpu.cfg > /tmp/create2.out 2>&1
rc=$?
show "xl create guest-2vcpu" /tmp/create2.out
D2V=$(xl domid guest-2vcpu 2>/dev/null)
if [ $rc != 0 ] || [ -z "$D2V" ] || ! wait_console guest-2vcpu XCC_WORKLOAD 180; then
    step pvstate_2vcpu FAIL "the 2-vCPU domU did not start its workload (create rc $rc)"
    tail -n 40 "$CONLOG_DIR/guest-guest-2vcpu.log" 2>/dev/null
else
    timed_save pvstate_2vcpu /tmp/img_pvstate_2v -c "xen:$D2V"
    rc=$?
    pv_check_image pvstate_2vcpu /tmp/img_pvstate_2v
    ids=$(pv_field /tmp/pvstate_2vcpu.json X86_PV_VCPU_BASIC vcpu | tr '\n' ' ')
    cr3s=$(pv_field /tmp/pvstate_2vcpu.json X86_PV_VCPU_BASIC cr3_pfn | tr '\n' ' ')
    nr=$(sed -n 's/.*"name":"GUEST_INFO".*"nr_pfns":\([0-9]*\).*/\1/p' /tmp/pvstate_2vcpu.json)
    vcpus_xl=$(xl vcpu-list "$D2V" 2>/dev/null | awk 'NR > 1 && $4 != "-" { n++ } END { print n + 0 }')
    cfg_vcpus=$(pv_field /tmp/pvstate_2vcpu.json XL_CONFIG max_vcpus)
    kv pvstate_2vcpu_ids "$ids"
    kv pvstate_2vcpu_cr3_pfns "$cr3s"
    kv pvstate_2vcpu_xl_vcpus "$vcpus_xl"
    cr3_ok=1
    for c in $cr3s; do [ -n "$nr" ] && [ "$c" -lt "$nr" ] || cr3_ok=0; done
    if [ $rc = 0 ] && [ "$irc" = 0 ] && [ -z "$missing" ] && [ "$order" = ok ] &&
        [ "$ids" = "0 1 " ] && [ "$vcpus_xl" = 2 ] && [ "$cfg_vcpus" = 2 ] &&
        [ $cr3_ok = 1 ]; then
        step pvstate_2vcpu PASS "vCPUs $ids(xl: $vcpus_xl, XL_CONFIG max_vcpus $cfg_vcpus), cr3 pfns $cr3s< $nr"
    else
        step pvstate_2vcpu FAIL "save rc $rc, inspect rc $irc, missing:$missing, order: $order, vCPU ids [$ids] (xl $vcpus_xl, config $cfg_vcpus), cr3 [$cr3s] nr $nr"
    fi
fi
xl destroy guest-2vcpu 2>/dev/null
rm -f /tmp/img_pvstate_2v
