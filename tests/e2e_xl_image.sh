#!/bin/sh
# e2e_xl_image.sh - xl save images through the CLI (stream-format.md,
# section 7): an image built by hand from Xen 4.17's layout (xl header,
# libxl JSON config, libxl v2 header, LIBXC_CONTEXT, a libxc stream of an
# HVM guest, an EMULATOR_CONTEXT record, END) is listed whole by `inspect`
# (text and --json), every cut of its framing exits 1 naming an offset,
# `restore` puts its pages into a new sim guest (read back from its RAM
# file), and the save options that cannot apply are refused.
#
# Env: XCC_BIN (the xc-colo binary), PYTHON. Run by `make test`.
set -u
e2e_tmp=xlimg
. "$(dirname "$0")/lib_e2e.sh"

PYTHONPATH="$(dirname "$0")" "$PY" - "$tmp" <<'EOF' || exit 1
import json, struct, sys
from stream_build import HVM, headers, page_data, rec
out = sys.argv[1]
PAGE = 4096

pfns = [0, 3, 100]
pd = page_data([(p, 0, bytes([0x40 + i]) * PAGE) for i, p in enumerate(pfns)])
libxc = headers(HVM, 4, 17) + rec(0x10) + pd + rec(0x00)  # x86 HVM, Xen 4.17

config = json.dumps({"c_info": {"type": "hvm", "name": "xlguest"},
                     "b_info": {"max_vcpus": 2, "max_memkb": 65536,
                                "target_memkb": 32768}}).encode() + b"\0"
opt = struct.pack("<I", len(config)) + config
xl = b"Xen saved domain, xl format\n \0 \r" + struct.pack("<IIII", 0x01020304, 3, 0, len(opt))
libxl_hdr = b"LibxlFmt" + struct.pack(">II", 2, 0)
emu = rec(0x03, struct.pack("<II", 2, 0) + b"qemu-state")
image = xl + opt + libxl_hdr + rec(0x01) + libxc + emu + rec(0x00)
open(out + "/img", "wb").write(image)
# The offsets where each part starts, for the cuts.
start_libxl = len(xl) + len(opt)
start_libxc = start_libxl + 16 + 8
start_emu = start_libxc + len(libxc)
with open(out + "/cuts", "w") as f:
    for cut in (1, 20, 47, 48, 51, 60, start_libxl + 3, start_libxl + 16 + 4,
                start_libxc + 10, start_emu + 4, start_emu + 12,
                len(image) - 8, len(image) - 1):
        f.write("%d\n" % cut)
EOF

# --- inspect: text ---------------------------------------------------------
if "$X" inspect "$tmp/img" >"$tmp/out" 2>"$tmp/err" &&
    grep -q '^xl header: "Xen saved domain, xl format", flags 0x3' "$tmp/out" &&
    grep -q 'name xlguest, type hvm, 2 vCPUs, memory 32 MiB (max 64 MiB)' "$tmp/out" &&
    grep -q '^libxl header: "LibxlFmt" version 2' "$tmp/out" &&
    grep -q 'libxl LIBXC_CONTEXT' "$tmp/out" &&
    grep -q 'libxl EMULATOR_CONTEXT .* emulator 2 index 0' "$tmp/out" &&
    grep -q 'libxl END' "$tmp/out" && grep -q '^stream valid' "$tmp/out"; then
    ok "inspect lists the xl header, the config's name and memory, every record"
else
    bad "inspect text: $(cat "$tmp/out" "$tmp/err")"
fi

# --- inspect: --json, in file order ---------------------------------------
"$X" inspect --json "$tmp/img" >"$tmp/json" 2>"$tmp/err"
rc=$?
if [ $rc = 0 ] && "$PY" - "$tmp/json" <<'EOF'; then
import json, sys
d = json.load(open(sys.argv[1]))
assert d["valid"] is True, d
assert d["xl"]["name"] == "xlguest" and d["xl"]["target_memkb"] == 32768, d["xl"]
assert d["xl"]["mandatory_flags"] == 3 and d["xl"]["libxl_version"] == 2
order = ["%s:%s" % (r["layer"], r["name"]) for r in d["records"]]
assert order == ["libxl:LIBXC_CONTEXT", "libxc:STATIC_DATA_END", "libxc:PAGE_DATA",
                 "libxc:END", "libxl:EMULATOR_CONTEXT", "libxl:END"], order
offs = [r["offset"] for r in d["records"]]
assert offs == sorted(offs), offs
assert d["headers"]["domain"] == "x86 HVM", d["headers"]
assert d["totals"]["pages_data"] == 3
EOF
    ok "inspect --json: xl, records of both layers in file order, headers"
else
    bad "inspect --json (exit $rc): $(cat "$tmp/json" "$tmp/err")"
fi
if "$X" inspect -q - <"$tmp/img" >"$tmp/out" 2>&1 && grep -q '^stream valid' "$tmp/out"; then
    ok "inspect reads the image from a pipe"
