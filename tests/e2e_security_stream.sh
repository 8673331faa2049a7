#!/bin/sh
# e2e_security_stream.sh - inspect and restore agree on every stream, and a
# hostile or careless stream costs nothing it should not.
#
# Streams are written by hand (Python's struct) from
# libxc-colo/docs/stream-format.md, each one breaking a single rule:
#   xbzrle-overlong  an XBZRLE delta 80 00 01 07 (a zero run of 0 written in
#                    two bytes, which the decoder refuses): inspect exits 1
#                    naming the record and its offset, restore exits 1.
#   guest-info-late  GUEST_INFO after STATS, and after HVM_CONTEXT, before
#                    any page: both refuse it.
#   digest-chunk     a DIGEST of 4 MiB chunks: both refuse it (the format
#                    allows 2 MiB only).
#   epoch-no-ckpt    END after an epoch without its CHECKPOINT: inspect
#                    exits 1, restore --checkpointed keeps checkpoint 1 (3).
#   no-ckpt          restore --checkpointed of a stream without CHECKPOINT:
#                    exit 1, the target stays incomplete.
#   verify-ckpt2     checkpoint 2's DIGEST does not match: restore exits 3
#                    naming checkpoint 1, and the target holds checkpoint 1.
#   sim-types        page-table, BROKEN and XALLOC pages: refused in a sim
#                    stream (inspect and restore) and for a sim target of a
#                    PV stream (restore), with a message naming the type.
#   zero-pages       ZERO_PAGES for all 64 Mi of a 64 MiB target allocate
#                    nothing in /dev/shm, and zero pages that held data.
#   inspect-rss      one 128 MiB PAGE_DATA record of 16 Mi entries without
#                    data: inspect's peak RSS (getrusage of the child) stays
#                    under 64 MiB.
#
# Env: XCC_BIN (the xc-colo binary). Run by `make test`.
set -u
e2e_tmp=secstream
. "$(dirname "$0")/lib_e2e.sh"
tag="ss$$"

# expect_rc WHAT WANT CMD...: runs CMD, output in $tmp/out.
expect_rc() {
    er_what=$1 er_want=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    er_rc=$?
    if [ "$er_rc" = "$er_want" ]; then
        ok "$er_what: exit $er_rc"
    else
        bad "$er_what: exit $er_rc, expected $er_want: $(tail -n 3 "$tmp/out")"
    fi
}

# has WHAT TEXT: $tmp/out contains TEXT.
has() {
    if grep -qF -- "$2" "$tmp/out"; then
        ok "$1: says '$2'"
    else
        bad "$1: no '$2' in: $(tail -n 3 "$tmp/out")"
    fi
}

# A fresh sim target name (stopped by the exit trap).
target() {
    guests="$guests $tag-$1"
    echo "$tag-$1"
}

# The sim guests' directory, as sim_paths.c picks it.
if [ -n "${XCC_SIM_ROOT:-}" ]; then
    simroot=$XCC_SIM_ROOT
elif [ "$(id -u)" = 0 ]; then
    simroot=/dev/shm/xc-colo
else
    simroot=/dev/shm/xc-colo-$(id -u)
fi

# allocated NAME: KiB of the sim guest's RAM file that hold blocks.
allocated() {
    du -k "$simroot/$1/ram" 2>/dev/null | cut -f1
}

# ---- The streams ----------------------------------------------------------
PYTHONPATH="$(dirname "$0")" "$PY" - "$tmp" <<'EOF' || { echo "FAIL: cannot build the streams"; exit 1; }
import array, os, struct, sys
from stream_build import HVM, PV, SIM, headers, page_data, rec, zero_pages
out = sys.argv[1]
PAGE, NR = 4096, 4096                         # 16 MiB guest

def guest_info(nr=NR):
    return rec(0x58430001, struct.pack("<QII", nr, PAGE, 0))

def xbzrle(pfn, delta):
    body = struct.pack("<IIQI", 1, 0, pfn, len(delta)) + b"\0" * 4 + delta
    return rec(0x58430003, body)

def digest(chunk, count, fill):
    return rec(0x58430004, struct.pack("<IIII", chunk, count, 0, 0) +
               bytes([fill]) * (16 * (count + 1)))

CKPT, END, STATS, HVM_CONTEXT = rec(0x0E), rec(0), rec(0xD8430005, b"{}"), rec(9, b"\0" * 8)
A, B = b"\xaa" * PAGE, b"\xbb" * PAGE

def w(name, data):
    open(os.path.join(out, name), "wb").write(data)

w("xbzrle-overlong", headers(SIM) + guest_info() + page_data([(3, 0, A)]) +
  xbzrle(3, bytes([0x80, 0x00, 0x01, 0x07])) + END)
w("gi-after-stats", headers(SIM) + STATS + guest_info() + page_data([(3, 0, A)]) + END)
w("gi-after-hvm", headers(HVM, 4, 17) + HVM_CONTEXT + guest_info() +
  page_data([(3, 0, A)]) + END)
w("digest-4m", headers(SIM) + guest_info() + page_data([(3, 0, A)]) +
  digest(4 << 20, 4, 0x11) + END)
