#!/bin/sh
# e2e_inspect.sh - `xc-colo inspect` end to end, on hostile input.
#
# Builds a stream for a 16 MiB guest by hand from the layouts in
# libxc-colo/docs/stream-format.md (GUEST_INFO, ZERO_PAGES, PAGE_DATA,
# XBZRLE_PAGES, CHECKPOINT, STATS, DIGEST, END) and a stock Xen PV stream,
# checks that inspect accepts both in text, --json and stdin modes, then
# (for the hand-built stream and, when sim guests work here, a real live
# XBZRLE save of a 16 MiB sim guest) truncates at every record boundary and
# at 200 random offsets and flips a random byte in 200 copies: inspect must
# exit 1 with a message naming an offset (or 0 for an undetectable flip in
# page data), and never die from a signal. Flips in the framing must always
# be caught. The saved stream's CACHE_BASES records are listed (text and
# --json) with what they drop and keep.
#
# Env: XCC_BIN (the xc-colo binary). Run by `make test`.
set -u
XCC_BIN=${XCC_BIN:-build/bin/xc-colo}
PY=${PYTHON:-python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcc-e2e-inspect.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0

die() {
    echo "FAIL: $*"
    fail=1
}

# --- The streams, written by hand (Python's struct) from the spec. -------
PYTHONPATH="$(dirname "$0")" "$PY" - "$tmp" <<'EOF'
import os, random, struct, sys
from stream_build import headers, page_data, rec, zero_pages
out = sys.argv[1]
PAGE, NR = 4096, 4096                 # 16 MiB guest
rnd = random.Random(7)

def xbzrle(items):
    n = len(items)
    lens = b"".join(struct.pack("<I", len(d)) for _, d in items)
    body = (struct.pack("<II", n, 0) + b"".join(struct.pack("<Q", p) for p, _ in items) +
            lens + b"\0" * ((8 - len(lens) % 8) % 8) + b"".join(d for _, d in items))
    return rec(0x58430003, body)

def delta():
    # zrun, nzrun, bytes: QEMU's XBZRLE grammar within one page.
    z = rnd.randrange(0, 4000)
    n = rnd.randrange(1, 64)
    uleb = lambda v: bytes([v]) if v < 128 else bytes([v & 0x7F | 0x80, v >> 7])
    return uleb(z) + uleb(n) + bytes(rnd.randrange(256) for _ in range(n))

s = headers(0x58430000) + rec(0x58430001, struct.pack("<QII", NR, PAGE, 0))
data_pfns = sorted(rnd.sample(range(NR), 96))
rest = [p for p in range(NR) if p not in set(data_pfns)]
for i in range(0, len(rest), 1024):
    s += zero_pages(rest[i:i + 1024])
for i in range(0, len(data_pfns), 32):
    s += page_data([(p, 0, os.urandom(PAGE)) for p in data_pfns[i:i + 32]])
for it in range(3):
    s += xbzrle([(p, delta()) for p in rnd.sample(data_pfns, 20)])
    s += rec(0x0E)
s += rec(0xD8430005, b'{"iteration":3,"pages":20}')
s += rec(0x58430004, struct.pack("<IIII", 2 << 20, 8, 0, 0) + os.urandom(16 * 9))
s += rec(0x0E)                        # END follows a CHECKPOINT (spec 6)
s += rec(0)
open(os.path.join(out, "sim.stream"), "wb").write(s)

x = headers(1, 4, 17) + rec(2, bytes([8, 4]) + b"\0" * 6)
x += rec(3, struct.pack("<IIQ", 0, 511, 0x123))
# A pinned L4 as Xen's saver writes it: normalised (entries name pfns below
# the guest's size, Xen's slots 256..272 zero); inspect checks that.
l4 = struct.pack("<Q", 5 << 12 | 0x67) + b"\0" * (273 * 8 - 8) + \
    struct.pack("<Q", 9 << 12 | 0x67) + b"\0" * (PAGE - 274 * 8)
x += page_data([(5, 0, os.urandom(PAGE)), (6, 0xC, l4), (9, 0xF, None)])
x += rec(5, struct.pack("<II", 0, 0) + b"vcpu-context!") + rec(0x10) + rec(0x11, b"cpuid-leaf".ljust(24, b".")) + rec(0)
open(os.path.join(out, "xen-pv.stream"), "wb").write(x)
EOF
[ -s "$tmp/sim.stream" ] || { echo "FAIL: could not build the test streams"; exit 1; }

# --- Valid streams are accepted, in every output mode. -------------------
"$XCC_BIN" inspect "$tmp/sim.stream" >"$tmp/out" 2>"$tmp/err" ||
    die "valid sim stream rejected: $(cat "$tmp/err")"
grep -q "stream valid" "$tmp/out" || die "no 'stream valid' line"
grep -q "XBZRLE_PAGES" "$tmp/out" || die "XBZRLE_PAGES not listed"
"$XCC_BIN" inspect "$tmp/xen-pv.stream" >"$tmp/out" 2>"$tmp/err" ||
    die "stock Xen PV stream rejected: $(cat "$tmp/err")"
grep -q "X86_PV_INFO" "$tmp/out" || die "X86_PV_INFO not named"
grep -q "x86 PV" "$tmp/out" || die "PV domain header not shown"
# From a pipe.
"$XCC_BIN" inspect -q - <"$tmp/sim.stream" >"$tmp/out" 2>&1 ||
    die "stdin: $(cat "$tmp/out")"
# --json is one JSON object with the record offsets.
"$XCC_BIN" inspect --json "$tmp/sim.stream" >"$tmp/json" ||
    die "--json failed"
"$PY" - "$tmp/json" "$tmp/offsets" <<'EOF' || die "--json output is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["valid"] is True and d["error"] is None
t = d["totals"]
assert t["nr_pfns"] == 4096 and t["pages_data"] == 96, t
assert t["pages_zero"] == 4096 - 96 and t["pages_xbzrle"] == 60, t
assert t["checkpoints"] == 4 and t["end"] is True, t
open(sys.argv[2], "w").write(" ".join(str(r["offset"]) for r in d["records"]))
EOF

# Usage errors exit 2; a missing file exits 1.
"$XCC_BIN" inspect >/dev/null 2>&1
[ $? -eq 2 ] || die "no argument: expected exit 2"
"$XCC_BIN" inspect "$tmp/nonexistent" >/dev/null 2>&1
[ $? -eq 1 ] || die "missing file: expected exit 1"

# --- Hostile input. ------------------------------------------------------
# check_broken ALLOW_OK WHAT: judges the inspect run whose exit status is in
# $rc and whose stderr is in $tmp/err: exit 1 with a message naming an
# offset; ALLOW_OK = yes allows exit 0 (a flip inside page data). A status
# above 1 means a signal or a crash.
check_broken() {
    allow_ok=$1 what=$2
    if [ $rc -gt 1 ]; then
        die "$what: exit status $rc (signal $((rc - 128))?)"
    elif [ $rc -eq 1 ]; then
        grep -q "offset" "$tmp/err" ||
            die "$what: message without an offset: $(cat "$tmp/err")"
    elif [ "$allow_ok" != yes ]; then
        die "$what: accepted"
    fi
}

# hostile STREAM LABEL: truncation at every record boundary (and inside the
# headers) and at 200 random offsets, then a random byte flipped in each of
# 200 copies (patched in place with dd, then put back), then a flip in the
# framing of every record.
hostile() {
    stream=$1 label=$2
    size=$(wc -c <"$stream")
    "$XCC_BIN" inspect --json "$stream" >"$tmp/hjson" ||
        { die "$label: valid stream rejected"; return; }
    "$PY" - "$tmp/hjson" "$size" "$stream" >"$tmp/plan" <<'PYEOF'
import json, random, sys
d = json.load(open(sys.argv[1]))
size = int(sys.argv[2])
data = open(sys.argv[3], "rb").read()
r = random.Random(11)
cuts = [0, 12, 24] + [x["offset"] for x in d["records"]]
cuts += [r.randrange(size) for _ in range(200)]
for c in cuts:
    print("cut", c, 0, 0)
for i in range(200):
    off = r.randrange(size)
    new = data[off] ^ r.randrange(1, 256)
    print("flip", off, "%03o" % new, "%03o" % data[off])
# Flips in the framing are always caught: the top byte of each record's
# length (the length then passes the 128 MiB cap) and the headers' marker,
# id and version.
for off in [0, 8, 15] + [x["offset"] + 7 for x in d["records"]]:
    print("flipx", off, "%03o" % (data[off] ^ 0x40), "%03o" % data[off])
PYEOF
    cp "$stream" "$tmp/work"
    ncut=0 nflip=0 detected=0
    while read -r kind off new old; do
        if [ "$kind" = cut ]; then
            head -c "$off" "$stream" | "$XCC_BIN" inspect -q - \
                >/dev/null 2>"$tmp/err"
            rc=$?
            check_broken no "$label truncated at $off"
            ncut=$((ncut + 1))
        else
            printf "\\$new" | dd of="$tmp/work" bs=1 seek="$off" \
                conv=notrunc 2>/dev/null
            "$XCC_BIN" inspect -q "$tmp/work" >/dev/null 2>"$tmp/err"
            rc=$?
            if [ "$kind" = flipx ]; then
                check_broken no "$label framing flip at $off"
            else
                check_broken yes "$label flip at $off"
                [ $rc -eq 1 ] && detected=$((detected + 1))
                nflip=$((nflip + 1))
            fi
            printf "\\$old" | dd of="$tmp/work" bs=1 seek="$off" \
                conv=notrunc 2>/dev/null
        fi
    done <"$tmp/plan"
    cmp -s "$stream" "$tmp/work" || die "$label: flips were not undone"
    rm -f "$tmp/work"
    echo "$label: $ncut truncations, $nflip random flips ($detected detected)," \
        "framing flips all detected"
    [ $ncut -gt 200 ] && [ $nflip -eq 200 ] || die "$label: plan incomplete"
}

hostile "$tmp/sim.stream" "hand-built stream"

# A stream from a real save of a 16 MiB sim guest, when sim guests work here.
guest="e2e-inspect-$$"
if "$XCC_BIN" sim start "$guest" --mem 16M --workload random:5000:0.1 \
        >/dev/null 2>"$tmp/err"; then
    trap '"$XCC_BIN" sim stop "$guest" >/dev/null 2>&1; rm -rf "$tmp"' EXIT INT TERM
    if "$XCC_BIN" save --live --xbzrle -q "sim:$guest" "$tmp/saved.stream" \
            2>"$tmp/err"; then
        "$XCC_BIN" inspect -q "$tmp/saved.stream" >"$tmp/out" 2>&1 ||
            die "saved stream rejected: $(cat "$tmp/out")"
        grep -q "GUEST_INFO\|guest: 4096 pages" "$tmp/out" ||
            die "saved stream: no guest size shown"
        # An XBZRLE save announces its cache (format 3): CACHE_BASES listed,
        # with what each drops and keeps, in text and --json.
        "$XCC_BIN" inspect "$tmp/saved.stream" >"$tmp/out" 2>&1
        grep -q "CACHE_BASES .* dropped [0-9]*, kept [0-9]*" "$tmp/out" ||
            die "saved stream: no CACHE_BASES record listed"
        grep -q "announces its XBZRLE cache" "$tmp/out" ||
            die "saved stream: GUEST_INFO's cache flag not shown"
        "$XCC_BIN" inspect --json "$tmp/saved.stream" >"$tmp/json" ||
            die "saved stream: --json failed"
        "$PY" - "$tmp/json" <<'PYEOF' || die "saved stream: CACHE_BASES in --json"
import json, sys
d = json.load(open(sys.argv[1]))
gi = [r for r in d["records"] if r["name"] == "GUEST_INFO"][0]
assert gi["flags"] == 3, gi
cb = [r for r in d["records"] if r["name"] == "CACHE_BASES"]
assert cb and all("dropped" in r and "kept" in r for r in cb), cb[:3]
t = d["totals"]["cache_bases"]
assert t["records"] == len(cb), t
assert t["kept"] == sum(r["kept"] for r in cb) and t["kept"] > 0, t
assert t["dropped"] == sum(r["dropped"] for r in cb), t
PYEOF
        hostile "$tmp/saved.stream" "saved stream"
    else
        die "save of sim:$guest failed: $(cat "$tmp/err")"
    fi
    "$XCC_BIN" sim stop "$guest" >/dev/null 2>&1
else
    echo "skip: saved-stream checks (sim start failed: $(cat "$tmp/err"))"
fi

if [ $fail -ne 0 ]; then
    echo "e2e_inspect: FAILED"
    exit 1
fi
echo "e2e_inspect: ok"
