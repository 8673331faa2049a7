# dom0-compat-test.sh - `--xen-compat` against stock xl (issue 14, items 3
# and 4). Sourced by dom0-test.sh (run_part compat): shares its helpers
# (step, kv, show, hb_now, hb_wait_running, wait_console, ...) and the
# running PV domU $D ("guest"), and leaves a running "guest" in $D.
#
# Steps:
#   compat_inspect_xl_save  `xl save -c` of the domU; `xc-colo inspect`
#                           reads the image whole (xl header, its config,
#                           libxl records, libxc records) and says valid
#   compat_same_records     `xc-colo save --xen-compat` (not live, and live)
#                           of the same domU: inspect lists the same record
#                           types in the same order (runs of PAGE_DATA
#                           counted as one); needs the PV state records
#   compat_xl_restore       our image (not live, then live), `xl destroy` of
#                           the source, stock `xl restore` of our file: the
#                           restored guest's heartbeat advances and its
#                           workload self-check passes (the receiver
#                           part's ledger); needs every part of issue 14
#                           (suspend, PV state, page types)
#   compat_vs_xl_save       figures beside xl save -c of the same domU:
#                           time, bytes (within 10%: both carry the whole
#                           state) and the guest's stop (heartbeat gap)
#   compat_xl_restore_2vcpu the same restore with guest-2vcpu: both vCPUs
#                           online again, heartbeat, self-check

# The libxl JSON config of domain $1 as `xl list -l` prints it under
# "config" (what libxl_domain_config_to_json gives), into file $2: the
# object from the line '"config": {' to its closing brace. Only for a CLI
# that does not fetch the config itself (--xl-config-json).
compat_config_json() {
    xl list -l "$1" 2>/dev/null | awk '
        !on && /"config": *\{/ { on = 1; sub(/.*"config": */, "") }
        on {
            line = $0
            o = gsub(/\{/, "{", line); c = gsub(/\}/, "}", line)
            depth += o - c
            if (depth <= 0) { sub(/\},? *$/, "}"); print; exit }
            print
        }' > "$2"
    [ -s "$2" ]
}

# compat_records FILE OUT: the record types `xc-colo inspect` lists, one a
# line ("libxl:NAME" for libxl's), runs of the same type as one line.
compat_records() {
    xc-colo inspect "$1" > "$2.txt" 2> "$2.err"
    rc=$?
    awk '$1 ~ /^[0-9]+$/ {
            t = ($2 == "libxl") ? "libxl:" $3 : $2
            if (t != last) print t
            last = t
        }' "$2.txt" > "$2"
    return $rc
}

# compat_save LABEL FILE ARGS...: xc-colo save --xen-compat of $D to FILE.
# The CLI fetches the config from libxl when it can; when it says it needs
# one, the config `xl list -l` shows goes in with --xl-config-json.
compat_save() {
    label=$1; file=$2; shift 2
    timed_save "$label" "$file" --xen-compat "$@" "xen:$D" && return 0
    grep -q "needs its libxl configuration" "/tmp/$label.out" || return 1
    if ! compat_config_json "$D" /tmp/compat_cfg.json; then
        echo "    [$label] no config from xl list -l"
        return 1
    fi
    timed_save "$label" "$file" --xen-compat --xl-config-json /tmp/compat_cfg.json \
        "$@" "xen:$D"
}

# The workload's self-check on domain $1 (the ledger the receiver part
# adds: `xen-ops-test --heartbeat` prints "HB selfcheck checks N failures M
# ledger L"): "pass" when it ran checks since the restore (N grows) with no
# failure, "fail" otherwise; "none" when this build's workload has none
# (then only a crash on the console fails).
compat_selfcheck() {
    sc1=$(xen-ops-test --heartbeat "$1" "$HB_PFN" 2>/dev/null | awk '$2 == "selfcheck"')
    if [ -z "$sc1" ]; then
        if grep -qiE "kernel panic|Oops|segfault" "$CONLOG_DIR/guest-guest.log" 2>/dev/null; then
            echo fail
        else
            echo none
        fi
        return
    fi
    n1=$(echo "$sc1" | awk '{ print $4 }')
    i=0
    while :; do
        sc2=$(xen-ops-test --heartbeat "$1" "$HB_PFN" 2>/dev/null | awk '$2 == "selfcheck"')
        n2=$(echo "$sc2" | awk '{ print $4 }')
        [ -n "$n2" ] && [ "$n2" -gt "$n1" ] && break
        i=$((i + 1))
        if [ $i -gt 120 ]; then
            echo "    [selfcheck] no new check in 60 s: $sc2" >&2
            echo fail
            return
        fi
        sleep 0.5
    done
    echo "    [selfcheck] $sc2" >&2
    f=$(echo "$sc2" | awk '{ print $6 }')
    [ "$f" = 0 ] && echo pass || echo fail
}

