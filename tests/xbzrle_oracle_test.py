#!/usr/bin/env python3
"""Cross-checks the C XBZRLE codec against an independent Python oracle.

The oracle below is written from the format description alone (QEMU's
XBZRLE: alternating zero-run / non-zero-run lengths as ULEB128 of at most 14
bits, the non-zero bytes after their length, a first zero run that may be 0,
no trailing zero run). It loads $XCC_BUILD/lib/libxccolo.so (XCC_BUILD
defaults to "build", relative to the repository root, the cwd) with ctypes
and compares, on thousands of random page pairs, for every encoder path the
CPU has:
  - the encoded bytes, byte for byte;
  - the result at dst_len = exact size (fits) and exact size - 1 (-1), with
    guard bytes after dst to catch an overrun;
  - the C decoder applied to the oracle's encoding, and the verdict and
    resulting page of both decoders on mutated (often malformed) deltas.
Exits non-zero with a message naming the case on the first mismatch.
Standard library only.
"""

import ctypes
import os
import random
import re
import subprocess
import sys
import time

MAX_RUN = 0x3FFF  # 14-bit ULEB128 lengths, as QEMU's uleb128_*_small
GUARD = 64  # guard bytes after dst
GUARD_BYTE = 0xA5
SEED = int(os.environ.get("XBZRLE_ORACLE_SEED", "20240611"))
NONZERO = re.compile(rb"[^\x00]+")


class Mismatch(Exception):
    pass


# --------------------------------------------------------------------------
# The oracle.
# --------------------------------------------------------------------------

def uleb(n):
    assert 0 <= n <= MAX_RUN
    if n < 0x80:
        return bytes([n])
    return bytes([(n & 0x7F) | 0x80, n >> 7])


def ref_encode(old, new):
    """Returns the delta (b"" for equal pages) or None when a changed run is
    longer than 14 bits (the format cannot express it)."""
    n = len(old)
    xor = (int.from_bytes(old, "little") ^ int.from_bytes(new, "little")).to_bytes(n, "little")
    out = bytearray()
    pos = 0
    for m in NONZERO.finditer(xor):
        s, e = m.start(), m.end()
        z = s - pos
        # A zero run over 14 bits: a zero run, then one unchanged byte sent
        # as a one-byte non-zero run, leaving at least one zero byte.
        while z > MAX_RUN:
            k = min(MAX_RUN, z - 2)
            out += uleb(k) + uleb(1) + new[pos + k:pos + k + 1]
            pos += k + 1
            z -= k + 1
        if e - s > MAX_RUN:
            return None
        out += uleb(z) + uleb(e - s) + new[s:e]
        pos = e
    return bytes(out)


def ref_read_len(src, i):
    """(value, next index) or None for a missing, >14-bit or overlong one."""
    if i >= len(src):
        return None
    b = src[i]
    if b < 0x80:
        return b, i + 1
    if i + 1 >= len(src):
        return None
    hi = src[i + 1]
    if hi >= 0x80 or hi == 0:
        return None
    return (b & 0x7F) | (hi << 7), i + 2


def ref_decode(src, page):
    """Applies src onto a copy of page: (covered, new page) or None."""
    page = bytearray(page)
    i = d = 0
    while i < len(src):
        r = ref_read_len(src, i)
        if r is None or (r[0] == 0 and i != 0):
            return None
        z, i = r
        d += z
        if d > len(page):
            return None
        r = ref_read_len(src, i)
        if r is None or r[0] == 0:
            return None
        n, i = r
        if d + n > len(page) or i + n > len(src):
            return None
        page[d:d + n] = src[i:i + n]
        d += n
        i += n
    return d, bytes(page)


# --------------------------------------------------------------------------
# Page pairs.
# --------------------------------------------------------------------------

def rand_bytes(rng, n):
    return rng.getrandbits(8 * n).to_bytes(n, "little") if n else b""


def changed_byte(rng, b):
    return (b + rng.randrange(1, 256)) & 0xFF


def mutate_positions(rng, old, positions):
    new = bytearray(old)
    for p in positions:
        new[p] = changed_byte(rng, new[p])
    return bytes(new)