w("epoch-no-ckpt", headers(SIM) + guest_info() + page_data([(3, 0, A)]) + CKPT +
  page_data([(3, 0, B)]) + END)
w("no-ckpt", headers(SIM) + guest_info() + page_data([(3, 0, A)]) + END)
# Checkpoint 1 (pfn 3 = A) has no DIGEST; checkpoint 2 (pfn 3 = B) has a
# DIGEST that matches nothing.
w("ckpt1", headers(SIM) + guest_info() + page_data([(3, 0, A)]) + CKPT + END)
w("verify-ckpt2", headers(SIM) + guest_info() + page_data([(3, 0, A)]) + CKPT +
  page_data([(3, 0, B)]) + digest(2 << 20, 8, 0x5A) + CKPT + END)
for t, name in [(0x1, "l1tab"), (0xA, "pinned-l2"), (0xD, "broken"), (0xE, "xalloc")]:
    d = A if t < 0xD else None
    w("sim-" + name, headers(SIM) + guest_info() + page_data([(3, t, d), (4, 0, A)]) + END)
    w("pv-" + name, headers(PV, 4, 17) + page_data([(3, t, d), (4, 0, A)]) + END)
# A sim guest's holes travel as XTAB: still fine.
w("sim-xtab", headers(SIM) + guest_info() + page_data([(3, 0xF, None), (4, 0, A)]) + END)
# 64 MiB: every page with data, then every page zero.
ZN = 16384
w("data-64m", headers(SIM) + guest_info(ZN) +
  b"".join(page_data([(p, 0, bytes([p % 251 + 1]) * PAGE) for p in range(i, i + 256)])
           for i in range(0, ZN, 256)) + END)
w("zero-64m", headers(SIM) + guest_info(ZN) + zero_pages(list(range(ZN))) + END)
# One 128 MiB PAGE_DATA record of 16 Mi - 1 XTAB entries (no data).
N = (128 << 20) // 8 - 1
with open(os.path.join(out, "big-nodata"), "wb") as f:
    f.write(headers(SIM) + guest_info(N))
    f.write(struct.pack("<II", 1, 8 + 8 * N) + struct.pack("<II", N, 0))
    for i in range(0, N, 1 << 20):
        f.write(array.array("Q", ((0xF << 60) | p for p in range(i, min(N, i + (1 << 20))))).tobytes())
    f.write(END)
EOF

# ---- 11.1: one XBZRLE grammar ----------------------------------------------
expect_rc "inspect, delta 80 00 01 07" 1 "$X" inspect -q "$tmp/xbzrle-overlong"
has "inspect, delta 80 00 01 07" "XBZRLE_PAGES record (type 0x58430003) at offset 4184"
has "inspect, delta 80 00 01 07" "delta byte 0"
t=$(target xb)
expect_rc "restore, delta 80 00 01 07" 1 "$X" restore -q "$tmp/xbzrle-overlong" "sim:$t"
has "restore, delta 80 00 01 07" "XBZRLE_PAGES record (type 0x58430003) at offset 4184"

# ---- 12.4: what inspect passes, restore takes -----------------------------
for s in gi-after-stats gi-after-hvm; do
    expect_rc "inspect, $s" 1 "$X" inspect -q "$tmp/$s"
    has "inspect, $s" "GUEST_INFO record (type 0x58430001) at offset 56: only allowed as the first record"
    t=$(target "$s")
    expect_rc "restore, $s" 1 "$X" restore -q --mem 16M "$tmp/$s" "sim:$t"
    has "restore, $s" "GUEST_INFO record (type 0x58430001) at offset 56"
done
expect_rc "inspect, 4 MiB DIGEST chunks" 1 "$X" inspect -q "$tmp/digest-4m"
has "inspect, 4 MiB DIGEST chunks" "chunk size 4194304 is not 2097152"
t=$(target dg)
expect_rc "restore, 4 MiB DIGEST chunks" 1 "$X" restore -q "$tmp/digest-4m" "sim:$t"
has "restore, 4 MiB DIGEST chunks" "chunk size 4194304"
expect_rc "inspect, END after an epoch without CHECKPOINT" 1 \
    "$X" inspect -q "$tmp/epoch-no-ckpt"
has "inspect, END after an epoch without CHECKPOINT" "ends without its CHECKPOINT"
t=$(target ep)
expect_rc "restore --checkpointed, END after an epoch without CHECKPOINT" 3 \
    "$X" restore -q --checkpointed "$tmp/epoch-no-ckpt" "sim:$t"
has "restore --checkpointed, END after an epoch" "failover: kept checkpoint 1"

# ---- 12.5: a checkpointed restore keeps what it verified -------------------
expect_rc "inspect, no CHECKPOINT (a plain stream)" 0 "$X" inspect -q "$tmp/no-ckpt"
t=$(target nc)
expect_rc "restore --checkpointed, no CHECKPOINT" 1 \
    "$X" restore -q --checkpointed "$tmp/no-ckpt" "sim:$t"
