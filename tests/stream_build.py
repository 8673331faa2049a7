"""stream_build.py - the pieces of a migration stream, built by hand from
libxc-colo/docs/stream-format.md, for the tests that write streams
(e2e_inspect.sh, e2e_security_stream.sh, e2e_roundtrip.sh, e2e_xl_image.sh,
xen_state_streams.py). The shell tests run Python with PYTHONPATH set to
tests/, so `from stream_build import ...` finds this file.
"""
import struct

SIM, PV, HVM = 0x58430000, 1, 2         # domain header types


def image_header():
    """The image header: marker, "XENF", version 3, no options."""
    return struct.pack(">QIIHHI", 0xFFFFFFFFFFFFFFFF, 0x58454E46, 3, 0, 0, 0)


def headers(dtype, major=0, minor=0):
    """The image header and a domain header of dtype (4 KiB pages) from Xen
    major.minor."""
    return image_header() + struct.pack("<IHHII", dtype, 12, 0, major, minor)


def rec(t, body=b""):
    """A record of type t: header, body, zero padding to 8 bytes."""
    return struct.pack("<II", t, len(body)) + body + b"\0" * ((8 - len(body) % 8) % 8)


def page_data(entries):
    """PAGE_DATA of [(pfn, type, data or None)]: the data of the entries
    that have it, in entry order."""
    body = struct.pack("<II", len(entries), 0)
    body += b"".join(struct.pack("<Q", p | t << 60) for p, t, _ in entries)
    return rec(1, body + b"".join(d for _, _, d in entries if d))


def zero_pages(pfns):
    """ZERO_PAGES of the pfns."""
    return rec(0x58430002, struct.pack("<II", len(pfns), 0) +
               b"".join(struct.pack("<Q", p) for p in pfns))
