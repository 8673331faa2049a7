#!/usr/bin/env python3
"""stream_cut.py EXTRA OFFSET_FILE: a relay that tears a checkpoint stream.

Copies stdin to stdout, following the record framing of the stream
(libxc-colo/docs/stream-format.md: a 24-byte image header, a 16-byte domain
header, then records of u32 type, u32 body length, body padded to 8 bytes).
After the end of the first CHECKPOINT record (type 0x0E, which commits
checkpoint 1 on the receiver) it copies EXTRA more bytes, writes that cut
offset to OFFSET_FILE and exits, closing the stream wherever it falls: the
cut point is taken from the stream itself, whatever the live phase sent.
Exit 1 if the stream ends before the cut.
"""
import struct
import sys

CHECKPOINT = 0x0E


def main():
    extra, offset_file = int(sys.argv[1]), sys.argv[2]
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    pos = 0

    def copy(n):
        nonlocal pos
        while n > 0:
            chunk = src.read(min(n, 1 << 20))
            if not chunk:
                raise EOFError
            dst.write(chunk)
            pos += len(chunk)
            n -= len(chunk)

    try:
        copy(40)  # image and domain headers
        while True:
            hdr = src.read(8)
            if len(hdr) < 8:
                raise EOFError
            dst.write(hdr)
            pos += 8
            rtype, length = struct.unpack("<II", hdr)
            copy((length + 7) & ~7)
            if rtype == CHECKPOINT:
                break
        cut = pos + extra
        copy(extra)
    except (EOFError, BrokenPipeError):
        sys.stderr.write("stream_cut: the stream ended at %d, before the cut\n" % pos)
        return 1
    dst.flush()
    with open(offset_file, "w") as f:
        f.write("%d\n" % cut)
    return 0


if __name__ == "__main__":
    sys.exit(main())