# compat_xl_restore_of DOMID IMG NAME LABEL: the domain's heartbeat clock
# now (into BEFORE), xl destroy of it, then stock xl restore of IMG, timed
# as LABEL; NEWD is the restored domain (named NAME). Returns xl restore's
# status.
compat_xl_restore_of() {
    BEFORE=$(hb_now "$1")
    xl destroy "$1"
    t0=$(now)
    xl restore "$2" > "/tmp/$4.xlr" 2>&1
    _rc=$?
    kv "${4}_seconds" "$(dt "$t0" "$(now)")"
    kv "${4}_rc" $_rc
    show "$4" "/tmp/$4.xlr"
    NEWD=$(xl domid "$3" 2>/dev/null)
    return $_rc
}

# A fresh "guest" in $D when a step lost it (the later parts need one).
compat_recreate() {
    xl destroy guest 2>/dev/null
    set -- $(new_guest guest 120)
    if [ -z "${1:-}" ]; then
        echo "    [compat] could not re-create the domU"
        return 1
    fi
    D=$1; HB_PFN=$2
}

###########################################################################
echo "=== step compat_inspect_xl_save: xl save -c, then xc-colo inspect of it"
hb0=$(hb_now "$D")
t0=$(now)
xl save -c guest /tmp/compat_xl.img > /tmp/compat_xls.out 2>&1
xrc=$?
kv compat_xl_save_seconds "$(dt "$t0" "$(now)")"
case "$(domstate guest)" in *p*) xl unpause guest ;; esac
# The guest's stop, as its own heartbeat saw it (the longest gap).
hb_wait_running "$D" "${hb0:-0}" || true
XLSTOP_MS=$(hb_window "$D" "${hb0:-0}" | awk '{ print $2 }')
kv compat_xl_save_bytes "$(stat -c %s /tmp/compat_xl.img 2>/dev/null || echo 0)"
show "xl save" /tmp/compat_xls.out
compat_records /tmp/compat_xl.img /tmp/compat_xl.rec
irc=$?
sed -n '1,4p' /tmp/compat_xl.rec.txt | sed 's/^/    [inspect xl save] /'
show "inspect xl save records" /tmp/compat_xl.rec
show "inspect xl save" /tmp/compat_xl.rec.err
xc-colo inspect --json -q /tmp/compat_xl.img > /tmp/compat_xl.json 2>/dev/null
emit_json compat_inspect_xl_save /tmp/compat_xl.json
if [ $xrc = 0 ] && [ $irc = 0 ] && grep -q "^xl header" /tmp/compat_xl.rec.txt &&
    grep -q "^libxl:LIBXC_CONTEXT$" /tmp/compat_xl.rec &&
    grep -q "^libxl:END$" /tmp/compat_xl.rec &&
    grep -q "^X86_PV_VCPU_BASIC$" /tmp/compat_xl.rec &&
    grep -q "^stream valid" /tmp/compat_xl.rec.txt; then
    step compat_inspect_xl_save PASS "$(tr '\n' ' ' < /tmp/compat_xl.rec)"
else
    step compat_inspect_xl_save FAIL "xl save exit $xrc, inspect exit $irc: $(tail -n1 /tmp/compat_xl.rec.err)"
fi
# The guest resumes after a checkpointing save.
case "$(domstate guest)" in *p*) xl unpause guest ;; esac

