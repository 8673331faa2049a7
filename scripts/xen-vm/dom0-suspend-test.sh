# dom0-suspend-test.sh - cooperative suspend on the running PV domU $D,
# sourced by dom0-test.sh (run_part suspend; XENVM_ONLY=suspend runs it
# alone). It shares that script's helpers and leaves $D running.
#
#   suspend_save        save --live, no -c: the domU suspends itself (xl list
#                       shows it shut down), the stats say suspended; then
#                       xen-ops-test --continue resumes it and its heartbeat
#                       runs on
#   suspend_continue    save --live -c: resumed at once, heartbeat advances
#   suspend_checkpoint  checkpoint --count 5 -c: 5 suspends, 4 resumes in
#                       the run and one for -c; heartbeat advances
#   suspend_ignored     control/shutdown made unreadable for the guest (its
#                       suspend handler never sees the request): the save
#                       exits 1 naming the domain and the timeout, the
#                       request is withdrawn, the guest runs on
#   suspend_after       the node's permissions back: a save -c works again

SUSP_TIMEOUT_MS=5000

# json_num FILE KEY: a top-level number in a --stats-json file.
json_num() {
    tr -d '\n' < "$1" 2>/dev/null | sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" | head -n1
}
suspended_in() { grep -q '"suspended": true' "$1" 2>/dev/null; }
# running DOMID: xl list shows it neither shut down nor paused.
running() { case "$(domstate "$1")" in *s*|*p*|"") return 1 ;; esac; return 0; }
# hb_runs_on DOMID: the workload writes its heartbeat again after now:
# its clock passes the value read now by more than 1 s (120 s at most).
hb_runs_on() {
    h=$(hb_now "$1")
    [ -n "$h" ] && hb_wait_running "$1" "$h"
}

echo "=== step suspend_save: save --live (no -c): the domU suspends itself and stays so"
since=$(hb_now "$D")
timed_save suspend_save /tmp/img_susp --live -v "xen:$D"
rc=$?
st=$(domstate "$D")
kv suspend_save_xl_state "$st"
xen-ops-test --continue "$D" > /tmp/cont.out 2>&1
crc=$?
cat /tmp/cont.out
hb_ok=0
hb_runs_on "$D" && hb_ok=1
set -- $(hb_window "$D" "$since")
kv suspend_save_hb_max_ms "$2"
kv suspend_save_suspended_ms "$(json_num /tmp/suspend_save.json suspended-ms)"
kv suspend_save_suspend_request_ms "$(json_num /tmp/suspend_save.json suspend-request-ms)"
kv suspend_save_downtime_ms "$(json_num /tmp/suspend_save.json downtime-ms)"
if [ $rc = 0 ] && suspended_in /tmp/suspend_save.json && case "$st" in *s*) true ;; *) false ;; esac &&
    grep -q "before suspended after running" /tmp/cont.out && [ $hb_ok = 1 ]; then
    step suspend_save PASS "xl state '$st' after the save, suspended $(json_num /tmp/suspend_save.json suspended-ms) ms (request answered in $(json_num /tmp/suspend_save.json suspend-request-ms) ms), resumed, heartbeat runs (longest stop $2 ms)"
else
    step suspend_save FAIL "save rc $rc, xl state '$st', continue rc $crc, heartbeat ok $hb_ok"
fi
rm -f /tmp/img_susp

echo "=== step suspend_continue: save --live -c: suspended for the final pass, resumed in place"
since=$(hb_now "$D")
timed_save suspend_continue /dev/null --live -c "xen:$D"
rc=$?
st=$(domstate "$D")
hb_ok=0
hb_runs_on "$D" && hb_ok=1
set -- $(hb_window "$D" "$since")
kv suspend_continue_hb_max_ms "$2"
kv suspend_continue_suspended_ms "$(json_num /tmp/suspend_continue.json suspended-ms)"
kv suspend_continue_suspend_request_ms "$(json_num /tmp/suspend_continue.json suspend-request-ms)"
if [ $rc = 0 ] && suspended_in /tmp/suspend_continue.json && running "$D" && [ $hb_ok = 1 ]; then
    step suspend_continue PASS "state '$st' after -c, suspended $(json_num /tmp/suspend_continue.json suspended-ms) ms, heartbeat runs (longest stop $2 ms)"
else
    step suspend_continue FAIL "save rc $rc, xl state '$st', heartbeat ok $hb_ok"
fi

