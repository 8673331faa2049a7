#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_stream into tests/corpus/stream/.

Small, valid (and a few nearly valid) streams, built from the layouts in
libxc-colo/docs/stream-format.md, so the fuzzer starts deep in every parser.
"""
import os
import struct
import sys

PAGE = 4096
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(__file__), "..", "corpus", "stream")


def headers(dtype=0x58430000, shift=12, major=0, minor=0, version=3):
    ihdr = struct.pack(">QIIHHI", 0xFFFFFFFFFFFFFFFF, 0x58454E46, version, 0, 0, 0)
    return ihdr + struct.pack("<IHHII", dtype, shift, 0, major, minor)


def rec(rtype, body=b""):
    pad = (8 - len(body) % 8) % 8
    return struct.pack("<II", rtype, len(body)) + body + b"\0" * pad


def page_data(entries):
    """entries: (pfn, type, data or None)"""
    body = struct.pack("<II", len(entries), 0)
    body += b"".join(struct.pack("<Q", pfn | t << 60) for pfn, t, _ in entries)
    body += b"".join(d for _, _, d in entries if d is not None)
    return rec(0x01, body)


def entry(p):
    """A pfn, or (pfn, type): PAGE_DATA's encoding (stream format 2)."""
    pfn, t = p if isinstance(p, tuple) else (p, 0)
    return struct.pack("<Q", pfn | t << 60)


def pfn_batch(rtype, pfns):
    return rec(rtype, struct.pack("<II", len(pfns), 0) +
               b"".join(entry(p) for p in pfns))


def xbzrle(items):
    """items: (pfn or (pfn, type), delta)"""
    n = len(items)
    body = struct.pack("<II", n, 0)
    body += b"".join(entry(p) for p, _ in items)
    lens = b"".join(struct.pack("<I", len(d)) for _, d in items)
    body += lens + b"\0" * ((8 - len(lens) % 8) % 8)
    body += b"".join(d for _, d in items)
    return rec(0x58430003, body)


def zstd_frame(blocks):
    """A zstd frame written by hand (RFC 8878): single segment, content
    size in the header, then blocks: ("raw", bytes) or ("rle", byte, n)."""
    size = sum(len(b[1]) if b[0] == "raw" else b[2] for b in blocks)
    if 256 <= size < 65536 + 256:
        fhd, fcs = 0x60, struct.pack("<H", size - 256)
    else:
        fhd, fcs = 0xA0, struct.pack("<I", size)
    out = struct.pack("<I", 0xFD2FB528) + bytes([fhd]) + fcs
    for i, b in enumerate(blocks):
        last = 1 if i == len(blocks) - 1 else 0
        if b[0] == "raw":
            out += struct.pack("<I", last | 0 << 1 | len(b[1]) << 3)[:3] + b[1]
        else:
            out += struct.pack("<I", last | 1 << 1 | b[2] << 3)[:3] + b[1]
    return out


def compressed(entries, frame):
    """COMPRESSED_PAGES: entries (pfn, type), one zstd frame of the pages."""
    body = struct.pack("<II", len(entries), len(frame))
    body += b"".join(struct.pack("<Q", pfn | t << 60) for pfn, t in entries)
    return rec(0x58430007, body + frame)

def cache_bases(dropped, kept):
    """CACHE_BASES: the pfns the receiver drops, then those it keeps."""
    return rec(0x58430008, struct.pack("<IIQ", len(dropped), len(kept), 0) +
               b"".join(struct.pack("<Q", p) for p in dropped + kept))

