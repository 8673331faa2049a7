/*
 * xen_feed.c - an independent checker (and forwarder) of the libxl v2
 * stream libxl reads when xc-colo restores into a new Xen domain (layout
 * in xen_feed.h). Written apart from the library's reader, so that tests
 * and fuzz targets hold the translator's output against a second reading
 * of the format; included by them, not built into xc-colo.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xen_feed.h"

#define LIBXL_IDENT 0x4c6962786c466d74ull /* "LibxlFmt" */
#define LIBXL_VERSION_2 2u
#define LIBXL_OPT_BIG_ENDIAN 0x1u
#define LIBXC_MARKER 0xffffffffffffffffull
#define LIBXC_IDENT 0x58454e46u /* "XENF" */
#define LIBXC_OPT_BIG_ENDIAN 0x1u
#define LIBXC_CHECKPOINT 0xeu  /* only in a checkpointed stream */
#define LIBXC_CHECKPOINT_DIRTY_PFN_LIST 0xfu
#define REC_HDR 8u
#define REC_ALIGN 8u
/* PAGE_DATA's pfn words: bits 63:60 the type, 59:52 reserved, 51:0 pfn. */
#define PFN_TYPE_SHIFT 60
#define PFN_RESERVED_MASK 0x0ff0000000000000ull
/* Types (XEN_DOMCTL_PFINFO_* >> 28): 0 NOTAB, 1-4 L1-L4, 9-C pinned
 * L1-L4 carry a page; D BROKEN, E XALLOC, F XTAB carry none; 5-8 are
 * invalid, as libxenguest says. */
#define TYPE_BROKEN 0xdu

static int fail(struct xen_feed *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(struct xen_feed *f, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(f->err, sizeof(f->err), fmt, ap);
    va_end(ap);
    return -1;
}

void xen_feed_init(struct xen_feed *f, int in_fd, uint64_t in_off, int out_fd)
{
    memset(f, 0, sizeof(*f));
    f->in_fd = in_fd;
    f->in_off = in_off;
    f->out_fd = out_fd;
}

void xen_feed_release(struct xen_feed *f)
{
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
}

/* Reads n bytes; `what` names them if the source ends first. */
static int read_in(struct xen_feed *f, void *p, size_t n, const char *what)
{
    uint64_t start = f->in_off;
    size_t got = 0;

    while (got < n) {
        ssize_t r = read(f->in_fd, (char *)p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return fail(f, "cannot read %s at offset %llu: %s", what,
                        (unsigned long long)start, strerror(errno));
        if (r == 0)
            return fail(f, "truncated stream: %s at offset %llu needs %zu "
                        "bytes, the source ended after %zu", what,
                        (unsigned long long)start, n, got);
        got += (size_t)r;
        f->in_off += (uint64_t)r;
    }
    return 0;
}

int xen_feed_emit_raw(struct xen_feed *f, const void *p, size_t n)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = write(f->out_fd, (const char *)p + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            f->reader_gone = errno == EPIPE;
            return fail(f, "cannot write to libxl's stream after %llu bytes: "
                        "%s", (unsigned long long)(f->out_bytes + done),
                        f->reader_gone ? "libxl stopped reading"
                                       : strerror(errno));
        }
        done += (size_t)w;
    }
    f->out_bytes += n;
    return 0;
}

int xen_feed_emit_libxl_header(struct xen_feed *f)
{
    uint8_t h[XEN_FEED_LIBXL_HEADER];
    uint64_t ident = htobe64(LIBXL_IDENT);
    uint32_t version = htobe32(LIBXL_VERSION_2), options = 0;

    memcpy(h, &ident, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &options, 4);
    return xen_feed_emit_raw(f, h, sizeof(h));
}

static uint32_t padded(uint32_t length)
{
    return (length + REC_ALIGN - 1) & ~(REC_ALIGN - 1);
}

int xen_feed_emit_record(struct xen_feed *f, uint32_t type, const void *body,
                         uint32_t length)
{
    static const uint8_t zeros[REC_ALIGN];
    uint32_t hdr[2] = {htole32(type), htole32(length)};

    if ((type & XEN_REC_XCCOLO_MASK) == XEN_REC_XCCOLO)
        return fail(f, "record %#x is xc-colo's own: it must not reach libxl",
                    type);
    if (xen_feed_emit_raw(f, hdr, sizeof(hdr)) < 0 ||
        (length && xen_feed_emit_raw(f, body, length) < 0))
        return -1;
    return xen_feed_emit_raw(f, zeros, padded(length) - length);
}

