# dom0-pagetypes-test.sh - page types on the real Xen (issue 14, "Page
# types"), sourced by dom0-test.sh (run_part pagetypes) with $D the running
# PV domU. Leaves $D running.
#
# A live --xbzrle save of the domU; then `xc-colo inspect` of the image:
#   pagetypes_pinned      the PV page tables went out with their types, the
#                         pinned ones (0x9..0xC, Linux pins its L4s) kept;
#   pagetypes_normalised  every page table sent whole was normalised: inspect
#                         checks each one (present entries name pfns below
#                         GUEST_INFO's nr_pfns, Xen's L4 slots 256..272 zero,
#                         no superpage) and counts them;
#   pagetypes_typed_zero_xbzrle  ZERO_PAGES / XBZRLE_PAGES entries carry a
#                         page-table type (an all-zero table, or a table
#                         re-sent as a delta against its normalised copy).

PT_IMG=/tmp/img_pagetypes
echo "=== step pagetypes: live --xbzrle save, page types in inspect"
if timed_save pagetypes_save "$PT_IMG" --live --xbzrle -c "xen:$D"; then
    xc-colo inspect -q "$PT_IMG" > /tmp/pt_inspect.txt 2>&1
    irc=$?
    show "inspect -q" /tmp/pt_inspect.txt
    xc-colo inspect --json "$PT_IMG" 2>/dev/null | grep '^"totals":' |
        sed 's/^"totals"://; s/,$//' > /tmp/pt_totals.json
    emit_json pagetypes_inspect /tmp/pt_totals.json
    kv pagetypes_inspect_rc $irc
    pd=$(grep "page tables in PAGE_DATA:" /tmp/pt_inspect.txt | sed 's/.*PAGE_DATA: //')
    zp=$(grep "page tables in ZERO_PAGES:" /tmp/pt_inspect.txt | sed 's/.*ZERO_PAGES: //')
    xb=$(grep "page tables in XBZRLE_PAGES:" /tmp/pt_inspect.txt | sed 's/.*XBZRLE_PAGES: //')
    checked=$(sed -n 's/.*page tables checked normalised: \([0-9]*\).*/\1/p' /tmp/pt_inspect.txt)
    # Page-table entries of PAGE_DATA, summed over the types listed.
    sent=$(echo "$pd" | tr ',' '\n' | awk '{ n += $2 } END { print n + 0 }')
    # Per pass, then the total: page tables left for a later pass.
    deferred=$(grep -o '"pagetables-deferred": *[0-9]*' /tmp/pagetypes_save.json |
        cut -d: -f2 | tr -d ' ' | tr '\n' ' ')
    kv pagetypes_page_data "\"$pd\""
    kv pagetypes_zero_pages "\"$zp\""
    kv pagetypes_xbzrle_pages "\"$xb\""
    kv pagetypes_checked "${checked:-0}"
    kv pagetypes_sent_whole "$sent"
    kv pagetypes_deferred "\"${deferred:-none}\""
    if [ $irc = 0 ] && echo "$pd" | grep -q "L4-pinned" &&
        echo "$pd" | grep -q "L1"; then
        step pagetypes_pinned PASS "PAGE_DATA: $pd"
    else
        step pagetypes_pinned FAIL "inspect exit $irc, PAGE_DATA types '$pd'"
    fi
    if [ $irc = 0 ] && [ "${checked:-0}" -gt 0 ] && [ "$checked" = "$sent" ]; then
        step pagetypes_normalised PASS "$checked page tables checked, all pfns < nr_pfns"
    else
        step pagetypes_normalised FAIL "inspect exit $irc, checked ${checked:-0} of $sent"
    fi
    # Format 2: ZERO_PAGES and XBZRLE_PAGES entries are counted by type
    # (normal RAM is type 0; page tables show up when one was all zero or
    # re-sent as a delta, which a quiet guest may not do: see the balloon
    # step below).
    bytype=$(grep -o '"pages_by_type":.*' /tmp/pt_totals.json)
    ztypes=$(echo "$bytype" | grep -o '"zero_pages":{[^}]*}')
    xtypes=$(echo "$bytype" | grep -o '"xbzrle_pages":{[^}]*}')
    if [ $irc = 0 ] && [ -n "$ztypes" ] && [ -n "$xtypes" ]; then
        step pagetypes_typed_zero_xbzrle PASS "$ztypes $xtypes; page tables: ZERO_PAGES ${zp:-none}, XBZRLE_PAGES ${xb:-none}"
    else
        step pagetypes_typed_zero_xbzrle FAIL "typed counts missing: '$ztypes' '$xtypes'"
    fi
else
    step pagetypes_pinned FAIL "save failed"
    step pagetypes_normalised FAIL "save failed"
    step pagetypes_typed_zero_xbzrle FAIL "save failed"
fi
rm -f "$PT_IMG"

# Empty page tables: the guest balloons 32 MiB out, which clears the kernel's
# direct-map entries of those pages (a PV kernel unmaps what it gives back),
# leaving whole L1 tables zero. A live --xbzrle save must then send them as
# ZERO_PAGES typed L1 (the zero test runs on the normalised copy).
echo "=== step pagetypes_balloon: empty L1 tables go as typed ZERO_PAGES"
mem=$(xl list "$D" 2>/dev/null | awk 'NR == 2 { print $3 }')
if [ -n "$mem" ] && xl mem-set "$D" "$((mem - 32))m" 2>/tmp/pt_memset.err; then
    i=0
    while [ "$(xl list "$D" | awk 'NR == 2 { print $3 }')" -gt "$((mem - 32))" ]; do
        i=$((i + 1)); [ $i -gt 90 ] && break
        sleep 1
    done
    kv pagetypes_balloon_mem "$(xl list "$D" | awk 'NR == 2 { print $3 }')"
    if timed_save pagetypes_balloon_save "$PT_IMG" --live --xbzrle -c "xen:$D"; then
        xc-colo inspect -q "$PT_IMG" > /tmp/pt_inspect2.txt 2>&1
        irc=$?
        show "inspect -q" /tmp/pt_inspect2.txt
        zp=$(grep "page tables in ZERO_PAGES:" /tmp/pt_inspect2.txt | sed 's/.*ZERO_PAGES: //')
        xb=$(grep "page tables in XBZRLE_PAGES:" /tmp/pt_inspect2.txt | sed 's/.*XBZRLE_PAGES: //')
        if [ $irc = 0 ] && echo "$zp" | grep -q "L1"; then
            step pagetypes_balloon PASS "ZERO_PAGES: $zp; XBZRLE_PAGES: ${xb:-none}"
        else
            step pagetypes_balloon FAIL "inspect exit $irc, ZERO_PAGES page tables '${zp:-none}'"
        fi
    else
        step pagetypes_balloon FAIL "save failed"
    fi
    xl mem-set "$D" "${mem}m"
else
    show "xl mem-set" /tmp/pt_memset.err
    step pagetypes_balloon FAIL "xl mem-set failed (memory '$mem')"
fi
rm -f "$PT_IMG"