# Format 2: GUEST_INFO flag 0x1, typed ZERO_PAGES / XBZRLE_PAGES entries.
GUEST = rec(0x58430001, struct.pack("<QII", 4096, PAGE, 1))
# Format 3: flag 0x2 too, the stream announces its XBZRLE cache.
GUEST_V3 = rec(0x58430001, struct.pack("<QII", 4096, PAGE, 3))
GUEST_V1 = rec(0x58430001, struct.pack("<QII", 4096, PAGE, 0))
END = rec(0x00)
DELTA_A = bytes([0x00, 0x04]) + b"ABCD"
DELTA_B = bytes([0x64, 0x01, 0x78, 0xC8, 0x01, 0x02]) + b"yz"
small = bytes(range(256)) * (PAGE // 256)
# Normalised page tables: an L1 mapping pfns 5 and 6, an L4 (Xen's slots
# 256..272 zero) pointing at pfn 3.
PT_L1 = (struct.pack("<QQ", 5 << 12 | 0x67, 6 << 12 | 0x8000000000000025) +
         b"\0" * (PAGE - 16))
PT_L4 = struct.pack("<Q", 3 << 12 | 0x67) + b"\0" * (PAGE - 8)

seeds = {
    "empty-valid": headers() + GUEST + END,
    # In the order stream_order_check takes: a sim guest has only NORMAL
    # pages and holes (XTAB); the list follows the first CHECKPOINT; END
    # follows a CHECKPOINT.
    "sim-every-record": headers() + GUEST +
        page_data([(1, 0, small), (2, 0xF, None), (3, 0, b"\xA5" * PAGE), (7, 0xF, None)]) +
        pfn_batch(0x58430002, [10, 11, 12]) +
        xbzrle([(20, DELTA_A), (21, DELTA_B)]) + rec(0x0E) +
        rec(0x0F, struct.pack("<QQQ", 5, 6, 4095)) +
        rec(0xD8430005, b'{"iteration":1,"pages":3}') +
        rec(0x58430004, struct.pack("<IIII", 2 << 20, 2, 0, 0) + b"\x11" * 16 + b"\x22" * 32) +
        rec(0x10) + rec(0x0E) + END,
    "pv-page-types": headers(1, 12, 4, 17) + GUEST +
        page_data([(1, 0, small), (2, 0xF, None), (3, 1, PT_L1), (4, 0xC, PT_L4),
                   (7, 0xD, None)]) +
        pfn_batch(0x58430002, [(8, 0x9), (9, 0x2), 10]) +
        xbzrle([((3, 1), DELTA_A), ((4, 0xC), DELTA_B), (11, DELTA_A)]) +
        END,
    # Format 1 (before page types): plain pfns, still read.
    "format1": headers() + GUEST_V1 + pfn_batch(0x58430002, [1, 2]) +
        xbzrle([(3, DELTA_A)]) + END,
    "checkpoints": headers() + GUEST + page_data([(0, 0, small)]) + rec(0x0E) +
        xbzrle([(0, DELTA_A)]) + rec(0x0F, b"") + rec(0x0E) +
        pfn_batch(0x58430002, [0]) + rec(0x0E) + END,
    "xen-pv": headers(1, 12, 4, 17) + rec(0x02, bytes([8, 4, 0, 0, 0, 0, 0, 0])) +
        rec(0x03, struct.pack("<IIQ", 0, 1023, 0x123)) +
        rec(0x08, struct.pack("<IIQII", 2, 2400000, 1234, 1, 0)) +
        rec(0x07, b"\1" + b"\0" * (PAGE - 1)) +
        page_data([(5, 0, small), (6, 0xC, small), (9, 0xF, None), (10, 0xE, None)]) +
        rec(0x04, struct.pack("<II", 0, 0) + b"context-blob!") +
        rec(0x05, struct.pack("<II", 0, 0) + b"ext") +
        rec(0x06, struct.pack("<II", 0, 0) + b"xsave") +
        rec(0x0C, struct.pack("<II", 0, 0) + b"msrs") +
        rec(0x10) + rec(0x11, b"cpuid-leaves....") + rec(0x12, b"msrs") + END,
    "xen-hvm": headers(2, 12, 4, 17) +
        rec(0x08, struct.pack("<IIQII", 0, 0, 0, 0, 0)) +
        rec(0x0A, struct.pack("<IIQQQQ", 2, 0, 0, 1, 2, 3)) +
        rec(0x09, b"\x42" * 1000) + rec(0x80000042, b"future optional") +
        page_data([(0x100000, 0, small)]) + rec(0x0D) + rec(0x0B, b"toolstack") + END,
    "compressed": headers() + GUEST +
        compressed([(1, 0), (9, 0)], zstd_frame([("rle", b"\x5a", PAGE), ("raw", small)])) +
        page_data([(2, 0xF, None)]) + END,
    "compressed-checkpoint": headers() + GUEST + compressed([(0, 0)], zstd_frame([("raw", small)])) +
        rec(0x0E) + compressed([(0, 0), (3, 0)], zstd_frame([("rle", b"\1", 2 * PAGE)])) +
        rec(0x0E) + END,
    "version2": headers(version=2) + GUEST + pfn_batch(0x58430002, [1]) + END,
    "bigpage": headers(shift=16) + rec(0x58430001, struct.pack("<QII", 16, 65536, 0)) +
        pfn_batch(0x58430002, [3]) + END,
    # Format 3: deltas only onto pages CACHE_BASES kept; 21 evicted and
    # taken back in one batch, 22 kept as a zero page, 20 dropped at last.
    "cache-bases": headers() + GUEST_V3 + cache_bases([], [20, 21, 22]) +
        page_data([(20, 0, small), (21, 0, b"\xA5" * PAGE), (23, 0, small)]) +
        pfn_batch(0x58430002, [22]) +
        xbzrle([(20, DELTA_A), (21, DELTA_B), (22, DELTA_A)]) +
        cache_bases([21], [21, 23]) + page_data([(21, 0, small), (23, 0, small)]) +
        xbzrle([(21, DELTA_A), (23, DELTA_B)]) + cache_bases([20], []) +
        rec(0x58430004, struct.pack("<IIII", 2 << 20, 8, 0, 0) + b"\x11" * 16 + b"\x22" * 128) +
        END,
    "cache-bases-checkpoint": headers() + GUEST_V3 + cache_bases([], [0]) +
        page_data([(0, 0, small)]) + rec(0x0E) + xbzrle([(0, DELTA_A)]) +
        cache_bases([0], [1]) + page_data([(1, 0, small)]) + rec(0x0E) +
        xbzrle([(1, DELTA_B)]) + rec(0x0E) + END,
}

def xl_image(stream, config=b'{"c_info":{"name":"guest"}}\0', tail=b""):
    """An xl save image around a libxc stream (stream-format.md, section 7)."""
    opt = struct.pack("<I", len(config)) + config
    hdr = (b"Xen saved domain, xl format\n \0 \r" +
           struct.pack("<IIII", 0x01020304, 3 if config else 2, 0, len(opt)))
    return (hdr + opt + b"LibxlFmt" + struct.pack(">II", 2, 0) + rec(0x01) +
            stream + tail + rec(0x00))

seeds["xl-pv"] = xl_image(seeds["xen-pv"])
seeds["xl-hvm-emulator"] = xl_image(
    seeds["xen-hvm"], tail=rec(0x03, struct.pack("<II", 2, 0) + b"qemu-blob"))
# Nearly valid: each trips one check, so the fuzzer sees every error path.
bad = dict()
bad["xl-trunc-header"] = seeds["xl-pv"][:40]
bad["xl-libxl-checkpoint"] = xl_image(seeds["xen-pv"], tail=rec(0x04))
bad["trunc-mid-page"] = seeds["sim-every-record"][:200]
bad["no-end"] = headers() + GUEST
bad["pfn-too-big"] = headers() + GUEST + pfn_batch(0x58430002, [4096]) + END
bad["dup-pfn"] = headers() + GUEST + pfn_batch(0x58430002, [7, 7]) + END
bad["bad-delta"] = headers() + GUEST + xbzrle([(1, bytes([0x00, 0x00]))]) + END
bad["count-overflow"] = headers() + GUEST + rec(0x01, struct.pack("<IIQ", 0xFFFFFFFF, 0, 1)) + END
bad["padding"] = headers() + GUEST + rec(0xD8430005, b"abc")[:-1] + b"\1" + END
bad["after-end"] = headers() + GUEST + END + b"\0" * 8
bad["unknown-block"] = headers() + GUEST + rec(0x58430077, b"x") + END
# Streams inspect once passed and restore refused (one grammar now).
bad["xbzrle-overlong"] = (headers() + GUEST + page_data([(3, 0, small)]) +
                          xbzrle([(3, bytes([0x80, 0x00, 0x01, 0x07]))]) + END)
bad["guest-info-late"] = headers() + rec(0xD8430005, b"{}") + GUEST + END
bad["digest-4m"] = (headers() + GUEST + rec(0x58430004, struct.pack(
    "<IIII", 4 << 20, 4, 0, 0) + b"\x11" * 80) + END)
bad["epoch-no-ckpt"] = (headers() + GUEST + page_data([(0, 0, small)]) + rec(0x0E) +
                        pfn_batch(0x58430002, [0]) + END)
bad["sim-pagetable"] = headers() + GUEST + page_data([(3, 1, small)]) + END
bad["sim-zero-pagetable"] = headers() + GUEST + pfn_batch(0x58430002, [(3, 1)]) + END
bad["zero-hole-type"] = headers(1, 12, 4, 17) + GUEST + pfn_batch(0x58430002, [(3, 0xF)]) + END
bad["format1-typed"] = headers(1, 12, 4, 17) + GUEST_V1 + xbzrle([((3, 1), DELTA_A)]) + END
bad["pv-pt-not-normalised"] = (headers(1, 12, 4, 17) + GUEST +
                               page_data([(3, 1, struct.pack("<Q", 0x123456 << 12 | 0x67) +
                                           b"\0" * (PAGE - 8))]) + END)
bad["guest-info-flags"] = headers() + rec(0x58430001, struct.pack("<QII", 4096, PAGE, 4)) + END
# CACHE_BASES: a delta onto a pfn never kept, one kept but not sent since,
# the record without the flag, a list with a pfn twice.
bad["cache-bases-no-base"] = (headers() + GUEST_V3 + cache_bases([], [5]) +
                              page_data([(3, 0, small), (5, 0, small)]) +
                              xbzrle([(5, DELTA_A), (3, DELTA_A)]) + END)
bad["cache-bases-no-page"] = (headers() + GUEST_V3 + page_data([(3, 0, small)]) +
                              cache_bases([], [3]) + xbzrle([(3, DELTA_A)]) + END)
bad["cache-bases-no-flag"] = headers() + GUEST + cache_bases([], [3]) + END
bad["cache-bases-dup"] = headers() + GUEST_V3 + cache_bases([4, 4], [5]) + END
# COMPRESSED_PAGES: a bomb (more pages than counted), short, trailing bytes,
# a hole entry (no data), a frame cut short.
bad["zstd-bomb"] = headers() + GUEST + compressed([(1, 0)], zstd_frame([("rle", b"\0", 64 * PAGE)])) + END
bad["zstd-short"] = headers() + GUEST + compressed([(1, 0), (2, 0)], zstd_frame([("raw", small)])) + END
bad["zstd-trailing"] = headers() + GUEST + compressed([(1, 0)], zstd_frame([("raw", small)]) + b"\0") + END
bad["zstd-hole"] = headers() + GUEST + compressed([(1, 0xF)], zstd_frame([("raw", small)])) + END
bad["zstd-cut"] = headers() + GUEST + compressed([(1, 0)], zstd_frame([("raw", small)])[:-100]) + END
seeds.update(bad)

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print("wrote %d seeds to %s" % (len(seeds), OUT))