def gen_pair(rng, kind, n):
    old = rand_bytes(rng, n) if rng.random() < 0.7 else bytes(n)
    if kind == "equal":
        return old, old
    if kind == "sparse":
        k = rng.randrange(1, 9)
        return old, mutate_positions(rng, old, rng.sample(range(n), min(k, n)))
    if kind == "density":
        p = rng.choice([0.01, 0.1, 0.3, 0.5, 0.9, 0.99])
        return old, mutate_positions(rng, old, [i for i in range(n) if rng.random() < p])
    if kind == "runs":
        new = bytearray(old)
        for _ in range(rng.randrange(1, 12)):
            ln = rng.choice([1, 2, 7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 300, 1000])
            s = rng.randrange(n)
            for p in range(s, min(n, s + ln)):
                new[p] = changed_byte(rng, new[p])
        return old, bytes(new)
    if kind == "edges":
        # Changes at the first and last bytes and around 64-byte words.
        cand = [0, 1, n - 1, n - 2] + [b + o for b in range(0, n, 64) for o in (-1, 0, 63)]
        cand = [c for c in cand if 0 <= c < n]
        return old, mutate_positions(rng, old, rng.sample(cand, rng.randrange(1, min(len(cand), 6) + 1)))
    if kind == "long":
        # Runs around the 14-bit limit: zero runs that must be split and
        # changed runs at and past MAX_RUN (64 KiB pages).
        new = bytearray(old)
        zero_gap = rng.choice([MAX_RUN - 1, MAX_RUN, MAX_RUN + 1, MAX_RUN + 2,
                               MAX_RUN + 3, 2 * MAX_RUN + 1, 2 * MAX_RUN + 2,
                               2 * MAX_RUN + 3, 3 * MAX_RUN + 4, n - 1])
        zero_gap = min(zero_gap, n - 1)
        run = rng.choice([1, 5, MAX_RUN - 1, MAX_RUN, MAX_RUN + 1])
        for p in range(zero_gap, min(n, zero_gap + run)):
            new[p] = changed_byte(rng, new[p])
        if rng.random() < 0.5:
            tail = rng.randrange(n)
            new[tail] = changed_byte(rng, new[tail])
        return old, bytes(new)
    raise ValueError(kind)


# --------------------------------------------------------------------------
# The C library.
# --------------------------------------------------------------------------

