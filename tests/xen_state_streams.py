#!/usr/bin/env python3
"""xen_state_streams.py DIR: writes hand-built x86 PV streams with the
domain-state records (libxc-colo/docs/stream-format.md, "Xen domain
state"), one file each, for e2e_xen_state.sh and the fuzz corpus:

  pv-state-valid   GUEST_INFO (64 pfns), XL_CONFIG (2 vCPUs), X86_PV_INFO,
                   CPUID/MSR policy, STATIC_DATA_END, X86_PV_P2M_FRAMES,
                   PAGE_DATA (pfn 10 L4, pfn 11 pinned L4), TSC_INFO,
                   SHARED_INFO, vCPU 0 and 1 BASIC/EXTENDED/XSAVE/MSRS, END
  pv-state-stock   the same without our records (as Xen writes it)
  pv-bad-vcpu      an X86_PV_VCPU_MSRS record for vCPU 2 of 2
  pv-bad-cr3       vCPU 0's cr3 names pfn 12, sent as a normal page
  pv-bad-p2m       X86_PV_P2M_FRAMES with 2 frames for pfns 0..63
  pv-restore-*     valid, bad-vcpu, bad-cr3 with normal pages only and no
                   good BASIC record: what a sim target can be restored from

Prints, for each bad stream, "NAME OFFSET" of the record that is wrong.
"""
import json
import struct
import sys

from stream_build import PV, headers, rec

PAGE = 4096
NR = 64
CTX64 = 5168
RDX, GDT_ENTS, CTRLREG = 616, 4960, 4984


def page_bytes(pfn, t):
    """A page table goes normalised, as inspect checks (entries name pfns
    below NR, Xen's slots zero): one entry, naming pfn 5."""
    if t in (1, 2, 3, 4, 9, 10, 11, 12):
        return struct.pack("<Q", 5 << 12 | 0x67) + bytes(PAGE - 8)
    return bytes([pfn]) * PAGE


def page_data(entries):
    body = struct.pack("<II", len(entries), 0)
    body += b"".join(struct.pack("<Q", p | t << 60) for p, t in entries)
    return rec(1, body + b"".join(page_bytes(p, t) for p, t in entries))


def ctx64(cr3_pfn, cr1_pfn=0, start_info=0):
    c = bytearray(CTX64)
    struct.pack_into("<Q", c, RDX, start_info)
    struct.pack_into("<Q", c, GDT_ENTS, 0)
    struct.pack_into("<Q", c, CTRLREG + 8, (1 | cr1_pfn << 12) if cr1_pfn else 0)
    struct.pack_into("<Q", c, CTRLREG + 24, cr3_pfn << 12)
    return bytes(c)


def vcpu(t, vid, blob):
    return rec(t, struct.pack("<II", vid, 0) + blob)


CONFIG = json.dumps({"c_info": {"type": "pv", "name": "pvguest"},
                     "b_info": {"max_vcpus": 2, "max_memkb": 262144,
                                "target_memkb": 262144}}).encode()


def stream(ours=True, bad=None, tables=True):
    """Returns (bytes, offset of the bad record or None). Without tables,
    every page is a normal one and only a bad BASIC is sent: what a sim
    target (which holds no page tables) can take."""
    out = bytearray(headers(PV, 4, 17))
    bad_off = None

    def add(r, is_bad=False):
        nonlocal bad_off
        if is_bad:
            bad_off = len(out)
        out.extend(r)

    if ours:
        add(rec(0x58430001, struct.pack("<QII", NR, PAGE, 0)))
        add(rec(0x58430006, CONFIG))
    add(rec(0x02, bytes([8, 4, 0, 0, 0, 0, 0, 0])))
    add(rec(0x11, bytes(range(48))))                       # 2 CPUID leaves
    add(rec(0x12, struct.pack("<IIQ", 0xCE, 0, 0)))        # 1 MSR
    add(rec(0x10))
    frames = 2 if bad == "p2m" else 1
    add(rec(0x03, struct.pack("<II", 0, NR - 1) +
            b"".join(struct.pack("<Q", 5 + i) for i in range(frames))),
        bad == "p2m")
    add(page_data([(5, 0), (10, 0x4 if tables else 0),
                   (11, 0xC if tables else 0), (12, 0)]))
    add(rec(0x08, struct.pack("<IIQII", 0, 2000000, 123456789, 1, 0)))
    si = bytearray(PAGE)
    struct.pack_into("<Q", si, 3088, NR)
    add(rec(0x07, bytes(si)))
    for vid in (0, 1):
        cr3 = 12 if (bad == "cr3" and vid == 0) else 10
        if tables or (bad == "cr3" and vid == 0):
            add(vcpu(0x04, vid, ctx64(cr3, 11 if vid == 0 else 0,
                                      7 if vid == 0 else 0)),
                bad == "cr3" and vid == 0)
        add(vcpu(0x05, vid, struct.pack("<II", vid, 64) + bytes(56)))
        add(vcpu(0x06, vid, struct.pack("<QQ", 7, 7) + bytes(576)))
        add(vcpu(0x0C, vid, struct.pack("<IIQ", 0xC0000103, 0, 0)))
    if bad == "vcpu":
        add(vcpu(0x0C, 2, struct.pack("<IIQ", 0xC0000103, 0, 0)), True)
    add(rec(0x00))
    return bytes(out), bad_off


def main():
    d = sys.argv[1]
    for name, ours, bad, tables in (
            ("pv-state-valid", True, None, True),
            ("pv-state-stock", False, None, True),
            ("pv-bad-vcpu", True, "vcpu", True),
            ("pv-bad-cr3", True, "cr3", True),
            ("pv-bad-p2m", True, "p2m", True),
            ("pv-restore-valid", True, None, False),
            ("pv-restore-bad-vcpu", True, "vcpu", False),
            ("pv-restore-bad-cr3", True, "cr3", False)):
        data, off = stream(ours, bad, tables)
        with open(f"{d}/{name}", "wb") as f:
            f.write(data)
        if off is not None:
            print(name, off)


if __name__ == "__main__":
    main()
