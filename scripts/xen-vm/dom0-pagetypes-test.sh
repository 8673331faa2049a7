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
    deferred=$(grep -o '"pagetables-deferred":[0-9]*' /tmp/pagetypes_save.json |
        cut -d: -f2 | tr '\n' ' ')
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
    if [ $irc = 0 ] && [ -n "$zp$xb" ]; then
        step pagetypes_typed_zero_xbzrle PASS "ZERO_PAGES: ${zp:-none}; XBZRLE_PAGES: ${xb:-none}"
    else
        step pagetypes_typed_zero_xbzrle FAIL "no page-table type in ZERO_PAGES or XBZRLE_PAGES"
    fi
else
    step pagetypes_pinned FAIL "save failed"
    step pagetypes_normalised FAIL "save failed"
    step pagetypes_typed_zero_xbzrle FAIL "save failed"
fi
rm -f "$PT_IMG"
