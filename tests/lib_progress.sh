# lib_progress.sh - waits on progress and seeded random choices for the
# end-to-end scripts; sourced, not run (the runner runs only tests/e2e_*.sh).
#
# Needs X (the xc-colo binary) and PY (python3) set before sourcing.
#
#   e2e_seed          the seed of every random choice: E2E_SEED, else drawn
#                     from /dev/urandom. Scripts print it with their summary
#                     (seed_note) so a failure can be replayed with
#                     E2E_SEED=N sh tests/e2e_x.sh.
#   rand N KEY        a number 0..N-1 that depends only on the seed and KEY
#                     (a different KEY for every choice: command substitution
#                     runs in a subshell, so no counter can carry over).
#   wait_ticks G N    waits until sim guest G has made N more workload passes
#                     (`sim list --json` ticks); 1 after 60 s without them.
#   wait_state G S    waits until `sim list` shows guest G in state S;
#                     1 after 60 s.
e2e_seed=${E2E_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}

rand() {
    "$PY" -c 'import random, sys
print(random.Random("%s:%s" % (sys.argv[2], sys.argv[3])).randrange(int(sys.argv[1])))' \
        "$1" "$e2e_seed" "$2"
}

seed_note() { echo "seed $e2e_seed (E2E_SEED=$e2e_seed replays these random choices)"; }

# ticks_of G: the guest's workload passes so far (empty if it is not listed).
ticks_of() {
    "$X" sim list --json 2>/dev/null | "$PY" -c 'import json, sys
for g in json.load(sys.stdin):
    if g["name"] == sys.argv[1]:
        print(g.get("ticks", 0))' "$1"
}

wait_ticks() {
    wt_start=$(ticks_of "$1")
    [ -n "$wt_start" ] || return 1
    wt_deadline=$(($(date +%s) + 60))
    while [ "$(date +%s)" -le $wt_deadline ]; do
        wt_now=$(ticks_of "$1")
        [ -n "$wt_now" ] || return 1
        [ "$wt_now" -ge $((wt_start + $2)) ] && return 0
        sleep 0.02
    done
    echo "wait_ticks: guest $1 made no progress in 60 s (ticks $wt_start)" >&2
    return 1
}

wait_state() {
    ws_deadline=$(($(date +%s) + 60))
    while [ "$(date +%s)" -le $ws_deadline ]; do
        [ "$("$X" sim list 2>/dev/null | awk -v n="$1" '$1 == n { print $3 }')" = "$2" ] &&
            return 0
        sleep 0.02
    done
    echo "wait_state: guest $1 not $2 after 60 s" >&2
    return 1
}
