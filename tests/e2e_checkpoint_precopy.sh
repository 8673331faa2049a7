#!/bin/sh
# e2e_checkpoint_precopy.sh - the checkpoint's live phase is the save's own
# precopy loop (save_precopy): the same stop conditions, the same digest
# refreshes.
#
#   abort-if-busy  a guest that cannot converge in one pass: checkpoint
#                  --abort-if-busy exits 1 saying why, and the guest runs.
#   max-downtime   a generous --max-downtime ends the live phase at the
#                  first estimate ("downtime" in the stats), not after
#                  --max-iters passes.
#   verify         with --verify (the sim default), checkpoint 1 rehashes
#                  only the digest chunks the guest wrote since the live
#                  phase hashed them, not all of memory while the guest is
#                  paused: a sparse64 guest writes one of its 32 chunks.
#
# Env: XCC_BIN (absolute path of xc-colo).
set -u
e2e_tmp=ckp
. "$(dirname "$0")/lib_e2e.sh"
tag="ckp$$"

start_guest() { # name workload
    guests="$guests $1"
    "$X" sim start "$1" --mem 64M --workload "$2" --seed 9 >/dev/null ||
        { bad "sim start $1"; return 1; }
}

state() {
    "$X" sim list --json | "$PY" -c '
import json, sys
print([g["state"] for g in json.load(sys.stdin) if g["name"] == sys.argv[1]][0])' "$1"
}

# ---- --abort-if-busy --------------------------------------------------------
G="${tag}busy"
start_guest "$G" random:20000:0.5 || exit 1
"$X" checkpoint -q --count 1 --max-iters 1 --target-dirty 1 --abort-if-busy \
    "sim:$G" /dev/null 2>"$tmp/busy.err"
rc=$?
if [ $rc = 1 ] && grep -q "giving up (--abort-if-busy)" "$tmp/busy.err" &&
    [ "$(state "$G")" = running ]; then
    ok "abort-if-busy: exit 1, guest running: $(grep -o "still has .*" "$tmp/busy.err")"
else
    bad "abort-if-busy: exit $rc, guest $(state "$G"): $(cat "$tmp/busy.err")"
fi

# ---- --max-downtime ----------------------------------------------------------
"$X" checkpoint -q --count 1 --max-iters 30 --target-dirty 1 \
    --max-downtime 100000 --stats-json "$tmp/dt.json" "sim:$G" /dev/null \
    2>"$tmp/dt.err"
rc=$?
if [ $rc = 0 ] && r=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
its = d["iterations"]
assert d["stop-reason"] == "downtime", d["stop-reason"]
# iteration 0, then checkpoint 1: the estimate stopped the live phase at once
assert len(its) == 2 and its[1]["paused"], [(i["iteration"], i["paused"]) for i in its]
print("stop-reason %s after %d live pass" % (d["stop-reason"], len(its) - 1))
' "$tmp/dt.json" 2>&1); then
    ok "max-downtime: $r"
else
    bad "max-downtime: exit $rc: $(cat "$tmp/dt.err") ${r:-}"
fi
"$X" sim stop "$G" >/dev/null 2>&1

# ---- --verify: checkpoint 1 rehashes what changed ----------------------------
G="${tag}sparse"
start_guest "$G" sparse64 || exit 1
"$X" checkpoint -q --count 3 --interval 0 --stats-json "$tmp/v.json" \
    "sim:$G" /dev/null 2>"$tmp/v.err"
rc=$?
if [ $rc = 0 ] && r=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mode"]["verify"], "verify is off"
total = d["ram"]["total"] // (2 << 20)         # 2 MiB digest chunks
ck = d["checkpoint"]["checkpoints"]
# sparse64 writes pfns 4096..4159: one chunk, rehashed when written
hashed = [c["digest-chunks"] for c in ck]
assert max(hashed) <= 1 < total, "checkpoints hashed %s of %d chunks" % (hashed, total)
print("checkpoints 1..3 hashed %s of %d chunks" % (hashed, total))
' "$tmp/v.json" 2>&1); then
    ok "verify: $r"
else
    bad "verify: exit $rc: $(cat "$tmp/v.err") ${r:-}"
fi

echo "e2e_checkpoint_precopy: $checks checks, $failures failed"
[ "$failures" = 0 ]