###########################################################################
echo "=== step compat_same_records: xc-colo save --xen-compat, the same records"
same=0; tried=0
for mode in nolive live; do
    tried=$((tried + 1))
    hb0=$(hb_now "$D")
    if [ $mode = live ]; then
        compat_save compat_save_live /tmp/compat_ours_live.img --live -c
    else
        compat_save compat_save_nolive /tmp/compat_ours_nolive.img --no-live -c
    fi
    src=$?
    if [ $mode = nolive ]; then
        case "$(domstate guest)" in *p*) xl unpause guest ;; esac
        hb_wait_running "$D" "${hb0:-0}" || true
        OURSTOP_MS=$(hb_window "$D" "${hb0:-0}" | awk '{ print $2 }')
    fi
    compat_records "/tmp/compat_ours_$mode.img" "/tmp/compat_ours_$mode.rec"
    irc=$?
    show "inspect ours $mode" "/tmp/compat_ours_$mode.rec.err"
    if [ $src = 0 ] && [ $irc = 0 ] &&
        cmp -s /tmp/compat_xl.rec "/tmp/compat_ours_$mode.rec"; then
        same=$((same + 1))
    else
        echo "    [compat $mode] save exit $src, inspect exit $irc; ours: $(tr '\n' ' ' < "/tmp/compat_ours_$mode.rec")"
        # busybox diff is unified: '-' xl save's, '+' ours.
        diff /tmp/compat_xl.rec "/tmp/compat_ours_$mode.rec" | grep '^[-+][^-+]' |
            sed 's/^/    [xl save - ours +] /' | head -n 20
    fi
    case "$(domstate guest)" in *p*) xl unpause guest ;; esac
done
kv compat_same_records "$same/$tried"
if [ $same = $tried ]; then
    step compat_same_records PASS "not live and live: $(tr '\n' ' ' < /tmp/compat_xl.rec)"
else
    step compat_same_records FAIL "$same/$tried of our images list xl save's record types in order"
fi
rm -f /tmp/compat_xl.img

###########################################################################
echo "=== step compat_vs_xl_save: xl save -c against xc-colo save --xen-compat --no-live -c"
# Like for like: the same domU, both checkpointing saves (the guest goes
# on), both images carry the whole domain state and stock xl restore reads
# both. The stop is the longest gap the guest's own heartbeat saw.
xl_s=$(kv_of compat_xl_save_seconds); our_s=$(kv_of compat_save_nolive_seconds)
xl_b=$(kv_of compat_xl_save_bytes); our_b=$(kv_of compat_save_nolive_bytes)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
r_time=$(ratio "$our_s" "$xl_s"); r_bytes=$(ratio "$our_b" "$xl_b")
r_stop=$(ratio "${OURSTOP_MS:-0}" "${XLSTOP_MS:-0}")
kv compat_vs_xl_save_time_ratio "$r_time"
kv compat_vs_xl_save_bytes_ratio "$r_bytes"
kv compat_vs_xl_save_stop_ms "xl ${XLSTOP_MS:-?} xc-colo ${OURSTOP_MS:-?}"
kv compat_vs_xl_save_stop_ratio "$r_stop"
if [ -n "$xl_s" ] && [ -n "$our_s" ] && [ "${xl_b:-0}" -gt 0 ] && [ "${our_b:-0}" -gt 0 ] &&
    awk -v r="$r_bytes" 'BEGIN { exit !(r >= 0.9 && r <= 1.1) }'; then
    step compat_vs_xl_save PASS "xc-colo/xl: time ${r_time}x (${our_s} s / ${xl_s} s), bytes ${r_bytes}x ($our_b / $xl_b), stop ${r_stop}x (${OURSTOP_MS:-?} ms / ${XLSTOP_MS:-?} ms)"
else
    step compat_vs_xl_save FAIL "time $our_s/$xl_s s, bytes $our_b/$xl_b (want within 10%), stop ${OURSTOP_MS:-?}/${XLSTOP_MS:-?} ms"
fi