int xen_feed_check_page_data(const uint8_t *body, uint32_t length,
                             uint32_t page_size, const char **why)
{
    uint32_t count;
    uint64_t want;

    if (length < 8) {
        *why = "shorter than its 8-byte count header";
        return -1;
    }
    memcpy(&count, body, 4);
    count = le32toh(count);
    if (count == 0 || count > XEN_FEED_BATCH) {
        *why = "count is not 1..1024 (libxenguest's batch limit)";
        return -1;
    }
    want = 8 + 8ull * count;
    if (length < want) {
        *why = "shorter than its pfn list";
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        uint64_t w;
        unsigned type;

        memcpy(&w, body + 8 + 8ull * i, 8);
        w = le64toh(w);
        type = (unsigned)(w >> PFN_TYPE_SHIFT);
        if (w & PFN_RESERVED_MASK) {
            *why = "a pfn word has reserved bits 59:52 set";
            return -1;
        }
        if (type >= 5 && type <= 8) {
            *why = "a pfn has an invalid page type (5..8)";
            return -1;
        }
        if (type < TYPE_BROKEN)
            want += page_size;
    }
    if (length != want) {
        *why = "its length disagrees with the pages its pfn types carry";
        return -1;
    }
    return 0;
}

/* Reads a record header and body (padding checked and dropped) into f->buf. */
static int read_record(struct xen_feed *f, const char *layer, uint32_t *type,
                       uint32_t *length, uint64_t *at)
{
    uint32_t hdr[2];
    uint8_t pad[REC_ALIGN];
    uint32_t plen;

    *at = f->in_off;
    if (read_in(f, hdr, sizeof(hdr), strcmp(layer, "libxl")
                                         ? "a libxc record header"
                                         : "a libxl record header") < 0)
        return -1;
    *type = le32toh(hdr[0]);
    *length = le32toh(hdr[1]);
    if (*length > XEN_FEED_RECORD_MAX)
        return fail(f, "%s record %#x at offset %llu: length %u is over the "
                    "%u-byte limit", layer, *type, (unsigned long long)*at,
                    *length, XEN_FEED_RECORD_MAX);
    if (*length > f->cap) {
        uint8_t *nb = realloc(f->buf, *length);
        if (!nb)
            return fail(f, "%s record %#x at offset %llu: cannot hold %u "
                        "bytes: %s", layer, *type, (unsigned long long)*at,
                        *length, strerror(errno));
        f->buf = nb;
        f->cap = *length;
    }
    if (*length && read_in(f, f->buf, *length, "a record body") < 0)
        return -1;
    plen = padded(*length) - *length;
    if (plen && read_in(f, pad, plen, "a record's padding") < 0)
        return -1;
    for (uint32_t i = 0; i < plen; i++)
        if (pad[i])
            return fail(f, "%s record %#x at offset %llu: non-zero padding",
                        layer, *type, (unsigned long long)*at);
    return 0;
}

/* The libxc stream inside LIBXC_CONTEXT, up to and including its END. */
static int forward_libxc(struct xen_feed *f)
{
    uint8_t h[XEN_FEED_LIBXC_HEADERS];
    uint64_t at = f->in_off, marker;
    uint32_t ident, version, rtype, length;
    uint16_t options, page_shift;
    uint32_t page_size;

    if (read_in(f, h, sizeof(h), "the libxc image and domain headers") < 0)
        return -1;
    memcpy(&marker, h, 8);
    memcpy(&ident, h + 8, 4);
    memcpy(&version, h + 12, 4);
    memcpy(&options, h + 16, 2);
    memcpy(&page_shift, h + 24 + 4, 2);
    marker = be64toh(marker);
    ident = be32toh(ident);
    version = be32toh(version);
    options = be16toh(options);
    page_shift = le16toh(page_shift);
    if (marker != LIBXC_MARKER || ident != LIBXC_IDENT)
        return fail(f, "libxc image header at offset %llu: no marker and "
                    "\"XENF\" ident", (unsigned long long)at);
    if (version != 2 && version != 3)
        return fail(f, "libxc image header at offset %llu: version %u (Xen "
                    "4.17 reads 2 and 3)", (unsigned long long)at, version);
    if (options & LIBXC_OPT_BIG_ENDIAN)
        return fail(f, "libxc image header at offset %llu: a big-endian "
                    "stream", (unsigned long long)at);
    if (page_shift != 12)
        return fail(f, "libxc domain header at offset %llu: page shift %u "
                    "(x86 has 12)", (unsigned long long)at + 24, page_shift);
    page_size = 1u << page_shift;
    if (xen_feed_emit_raw(f, h, sizeof(h)) < 0)
        return -1;

    for (;;) {
        const char *why;

        if (read_record(f, "libxc", &rtype, &length, &at) < 0)
            return -1;
        if ((rtype & XEN_REC_XCCOLO_MASK) == XEN_REC_XCCOLO)
            return fail(f, "libxc record %#x at offset %llu is xc-colo's own: "
                        "not a stock stream (an xc-colo stream needs the "
                        "translator)", rtype, (unsigned long long)at);
        if (rtype == LIBXC_CHECKPOINT || rtype == LIBXC_CHECKPOINT_DIRTY_PFN_LIST)
            return fail(f, "libxc record %#x at offset %llu: a checkpoint "
                        "record in a plain stream", rtype,
                        (unsigned long long)at);
        if (!(rtype & XEN_REC_OPTIONAL) && rtype > XEN_LIBXC_LAST_KNOWN)
            return fail(f, "libxc record %#x at offset %llu: unknown to Xen "
                        "4.17 and not optional", rtype, (unsigned long long)at);
        if (rtype == XEN_LIBXC_PAGE_DATA) {
            if (xen_feed_check_page_data(f->buf, length, page_size, &why) < 0)
                return fail(f, "libxc PAGE_DATA at offset %llu: %s",
                            (unsigned long long)at, why);
            uint32_t count;
            memcpy(&count, f->buf, 4);
            f->pages += le32toh(count);
        }
        if (rtype == XEN_LIBXC_END && length)
            return fail(f, "libxc END at offset %llu has a %u-byte body",
                        (unsigned long long)at, length);
        if (xen_feed_emit_record(f, rtype, f->buf, length) < 0)
            return -1;
        f->libxc_records++;
        if (rtype == XEN_LIBXC_END)
            return 0;
    }
}