echo "=== step suspend_checkpoint: 5 checkpoints, each suspends and resumes the domU"
since=$(hb_now "$D")
rm -f /tmp/suspend_ckpt.json
timeout "$CMD_TIMEOUT" xc-colo checkpoint --interval 200 --count 5 -c \
    --stats-json /tmp/suspend_ckpt.json "xen:$D" /dev/null > /tmp/suspend_ckpt.out 2>&1
rc=$?
show suspend_checkpoint /tmp/suspend_ckpt.out
emit_json suspend_checkpoint /tmp/suspend_ckpt.json
st=$(domstate "$D")
hb_ok=0
hb_runs_on "$D" && hb_ok=1
set -- $(hb_window "$D" "$since")
n=$(json_num /tmp/suspend_ckpt.json suspends)
kv suspend_checkpoint_suspends "$n"
kv suspend_checkpoint_hb_gaps "$1"
kv suspend_checkpoint_hb_max_ms "$2"
kv suspend_checkpoint_hb_median_ms "$3"
kv suspend_checkpoint_request_max_ms "$(json_num /tmp/suspend_ckpt.json suspend-request-max-ms)"
if [ $rc = 0 ] && [ "$n" = 5 ] && running "$D" && [ $hb_ok = 1 ]; then
    step suspend_checkpoint PASS "5 suspends, state '$st' after, heartbeat runs ($1 stops, median $3 ms, max $2 ms)"
else
    step suspend_checkpoint FAIL "exit $rc, suspends '$n', xl state '$st', heartbeat ok $hb_ok"
fi

echo "=== step suspend_ignored: the guest cannot read control/shutdown: no answer, exit 1, guest runs on"
N=/local/domain/$D/control/shutdown
# The node's permissions as xenstore-ls -p prints them, e.g. "(n5)".
perms=$(xenstore-ls -p "/local/domain/$D/control" 2>/dev/null |
    sed -n 's/^shutdown = .*(\([^()]*\))[[:space:]]*$/\1/p' | tr ',' ' ')
[ -n "$perms" ] || perms="n$D"
kv suspend_ignored_node_perms "$perms"
# Owner dom0, nothing for anyone else: the guest's watch handler cannot
# read the request, so it never answers.
xenstore-chmod "$N" n0
since=$(hb_now "$D")
rm -f /tmp/suspend_ignored.json
t0=$(now)
timeout "$CMD_TIMEOUT" xc-colo save --live --suspend-timeout "$SUSP_TIMEOUT_MS" \
    --stats-json /tmp/suspend_ignored.json "xen:$D" /tmp/img_ign > /tmp/suspend_ignored.out 2>&1
rc=$?
kv suspend_ignored_seconds "$(dt "$t0" "$(now)")"
kv suspend_ignored_rc "$rc"
show suspend_ignored /tmp/suspend_ignored.out
emit_json suspend_ignored /tmp/suspend_ignored.json
val=$(xenstore-read "$N" 2>&1)
st=$(domstate "$D")
# shellcheck disable=SC2086
xenstore-chmod "$N" $perms
hb_ok=0
hb_runs_on "$D" && hb_ok=1
kv suspend_ignored_node_after "'$val'"
set -- $(hb_window "$D" "$since")
kv suspend_ignored_hb_max_ms "$2"
kv suspend_ignored_xl_state "$st"
if [ $rc = 1 ] &&
    grep -q "dom$D did not answer the suspend request within $SUSP_TIMEOUT_MS ms" /tmp/suspend_ignored.out &&
    grep -q "request is withdrawn" /tmp/suspend_ignored.out &&
    grep -q "did not suspend itself in time" /tmp/suspend_ignored.out &&
    [ -z "$val" ] && running "$D" && [ $hb_ok = 1 ]; then
    step suspend_ignored PASS "exit 1 after $SUSP_TIMEOUT_MS ms, request withdrawn, xl state '$st', heartbeat advances"
else
    step suspend_ignored FAIL "exit $rc, node '$val', xl state '$st', heartbeat ok $hb_ok"
fi
rm -f /tmp/img_ign

echo "=== step suspend_after: permissions back, save -c suspends the domU again"
timed_save suspend_after /dev/null --live -c "xen:$D"
rc=$?
if [ $rc = 0 ] && suspended_in /tmp/suspend_after.json && running "$D"; then
    step suspend_after PASS "suspended $(json_num /tmp/suspend_after.json suspended-ms) ms, running again"
else
    step suspend_after FAIL "save rc $rc, xl state '$(domstate "$D")'"
fi