def preload_sanitizer(path):
    """An ASan-built library (make asan) only loads into a process whose
    first library is the ASan runtime: re-run this script with it preloaded
    (and leak checking off: the interpreter itself never frees everything)."""
    with open(path, "rb") as f:
        if b"libasan.so" not in f.read():
            return
    if "libasan" in os.environ.get("LD_PRELOAD", ""):
        return
    cc = os.environ.get("CC", "cc")
    runtime = subprocess.run([cc, "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
    if not runtime or not os.path.exists(runtime):
        sys.exit("xbzrle_oracle_test: %s needs the ASan runtime, and %s does not know where it is"
                 % (path, cc))
    env = dict(os.environ, LD_PRELOAD=runtime,
               ASAN_OPTIONS="detect_leaks=0:" + os.environ.get("ASAN_OPTIONS", ""))
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def load_lib():
    build = os.environ.get("XCC_BUILD", "build")
    path = os.path.join(build, "lib", "libxccolo.so")
    if not os.path.exists(path):
        sys.exit("xbzrle_oracle_test: %s not found (build first; XCC_BUILD names the build dir)" % path)
    preload_sanitizer(os.path.realpath(path))
    lib = ctypes.CDLL(os.path.abspath(path), use_errno=True)
    u8p = ctypes.c_char_p
    lib.xcc_xbzrle_encode.argtypes = [u8p, u8p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    lib.xcc_xbzrle_encode.restype = ctypes.c_int
    lib.xcc_xbzrle_decode.argtypes = [u8p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t]
    lib.xcc_xbzrle_decode.restype = ctypes.c_int
    lib.xcc_xbzrle_set_impl.argtypes = [ctypes.c_char_p]
    lib.xcc_xbzrle_set_impl.restype = ctypes.c_int
    lib.xcc_xbzrle_impl.argtypes = []
    lib.xcc_xbzrle_impl.restype = ctypes.c_char_p
    return lib


def c_encode(lib, old, new, dst_len):
    """(return value, dst bytes) after checking the guard bytes."""
    buf = ctypes.create_string_buffer(bytes([GUARD_BYTE]) * (dst_len + GUARD), dst_len + GUARD)
    r = lib.xcc_xbzrle_encode(old, new, len(old), buf, dst_len)
    raw = buf.raw
    if raw[dst_len:] != bytes([GUARD_BYTE]) * GUARD:
        raise Mismatch("encode wrote past dst + dst_len (dst_len %d, len %d)" % (dst_len, len(old)))
    return r, raw[:max(r, 0)]


def c_decode(lib, src, page):
    n = len(page)
    buf = ctypes.create_string_buffer(bytes(page) + bytes([GUARD_BYTE]) * GUARD, n + GUARD)
    r = lib.xcc_xbzrle_decode(src, len(src), buf, n)
    raw = buf.raw
    if raw[n:] != bytes([GUARD_BYTE]) * GUARD:
        raise Mismatch("decode wrote past the page (len %d, src %s)" % (n, src[:32].hex()))
    return r, raw[:n]


# --------------------------------------------------------------------------
# Checks.
# --------------------------------------------------------------------------

def check_vectors(lib):
    old = bytearray(4096)
    new = bytearray(4096)
    old[1001:1001 + 21] = bytes([5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 0x68, 0, 0, 0x6B, 0, 0x6D])
    new[1001:1001 + 21] = bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x68, 0, 0, 0x67, 0, 0x69])
    want = bytes.fromhex("e9070f0102030405060708090a0b0c0d0e0f0301670101" "69")
    for who, got in (("oracle", ref_encode(bytes(old), bytes(new))),
                     ("C", c_encode(lib, bytes(old), bytes(new), 4096)[1])):
        if got != want:
            raise Mismatch("%s: QEMU's 24-byte vector gave %s" % (who, got.hex()))
    z = bytes(4096)
    last = bytes(4095) + b"\x01"
    if ref_encode(z, last) != bytes.fromhex("ff1f0101"):
        raise Mismatch("oracle: byte 4095 vector")


def check_pair(lib, impl, kind, old, new):
    n = len(old)
    want = ref_encode(old, new)
    where = "impl %s, kind %s, len %d" % (impl, kind, n)
    big = n + n // 2 + 64  # larger than any expressible delta of the page
    r, got = c_encode(lib, old, new, big)
    if want is None:
        if r != -1:
            raise Mismatch("%s: delta with a changed run > 14 bits: C returned %d, want -1" % (where, r))
        return
    if len(want) == 0:
        if r != 0:
            raise Mismatch("%s: equal pages: C returned %d" % (where, r))
        return
    if r != len(want) or got != want:
        diff = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
        raise Mismatch("%s: C returned %d bytes, oracle %d; first difference at byte %d (C %s / oracle %s)"
                       % (where, r, len(want), diff, got[diff:diff + 8].hex(), want[diff:diff + 8].hex()))
    # dst_len boundaries: exact fits, one less does not.
    r2, got2 = c_encode(lib, old, new, len(want))
    if r2 != len(want) or got2 != want:
        raise Mismatch("%s: dst_len = exact size %d: C returned %d" % (where, len(want), r2))
    r3, _ = c_encode(lib, old, new, len(want) - 1)
    if r3 != -1:
        raise Mismatch("%s: dst_len = exact size - 1 (%d): C returned %d, want -1" % (where, len(want) - 1, r3))
    # The C decoder on the oracle's bytes.
    rd, page = c_decode(lib, want, old)
    if page != new:
        raise Mismatch("%s: C decode of the oracle's delta did not give the new page (returned %d)" % (where, rd))
    ref = ref_decode(want, old)
    if ref is None or ref[0] != rd or ref[1] != new:
        raise Mismatch("%s: oracle decode disagrees with C decode (C %d)" % (where, rd))


def mutate_delta(rng, src):
    src = bytearray(src)
    op = rng.randrange(6)
    if op == 0 and src:
        src[rng.randrange(len(src))] = rng.randrange(256)
    elif op == 1 and src:
        del src[rng.randrange(len(src)):]
    elif op == 2:
        src.insert(rng.randrange(len(src) + 1), rng.choice([0x00, 0x80, 0xFF, 0x7F, 0x01]))
    elif op == 3 and src:
        src[rng.randrange(len(src))] ^= 0x80
    elif op == 4:
        src += bytes(rng.choice([[0x00], [0x01], [0x80, 0x00], [0xFF, 0x7F], [0xFF, 0xFF, 0x01], [0x01, 0x01, 0x33]]))
    else:
        src = bytearray(rand_bytes(rng, rng.randrange(1, 12))) + src
    return bytes(src)


def check_decode_verdicts(lib, rng, old, delta, count):
    for _ in range(count):
        bad = mutate_delta(rng, delta)
        ref = ref_decode(bad, old)
        rc, page = c_decode(lib, bad, old)
        if ref is None:
            if rc != -1:
                raise Mismatch("decode accepted a delta the oracle rejects (len %d): %s... -> %d"
                               % (len(old), bad[:24].hex(), rc))
        elif rc != ref[0] or page != ref[1]:
            raise Mismatch("decode of %s... (len %d): C %d, oracle %d, pages %s"
                           % (bad[:24].hex(), len(old), rc, ref[0], "equal" if page == ref[1] else "differ"))


def main():
    start = time.time()
    lib = load_lib()
    rng = random.Random(SEED)
    check_vectors(lib)

    impls = []
    for name in ("scalar", "avx2", "avx512"):
        if lib.xcc_xbzrle_set_impl(name.encode()) == 0:
            impls.append(name)
        else:
            print("xbzrle_oracle_test: skipping impl %s: %s" % (name, os.strerror(ctypes.get_errno())))
    if not impls:
        raise Mismatch("no encoder path available, not even scalar")

    kinds = ["equal", "sparse", "density", "runs", "edges"]
    small = [8, 16, 24, 56, 64, 72, 120, 128, 136, 256, 1000, 4096]
    pairs = 0
    for impl in impls:
        lib.xcc_xbzrle_set_impl(impl.encode())
        if lib.xcc_xbzrle_impl().decode() != impl:
            raise Mismatch("set_impl(%s) but xcc_xbzrle_impl() says %s" % (impl, lib.xcc_xbzrle_impl()))
        local = random.Random(SEED)  # the same pairs for every path
        for _ in range(1500):
            kind = local.choice(kinds)
            n = local.choice(small) if local.random() < 0.8 else 8 * local.randrange(1, 8193)
            old, new = gen_pair(local, kind, n)
            check_pair(lib, impl, kind, old, new)
            pairs += 1
        for _ in range(40):
            n = local.choice([16384, 16392, 32768, 65536])
            old, new = gen_pair(local, "long", n)
            check_pair(lib, impl, "long", old, new)
            pairs += 1

    lib.xcc_xbzrle_set_impl(b"auto")
    decodes = 0
    for _ in range(400):
        n = rng.choice([8, 64, 128, 4096])
        old, new = gen_pair(rng, rng.choice(["sparse", "density", "runs", "edges"]), n)
        delta = ref_encode(old, new)
        check_decode_verdicts(lib, rng, old, delta, 10)
        decodes += 10
    # Hand-made malformed deltas, each rule once.
    page = bytes(4096)
    for bad in [b"\x00", b"\x05", b"\x00\x00", b"\x05\x00\x01", b"\x01\x01\x07\x00\x01\x07",
                b"\x80\x00\x01\x07", b"\xff\xff\x01\x01\x07", b"\x00\x80\x00\x07",
                b"\xff\x1f\x02\x01\x02", b"\x00\x05\x01\x02", b"\xff\x7f\x01\x07",
                b"\x01\x01\x07\x05"]:
        if ref_decode(bad, page) is not None:
            raise Mismatch("oracle accepted malformed %s" % bad.hex())
        rc, got = c_decode(lib, bad, page)
        if rc != -1:
            raise Mismatch("C decode accepted malformed %s (returned %d)" % (bad.hex(), rc))
    print("xbzrle_oracle_test: %d page pairs x paths (%s), %d decode verdicts, all agree (%.1f s)"
          % (pairs, " ".join(impls), decodes, time.time() - start))


if __name__ == "__main__":
    try:
        main()
    except Mismatch as e:
        print("xbzrle_oracle_test: MISMATCH: %s" % e, file=sys.stderr)
        sys.exit(1)
