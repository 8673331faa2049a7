# dom0-threads-test.sh - the threads part (issue 16 item 3), sourced by
# dom0-test.sh with its helpers; $D is the running PV domU.
#
# Live XBZRLE saves of $D under its workload with --threads 1, 2 and 4,
# each piped into a memory-only restore of a paused copy (xl restore -p of
# an xl save image, so page-table pages sit at the source's pfns); the
# source stays paused after each save, and the digests of source and
# target (page tables excluded) must be equal for every N. A fourth save
# (--threads 2) has a cache larger than the domU (clamped to its size), so
# it takes every page of iteration 0 (hot-prediction every-page, no peek).
echo "=== step threads: live --xbzrle saves with --threads 1, 2, 4 (and a whole-guest cache) into restore"
thr_ok=1
thr_equal=0
if [ -z "$(domstate guest)" ]; then
    step threads FAIL "the domU is not running"
    thr_ok=0
fi
if [ $thr_ok = 1 ] && [ ! -s /tmp/img_xl ]; then
    xl save -c guest /tmp/img_xl > /tmp/thr_xls.out 2>&1 ||
        { show "xl save" /tmp/thr_xls.out; step threads FAIL "xl save -c failed"; thr_ok=0; }
fi
if [ $thr_ok = 1 ]; then
    xl destroy guest-target 2>/dev/null
    TH=$(restore_paused guest-target)
    [ -n "$TH" ] || { step threads FAIL "xl restore -p of the target failed"; thr_ok=0; }
fi
if [ $thr_ok = 1 ]; then
    for n in 1 2 4 whole; do
        label="threads_$n"
        opt="--threads $n"
        [ "$n" = whole ] && opt="--threads 2 --cache-size 1G"
        rm -f "/tmp/$label.json"
        t0=$(now)
        # shellcheck disable=SC2086
        { timeout "$CMD_TIMEOUT" xc-colo save --live --xbzrle $opt \
            --stats-json "/tmp/$label.json" "xen:$D" - 2> "/tmp/$label.out"; } |
            timeout "$CMD_TIMEOUT" xc-colo restore --into-existing --no-progress - \
                "xen:$TH" > "/tmp/$label.rout" 2>&1
        rrc=$?
        kv "${label}_seconds" "$(dt "$t0" "$(now)")"
        show "$label" "/tmp/$label.out"
        show "$label restore" "/tmp/$label.rout"
        emit_json "$label" "/tmp/$label.json"
        src=0
        grep -q "saved xen" "/tmp/$label.out" || src=1
        case "$(domstate guest)" in *p*) ;; *) xl pause "$D" ;; esac
        ds=$(digest_of --exclude-pagetables "xen:$D")
        dtg=$(digest_of --exclude-pagetables "xen:$TH")
        # The save left the guest suspended (its final pass): resume it.
        continue_guest "$D"
        kv "${label}_rc" "$src"
        kv "${label}_restore_rc" "$rrc"
        kv "${label}_digest_source" "$ds"
        kv "${label}_digest_target" "$dtg"
        every=yes
        if [ "$n" = whole ]; then
            # (no python in dom0: the figures by name from the JSON text)
            tr -d ' \n' < "/tmp/$label.json" | grep -q '"every-page":true' || every=no
            tr -d ' \n' < "/tmp/$label.json" | grep -q '"peeks":0,' || every=no
            kv threads_whole_every_page "$every"
        fi
        if [ $src = 0 ] && [ $rrc = 0 ] && [ -n "$ds" ] && [ "$ds" = "$dtg" ] &&
                [ $every = yes ]; then
            thr_equal=$((thr_equal + 1))
        fi
        # The guest runs (and dirties pages) again before the next save.
        hb_wait_running "$D" "$(hb_now "$D")" || echo "    [threads] dom$D's heartbeat does not advance"
    done
    xl destroy "$TH"
    if [ $thr_equal = 4 ]; then
        step threads PASS "--threads 1, 2, 4 and a whole-guest cache (every page of iteration 0 cached): 4/4 live XBZRLE saves restored byte-exact"
    else
        step threads FAIL "$thr_equal/4 live XBZRLE saves restored byte-exact (whole-guest cache every-page: $(kv_of threads_whole_every_page))"
    fi
fi
