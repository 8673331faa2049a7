/*
 * fuzz_xen_feed.c - libFuzzer target for the checker and forwarder of the
 * libxl v2 stream that `xc-colo restore FILE xen:` hands to libxl
 * (tests/xen_feed.c). Arbitrary bytes are the stream after the xl header.
 *
 * Property (abort() when broken): what the forwarder accepts, it writes out
 * byte for byte as it read it, and that output is accepted again (so
 * libxl never gets a stream the checker would refuse, nor one of xc-colo's
 * records). Crashes, leaks and sanitizer reports are the other failures.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "../xen_feed.c"

/* Forwards in[0..n); returns the rc, *out the bytes written (malloc'ed). */
static int forward(const uint8_t *in, size_t n, uint8_t **out, size_t *outlen,
                   uint64_t *consumed)
{
    int ifd = memfd_with(in, n), ofd = memfd_with(NULL, 0);
    struct xen_feed f;
    int rc;

    xen_feed_init(&f, ifd, 0, ofd);
    rc = xen_feed_forward_libxl(&f);
    *consumed = f.in_off;
    *outlen = (size_t)f.out_bytes;
    *out = malloc(*outlen ? *outlen : 1);
    if (!*out || pread(ofd, *out, *outlen, 0) != (ssize_t)*outlen)
        abort();
    xen_feed_release(&f);
    close(ifd);
    close(ofd);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out, *again;
    size_t outlen, againlen;
    uint64_t consumed, consumed2;

    if (forward(data, size, &out, &outlen, &consumed) == 0) {
        if (outlen != consumed || memcmp(out, data, outlen))
            abort(); /* forwarded something other than what it read */
        if (forward(out, outlen, &again, &againlen, &consumed2) != 0 ||
            againlen != outlen)
            abort(); /* accepted once, refused the second time */
        free(again);
    } else if (outlen > consumed) {
        abort(); /* wrote more than it read */
    }
    free(out);
    return 0;
}