has "restore --checkpointed, no CHECKPOINT" "without any CHECKPOINT"
if "$X" sim list | awk -v n="$t" '$1 == n { print $3 }' | grep -qx incomplete; then
    ok "restore --checkpointed, no CHECKPOINT: the target is marked incomplete"
else
    bad "restore --checkpointed, no CHECKPOINT: target not marked incomplete: $("$X" sim list | grep "$t")"
fi
ref=$(target c1)
"$X" restore -q --checkpointed "$tmp/ckpt1" "sim:$ref" >"$tmp/out" 2>&1 ||
    bad "restore of checkpoint 1 alone: $(cat "$tmp/out")"
t=$(target v2)
expect_rc "restore --checkpointed, checkpoint 2 fails verification" 3 \
    "$X" restore -q --checkpointed "$tmp/verify-ckpt2" "sim:$t"
has "checkpoint 2 fails verification" "failover: kept checkpoint 1"
has "checkpoint 2 fails verification" "checkpoint 2 failed verification"
if [ "$("$X" sim digest "$t")" = "$("$X" sim digest "$ref")" ]; then
    ok "checkpoint 2 fails verification: the target holds checkpoint 1"
else
    bad "checkpoint 2 fails verification: the target does not hold checkpoint 1"
fi

# ---- Also: page types a sim guest cannot have -------------------------------
for ty in l1tab pinned-l2 broken xalloc; do
    expect_rc "inspect, sim stream with $ty" 1 "$X" inspect -q "$tmp/sim-$ty"
    has "inspect, sim stream with $ty" "which a sim guest cannot have"
    t=$(target "s$ty")
    expect_rc "restore, sim stream with $ty" 1 "$X" restore -q "$tmp/sim-$ty" "sim:$t"
    t=$(target "p$ty")
    expect_rc "restore, PV stream with $ty into a sim target" 1 \
        "$X" restore -q --mem 16M "$tmp/pv-$ty" "sim:$t"
    has "restore, PV stream with $ty into a sim target" "which the sim target"
done
t=$(target xtab)
expect_rc "restore, sim stream with a hole (XTAB)" 0 "$X" restore -q "$tmp/sim-xtab" "sim:$t"

# ---- Also: ZERO_PAGES allocate nothing ---------------------------------------
t=$(target z0)
"$X" restore -q "$tmp/zero-64m" "sim:$t" >"$tmp/out" 2>&1 ||
    bad "restore of 64 MiB of ZERO_PAGES: $(cat "$tmp/out")"
kib=$(allocated "$t")
if [ -z "$kib" ]; then
    bad "cannot find the RAM file of sim:$t under $simroot"
elif [ "$kib" -le 1024 ]; then
    ok "64 MiB of ZERO_PAGES into a fresh target: $kib KiB of /dev/shm"
else
    bad "64 MiB of ZERO_PAGES into a fresh target: $kib KiB of /dev/shm (at most 1024)"
fi
t=$(target zd)
ref=$(target zr)
"$X" sim create "$ref" --mem 64M >/dev/null || bad "sim create $ref"
"$X" restore -q "$tmp/data-64m" "sim:$t" >"$tmp/out" 2>&1 ||
    bad "restore of 64 MiB of data: $(cat "$tmp/out")"
before=$(allocated "$t")
"$X" restore -q --into-existing "$tmp/zero-64m" "sim:$t" >"$tmp/out" 2>&1 ||
    bad "ZERO_PAGES over data: $(cat "$tmp/out")"
after=$(allocated "$t")
if [ "$("$X" sim digest "$t")" = "$("$X" sim digest "$ref")" ]; then
    ok "ZERO_PAGES over 64 MiB of data: the target reads as zeros"
else
    bad "ZERO_PAGES over 64 MiB of data: the target is not zero"
fi
if [ -n "$before" ] && [ -n "$after" ] && [ "$before" -ge 60000 ] && [ "$after" -le 1024 ]; then
    ok "ZERO_PAGES over 64 MiB of data: /dev/shm $before KiB -> $after KiB"
else
    bad "ZERO_PAGES over 64 MiB of data: /dev/shm '$before' KiB -> '$after' KiB"
fi

# ---- Also: inspect streams a 128 MiB PAGE_DATA record ------------------------
# The peak RSS of the child, from getrusage(RUSAGE_CHILDREN) in Python.
"$PY" - "$X" "$tmp/big-nodata" >"$tmp/rss" 2>"$tmp/out" <<'EOF'
import resource, subprocess, sys
p = subprocess.run([sys.argv[1], "inspect", "-q", sys.argv[2]],
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
sys.stderr.write(p.stderr.decode())
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
EOF
read -r rc rss <"$tmp/rss"
if [ "$rc" = 0 ] && [ "$rss" -lt 65536 ]; then
    ok "inspect of one 128 MiB PAGE_DATA record: valid, peak RSS $rss KiB"
else
    bad "inspect of one 128 MiB PAGE_DATA record: exit $rc, peak RSS $rss KiB (bound 65536): $(tail -n 2 "$tmp/out")"
fi

echo "e2e_security_stream: $checks checks, $failures failed"
[ "$failures" = 0 ]
