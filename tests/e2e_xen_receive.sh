#!/bin/sh
# e2e_xen_receive.sh - `xc-colo restore FILE xen:` (a new Xen domain) refuses
# bad xl images and streams that are not x86 PV before it asks libxl for
# anything: each with exit 1 and a
# message naming the part and its offset; and its options are refused with
# other targets (exit 2). Without Xen, a good image fails at libxl's door
# with a clear message. (The run into a real domain is in make xen-test:
# scripts/xen-vm/dom0-receiver-test.sh.)
set -u
: "${XCC_BIN:?XCC_BIN must name the xc-colo binary}"
PY=${PYTHON:-python3}
tmp=$(mktemp -d /tmp/xc-colo-xrecv.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

expect() { # NAME WANT_STATUS WANT_TEXT ARGS...
    name=$1 want=$2 text=$3
    shift 3
    "$XCC_BIN" "$@" >"$tmp/out" 2>&1 </dev/null
    rc=$?
    if [ "$rc" != "$want" ]; then
        echo "FAIL: $name: exit $rc, want $want"; cat "$tmp/out"; fail=1
    elif ! grep -qF -- "$text" "$tmp/out"; then
        echo "FAIL: $name: no '$text' in:"; cat "$tmp/out"; fail=1
    else
        echo "ok: $name"
    fi
}

# xl images: header(magic, byteorder, mandatory, optional, optlen) + optdata
# + a libxl stream header (the part libxl would read).
"$PY" - "$tmp" <<'EOF' || exit 1
import struct, sys
d = sys.argv[1]
MAGIC = b"Xen saved domain, xl format\n \0 \r"
assert len(MAGIC) == 32
cfg = b'{"c_info": {"type": "pv", "name": "e2e"}}\0'
opt = struct.pack("<I", len(cfg)) + cfg
# The libxl header, LIBXC_CONTEXT, the libxc image and PV domain headers
# and X86_PV_INFO: what the translator reads before it asks libxl.
libxc = (b"\xff" * 8 + b"XENF" + struct.pack(">IHHI", 3, 0, 0, 0)
         + struct.pack("<IHHII", 1, 12, 0, 4, 17)
         + struct.pack("<II", 2, 8) + bytes([8, 4, 0, 0, 0, 0, 0, 0]))
libxl = b"LibxlFmt" + struct.pack(">II", 2, 0) + struct.pack("<II", 1, 0) + libxc
def img(name, magic=MAGIC, order=0x01020304, mand=3, optional=0, optdata=opt,
        optlen=None, tail=libxl):
    optlen = len(optdata) if optlen is None else optlen
    with open(f"{d}/{name}", "wb") as f:
        f.write(magic + struct.pack("<IIII", order, mand, optional, optlen)
                + optdata + tail)
img("good")
img("badmagic", magic=b"Xen saved domain, xm format\n \0 \r")
img("order", order=0x04030201)
img("flags", mand=3 | 0x10)
img("legacy", mand=1)
img("optshort", optlen=len(opt) + 100, tail=b"")
img("cfglen", optdata=struct.pack("<I", 1000) + b"{}\0\0")
img("noconfig", optdata=b"")
img("hugeopt", optlen=0xfffffff0, optdata=b"")
with open(f"{d}/good", "rb") as f:
    open(f"{d}/trunc", "wb").write(f.read(40))
sim = (b"\xff" * 8 + b"XENF" + struct.pack(">IHHI", 3, 0, 0, 0)
       + struct.pack("<IHHII", 0x58430000, 12, 0, 0, 0)
       + struct.pack("<IIQII", 0x58430001, 16, 256, 4096, 1))
open(f"{d}/xccolo", "wb").write(sim)
EOF

expect "truncated header" 1 "xl header at offset 0: file ends after 40 of its 48 bytes" \
    restore -e "$tmp/trunc" xen:
expect "truncated header on stdin" 1 "xl header at offset 0: file ends after 40 of its 48 bytes" \
    restore -e fd:3 xen: 3<"$tmp/trunc"
expect "bad magic" 1 "image header at offset 0: marker 0x58656e2073617665" \
    restore -e "$tmp/badmagic" xen:
expect "byte order" 1 "xl header at offset 32: byte-order marker" restore -e "$tmp/order" xen:
expect "mandatory flags" 1 "offset 36: unknown mandatory flags 0x00000010" \
    restore -e "$tmp/flags" xen:
expect "legacy image" 1 "lack STREAMv2" restore -e "$tmp/legacy" xen:
expect "optional data truncated" 1 "at offset 48: file ends after" \
    restore -e "$tmp/optshort" xen:
expect "config length" 1 "at offset 48: config of 1000 bytes does not fit" \
    restore -e "$tmp/cfglen" xen:
expect "huge optional data" 1 "offset 44: 4294967280 bytes of optional data" \
    restore -e "$tmp/hugeopt" xen:
expect "no config" 1 "carries no domain config: give --config" \
    restore -e "$tmp/noconfig" xen:
expect "missing --config" 1 "cannot open --config $tmp/none" \
    restore -e --config "$tmp/none" "$tmp/good" xen:
expect "a sim stream" 1 "a new Xen domain is made from an x86 PV stream only" \
    restore -e "$tmp/xccolo" xen:
expect "-p with a sim target" 2 "are for a new Xen domain" \
    restore -p "$tmp/good" sim:e2e-xrecv
expect "--name with xen:ID" 2 "are for a new Xen domain" \
    restore --name x "$tmp/good" xen:7
expect "--listen with xen:, nobody comes" 1 "no valid" \
    restore --listen tcp:0 --listen-timeout 300 xen:
expect "--colo with xen:" 2 "libxl refuses COLO for PV" \
    restore --checkpointed --colo - xen:
expect "empty --name" 2 "--name: an empty name" \
    restore --name "" "$tmp/good" xen:
if [ -e /dev/xen/privcmd ]; then
    echo "skip: good image without Xen: this host runs on Xen"
else
    expect "good image, no Xen" 1 "cannot open libxl" restore -e "$tmp/good" xen:
fi
exit $fail