int xen_feed_forward_libxl(struct xen_feed *f)
{
    uint8_t h[XEN_FEED_LIBXL_HEADER];
    uint64_t at = f->in_off, ident;
    uint32_t version, options, type, length;
    bool had_libxc = false;

    if (read_in(f, h, sizeof(h), "the libxl stream header") < 0)
        return -1;
    memcpy(&ident, h, 8);
    memcpy(&version, h + 8, 4);
    memcpy(&options, h + 12, 4);
    if (be64toh(ident) != LIBXL_IDENT)
        return fail(f, "libxl stream header at offset %llu: no \"LibxlFmt\" "
                    "ident", (unsigned long long)at);
    if (be32toh(version) != LIBXL_VERSION_2)
        return fail(f, "libxl stream header at offset %llu: version %u (only "
                    "2 is read)", (unsigned long long)at, be32toh(version));
    if (be32toh(options) & LIBXL_OPT_BIG_ENDIAN)
        return fail(f, "libxl stream header at offset %llu: a big-endian "
                    "stream", (unsigned long long)at);
    if (xen_feed_emit_raw(f, h, sizeof(h)) < 0)
        return -1;

    for (;;) {
        if (read_record(f, "libxl", &type, &length, &at) < 0)
            return -1;
        switch (type) {
        case XEN_LIBXL_END:
        case XEN_LIBXL_LIBXC_CONTEXT:
            if (length)
                return fail(f, "libxl %s record at offset %llu has a %u-byte "
                            "body", type ? "LIBXC_CONTEXT" : "END",
                            (unsigned long long)at, length);
            if (type == XEN_LIBXL_END && !had_libxc)
                return fail(f, "libxl END at offset %llu before any "
                            "LIBXC_CONTEXT: no memory in the stream",
                            (unsigned long long)at);
            if (type == XEN_LIBXL_LIBXC_CONTEXT && had_libxc)
                return fail(f, "a second libxl LIBXC_CONTEXT at offset %llu "
                            "in a plain stream", (unsigned long long)at);
            break;
        case XEN_LIBXL_EMULATOR_XENSTORE_DATA:
        case XEN_LIBXL_EMULATOR_CONTEXT:
            if (length < 8)
                return fail(f, "libxl emulator record %#x at offset %llu: "
                            "shorter than its 8-byte header", type,
                            (unsigned long long)at);
            break;
        case XEN_LIBXL_CHECKPOINT_END:
        case XEN_LIBXL_CHECKPOINT_STATE:
            return fail(f, "libxl record %#x at offset %llu: a checkpoint "
                        "record in a plain stream", type,
                        (unsigned long long)at);
        default:
            if (!(type & XEN_REC_OPTIONAL))
                return fail(f, "libxl record %#x at offset %llu: unknown and "
                            "not optional", type, (unsigned long long)at);
        }
        if (xen_feed_emit_record(f, type, f->buf, length) < 0)
            return -1;
        f->libxl_records++;
        if (type == XEN_LIBXL_END)
            return 0;
        if (type == XEN_LIBXL_LIBXC_CONTEXT) {
            had_libxc = true;
            if (forward_libxc(f) < 0)
                return -1;
        }
    }
}