###########################################################################
echo "=== step compat_xl_restore: our image, xl destroy, stock xl restore"
restored=0; tried=0; selfchecks=""
for mode in nolive live; do
    tried=$((tried + 1))
    if [ $mode = live ]; then
        compat_save compat_restore_live /tmp/compat_r.img --live
    else
        compat_save compat_restore_nolive /tmp/compat_r.img --no-live
    fi
    src=$?
    if [ $src != 0 ]; then
        echo "    [compat $mode] save failed: source kept"
        case "$(domstate guest)" in *p*) xl unpause guest ;; esac
        continue
    fi
    compat_xl_restore_of "$D" /tmp/compat_r.img guest "compat_xl_restore_$mode"
    rrc=$?
    before=$BEFORE; D=$NEWD
    if [ $rrc != 0 ] || [ -z "$D" ]; then
        echo "    [compat $mode] xl restore failed"
        tail -n 20 /var/log/xen/xl-guest.log 2>/dev/null | sed 's/^/    [xl-guest.log] /'
        compat_recreate
        continue
    fi
    # The guest's clock went on from where the save stopped it: it runs
    # once its heartbeat passes that point by a second.
    if [ -n "$before" ] && hb_wait_running "$D" "$before"; then
        after=$(hb_now "$D")
        kv "compat_heartbeat_${mode}_advanced_s" "$(secs_between "$before" "$after")"
        sc=$(compat_selfcheck "$D")
        selfchecks="$selfchecks $mode:$sc"
        [ "$sc" = fail ] || restored=$((restored + 1))
    else
        echo "    [compat $mode] heartbeat did not advance (before '$before', now '$(hb_now "$D")')"
        tail -n 20 "$CONLOG_DIR/guest-guest.log" 2>/dev/null | sed 's/^/    [console] /'
        compat_recreate
    fi
done
rm -f /tmp/compat_r.img /tmp/compat_ours_*.img
kv compat_xl_restores "$restored/$tried"
if [ $restored = $tried ]; then
    step compat_xl_restore PASS "xl restore of our not-live and live images: heartbeat advances; self-check$selfchecks"
else
    step compat_xl_restore FAIL "$restored/$tried of our images ran again after xl restore (self-check$selfchecks)"
fi

###########################################################################
echo "=== step compat_xl_restore_2vcpu: the same with a domU of 2 vCPUs"
# guest-2vcpu: a second domU, live-saved with --xen-compat, destroyed, and
# brought back by stock xl restore; both vCPUs must be online again.
why=""
set -- $(new_guest guest-2vcpu 180)
D2=${1:-}; HB2=${2:-}
if [ -z "$D2" ] || [ -z "$HB2" ]; then
    why="the 2-vCPU domU did not start its workload"
else
    hbsave=$HB_PFN; HB_PFN=$HB2
    if ! timed_save compat_restore_2vcpu /tmp/compat_r2.img --xen-compat --live "xen:$D2"; then
        why="xc-colo save --xen-compat --live failed"
    else
        compat_xl_restore_of "$D2" /tmp/compat_r2.img guest-2vcpu compat_xl_restore_2vcpu
        rrc=$?
        before=$BEFORE; D2=$NEWD
        online=$(xl vcpu-list guest-2vcpu 2>/dev/null | awk 'NR > 1 && $4 != "-" { n++ } END { print n + 0 }')
        kv compat_xl_restore_2vcpu_online "$online"
        if [ $rrc != 0 ] || [ -z "$D2" ]; then
            why="xl restore exit $rrc"
            tail -n 20 /var/log/xen/xl-guest-2vcpu.log 2>/dev/null | sed 's/^/    [xl-guest-2vcpu.log] /'
        elif [ -z "$before" ] || ! hb_wait_running "$D2" "$before"; then
            why="heartbeat did not advance (before '$before', now '$(hb_now "$D2")')"
            tail -n 20 "$CONLOG_DIR/guest-guest-2vcpu.log" 2>/dev/null | sed 's/^/    [console] /'
        else
            kv compat_heartbeat_2vcpu_advanced_s "$(secs_between "$before" "$(hb_now "$D2")")"
            sc=$(compat_selfcheck "$D2")
            if [ "$sc" = fail ]; then
                why="self-check failed"
            elif [ "$online" != 2 ]; then
                why="$online vCPUs online after xl restore, not 2"
            fi
        fi
    fi
    HB_PFN=$hbsave
fi
xl destroy guest-2vcpu 2>/dev/null
rm -f /tmp/compat_r2.img
if [ -z "$why" ]; then
    step compat_xl_restore_2vcpu PASS "2 vCPUs online after xl restore of our live image; heartbeat advances; self-check $sc"
else
    step compat_xl_restore_2vcpu FAIL "$why"
fi

# Leave a running guest for the parts after this one.
[ -n "$D" ] && [ -n "$(domstate guest)" ] || compat_recreate
case "$(domstate guest)" in *p*) xl unpause guest ;; esac