else
    bad "inspect from stdin: $(cat "$tmp/out")"
fi

# --- cuts: exit 1, naming an offset no further than the cut ---------------
n=0
while read -r cut; do
    head -c "$cut" "$tmp/img" >"$tmp/cut"
    "$X" inspect "$tmp/cut" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    off=$(sed -n 's/.*offset \([0-9]*\).*/\1/p' "$tmp/err" | head -n1)
    if [ $rc = 1 ] && [ -n "$off" ] && [ "$off" -le "$cut" ]; then
        n=$((n + 1))
    else
        bad "cut at $cut: exit $rc, $(cat "$tmp/err")"
    fi
done <"$tmp/cuts"
[ "$n" = "$(wc -l <"$tmp/cuts")" ] && ok "$n cuts of the image (xl header, config, libxl header, libxc stream, libxl records) exit 1 naming the offset"
head -c 40 "$tmp/img" >"$tmp/cut"
if ! "$X" inspect "$tmp/cut" >/dev/null 2>"$tmp/err" &&
    grep -q "xl header at offset 0: file ends after 40 of its 48 bytes" "$tmp/err"; then
    ok "a truncated xl header is named"
else
    bad "truncated xl header: $(cat "$tmp/err")"
fi

# --- restore into a new sim guest: the memory path -------------------------
g="xlimg-$$"
guests="$g"
if "$X" restore -q --mem 1M "$tmp/img" "sim:$g" >"$tmp/out" 2>&1; then
    root=${XCC_SIM_ROOT:-/dev/shm/xc-colo}
    [ -n "${XCC_SIM_ROOT:-}" ] || [ "$(id -u)" = 0 ] || root="$root-$(id -u)"
    if "$PY" - "$root/$g/ram" <<'EOF'; then
import sys
ram = open(sys.argv[1], "rb").read()
for i, pfn in enumerate([0, 3, 100]):
    assert ram[pfn * 4096:(pfn + 1) * 4096] == bytes([0x40 + i]) * 4096, pfn
assert ram[4096:2 * 4096] == bytes(4096)
EOF
        ok "restore of the xl image into sim:$g: its pages, byte for byte"
    else
        bad "restored RAM differs from the image's pages"
    fi
else
    bad "restore of the xl image: $(cat "$tmp/out")"
fi

# --- the same image over TCP into restore --listen --------------------------
g2="xlimg-tcp-$$"
guests="$guests $g2"
"$X" restore -q --listen tcp:127.0.0.1:0 --listen-timeout 20000 --mem 1M \
    "sim:$g2" >"$tmp/lout" 2>"$tmp/lerr" &
lpid=$!
pids="$lpid"
i=0
port=""
while [ -z "$port" ] && [ $i -lt 200 ] && kill -0 $lpid 2>/dev/null; do
    port=$(sed -n 's/^xc-colo: listening on tcp:.*:\([0-9][0-9]*\)$/\1/p' "$tmp/lerr" | head -n1)
    [ -n "$port" ] || sleep 0.05
    i=$((i + 1))
done
if [ -n "$port" ] && "$PY" -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
s.recv(1)
' "$port" "$tmp/img" && wait $lpid; then
    ok "restore --listen takes an xl image over TCP"
else
    bad "xl image over TCP: port '$port': $(cat "$tmp/lerr")"
fi

# --- save options that cannot apply ----------------------------------------
echo '{"c_info":{"name":"x"}}' >"$tmp/cfg.json"
echo 'not json' >"$tmp/bad.json"
"$X" save --xl-config-json "$tmp/cfg.json" sim:nosuch "$tmp/s" 2>"$tmp/err"
rc1=$?
"$X" save --xen-compat --xl-config-json "$tmp/bad.json" sim:nosuch "$tmp/s" 2>"$tmp/err2"
rc2=$?
"$X" save --xen-compat --xl-config-json "$tmp/cfg.json" sim:nosuch "$tmp/s" 2>"$tmp/err3"
rc3=$?
"$X" save --xen-compat --xbzrle sim:nosuch "$tmp/s" 2>"$tmp/err4"
rc4=$?
if [ $rc1 = 2 ] && grep -q "only with --xen-compat" "$tmp/err" &&
    [ $rc2 = 2 ] && grep -q "not a JSON object" "$tmp/err2" &&
    [ $rc3 = 1 ] && grep -q "bare libxc stream" "$tmp/err3" &&
    [ $rc4 = 2 ] && grep -q "no XBZRLE" "$tmp/err4"; then
    ok "save refuses --xl-config-json without --xen-compat, a non-JSON config, a sim guest, and --xen-compat --xbzrle"
else
    bad "save refusals: $rc1 $(cat "$tmp/err"); $rc2 $(cat "$tmp/err2"); $rc3 $(cat "$tmp/err3"); $rc4 $(cat "$tmp/err4")"
fi

echo "e2e_xl_image: $checks checks, $failures failed"
[ $failures = 0 ]
