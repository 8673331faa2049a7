#!/bin/sh
# Restore (and inspect) against hostile streams: DESIGN.md invariant 3.
#
# A 16 MiB sim guest running random:5000 is live-saved with --xbzrle, so
# the stream holds GUEST_INFO, PAGE_DATA, ZERO_PAGES, XBZRLE_PAGES, DIGEST,
# STATS and END. Then, each fed to `restore - sim:T --into-existing` and to
# `inspect -`:
#   - the stream truncated at every record boundary and inside the headers,
#   - truncated at 200 random offsets,
#   - 200 copies with 1..4 random bytes flipped.
# A truncated stream must give exit status 1 and a message. A flipped one
# must give exit 1 and a message, or exit 0 with the target's memory equal
# to the source's (a flip in bytes nobody interprets, such as STATS text);
# inspect may accept a flip in page data (it cannot know); but whatever
# inspect accepts, `restore --no-verify` must accept too (one grammar: a
# DIGEST's values are content, not structure). Never a signal, never a
# sanitizer report, never a hang.
#
# Env: XCC_BIN. HOSTILE_RANDOM (default 200) sets both random counts,
# HOSTILE_SEED (else E2E_SEED, else drawn) the random seed, printed.
set -u
X=${XCC_BIN:?XCC_BIN must name the xc-colo binary}
PY=${PYTHON:-python3}
tmp=$(mktemp -d /tmp/xc-colo-hostile.XXXXXX) || exit 1
src="hostile-$$"
dst="hostile-$$-t"
. "$(dirname "$0")/lib_progress.sh"

cleanup() {
    "$X" sim stop "$src" >/dev/null 2>&1
    "$X" sim stop "$dst" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

"$X" sim start "$src" --mem 16M --workload random:5000 --seed 3 || exit 1
wait_ticks "$src" 5 || exit 1
"$X" save -q --live --xbzrle --max-iters 3 "sim:$src" "$tmp/good.str" || {
    echo "FAIL: cannot make the stream"; exit 1; }
src_digest=$("$X" sim digest "$src")
"$X" sim create "$dst" --mem 16M || exit 1
"$X" inspect --json "$tmp/good.str" >"$tmp/good.json" || {
    echo "FAIL: inspect rejects the good stream"; exit 1; }
# The untouched stream restores, and matches.
"$X" restore -q --into-existing "$tmp/good.str" "sim:$dst" || {
    echo "FAIL: the good stream does not restore"; exit 1; }
[ "$("$X" sim digest "$dst")" = "$src_digest" ] || {
    echo "FAIL: the good stream restores to different memory"; exit 1; }

"$PY" - "$X" "$tmp/good.str" "$tmp/good.json" "sim:$dst" "$src_digest" \
    "${HOSTILE_RANDOM:-200}" "${HOSTILE_SEED:-$e2e_seed}" <<'EOF'
import json, os, random, subprocess, sys

xcc, path, jpath, target, src_digest, nrand, seed = sys.argv[1:8]
nrand, seed = int(nrand), int(seed)
data = open(path, "rb").read()
records = json.load(open(jpath))["records"]
rng = random.Random(seed)
env = dict(os.environ)
# A sanitizer report must not pass for exit status 1.
env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":exitcode=86"
env["UBSAN_OPTIONS"] = env.get("UBSAN_OPTIONS", "") + ":halt_on_error=1:exitcode=87"
TIMEOUT = 120
failures = []
counts = {"restore-1": 0, "restore-0-harmless": 0, "inspect-1": 0, "inspect-0": 0,
          "inspect-0-restored": 0}

def run(args, blob):
    try:
        p = subprocess.run([xcc] + args, input=blob, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    return p.returncode, p.stderr.decode("utf-8", "replace")

def digest():
    return subprocess.run([xcc, "sim", "digest", target[4:]], stdout=subprocess.PIPE,
                          env=env).stdout.decode().strip()

def check(what, blob, may_succeed):
    rc, err = run(["restore", "-q", "--into-existing", "--no-progress", "-", target], blob)
    sane = rc is not None and "Sanitizer" not in err and "runtime error" not in err
    if sane and rc == 1 and "xc-colo:" in err:
        counts["restore-1"] += 1
    elif sane and rc == 0 and may_succeed and digest() == src_digest:
        counts["restore-0-harmless"] += 1
    else:
        failures.append("%s: restore exit %s: %s" % (what, rc, err.strip()[-300:]))
    rc, err = run(["inspect", "-q", "-"], blob)
    sane = rc is not None and "Sanitizer" not in err and "runtime error" not in err
    if sane and rc == 1 and err.strip():
        counts["inspect-1"] += 1
    elif sane and rc == 0 and may_succeed:
        counts["inspect-0"] += 1
        # One grammar: what inspect accepts, restore accepts.
        rc, err = run(["restore", "-q", "--into-existing", "--no-progress",
                       "--no-verify", "-", target], blob)
        if rc == 0:
            counts["inspect-0-restored"] += 1
        else:
            failures.append("%s: inspect accepts, restore --no-verify exits %s: %s"
                            % (what, rc, err.strip()[-300:]))
    else:
        failures.append("%s: inspect exit %s: %s" % (what, rc, err.strip()[-300:]))

# Every record boundary, inside the headers, and just before/after END.
cuts = {0, 8, 24, 39, 40, 41, len(data) - 8, len(data) - 1}
for r in records:
    cuts.add(r["offset"])
    cuts.add(r["offset"] + 4)
    cuts.add(r["offset"] + 8)
cuts = sorted(c for c in cuts if 0 <= c < len(data))
for c in cuts:
    check("truncated at %d (boundary)" % c, data[:c], False)
for i in range(nrand):
    c = rng.randrange(0, len(data))
    check("truncated at %d (random)" % c, data[:c], False)
# Flips: half anywhere, half in the first 64 KiB (headers, record headers
# and pfn lists are denser there than in the page data).
for i in range(nrand):
    b = bytearray(data)
    where = []
    for _ in range(rng.randint(1, 4)):
        span = len(b) if i % 2 else min(len(b), 65536)
        pos = rng.randrange(0, span)
        b[pos] ^= rng.randrange(1, 256)
        where.append(pos)
    check("flip at %s" % where, bytes(b), True)

print("hostile: %d record boundaries, %d random truncations, %d flipped copies; "
      "seed %d (HOSTILE_SEED=%d replays it)" % (len(cuts), nrand, nrand, seed, seed))
print("hostile: restore exit 1: %(restore-1)d, exit 0 with identical memory: "
      "%(restore-0-harmless)d; inspect exit 1: %(inspect-1)d, exit 0: %(inspect-0)d "
      "(restore --no-verify took %(inspect-0-restored)d of them)" % counts)
for f in failures[:20]:
    print("FAIL " + f)
if failures:
    print("hostile: %d failures (seed %d)" % (len(failures), seed))
    sys.exit(1)
print("hostile: OK")
EOF
