/*
 * xl_format.c - the xl save-file header and the libxl v2 stream framing
 * around a libxc stream: encoders, decoders, the --xen-compat record rule,
 * and a reader that strips the framing for inspect and restore. The layout
 * is in xl_format.h and libxc-colo/docs/stream-format.md, section 8.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stream.h"
#include "xl_format.h"

#define CTX "xl"

/* Skipped record bodies are read through a buffer this big. */
#define SKIP_CHUNK 65536u

const uint8_t xl_magic[XL_MAGIC_LEN] = "Xen saved domain, xl format\n \0 \r";

static uint32_t ld_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static void st_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static size_t padded8(uint64_t len)
{
    return (size_t)((len + 7) & ~(uint64_t)7);
}

const char *xl_libxl_record_name(uint32_t type)
{
    switch (type) {
    case LIBXL_REC_END:
        return "END";
    case LIBXL_REC_LIBXC_CONTEXT:
        return "LIBXC_CONTEXT";
    case LIBXL_REC_EMULATOR_XENSTORE_DATA:
        return "EMULATOR_XENSTORE_DATA";
    case LIBXL_REC_EMULATOR_CONTEXT:
        return "EMULATOR_CONTEXT";
    case LIBXL_REC_CHECKPOINT_END:
        return "CHECKPOINT_END";
    case LIBXL_REC_CHECKPOINT_STATE:
        return "CHECKPOINT_STATE";
    default:
        return "UNKNOWN";
    }
}

/* ---- Encoders ------------------------------------------------------------ */

size_t xl_prologue_size(size_t json_len)
{
    /* xl always writes the 4-byte config length, even for no config. */
    size_t config = json_len ? json_len + 1 : 0;

    return XL_HEADER_SIZE + 4 + config + LIBXL_HEADER_SIZE + LIBXL_RHDR_SIZE;
}

void xl_encode_libxl_rhdr(uint8_t out[LIBXL_RHDR_SIZE], uint32_t type,
                          uint32_t length)
{
    st_le32(out, type);
    st_le32(out + 4, length);
}

size_t xl_encode_prologue(uint8_t *buf, size_t cap, const char *json)
{
    size_t json_len = json ? strlen(json) : 0;
    size_t need = xl_prologue_size(json_len);
    size_t config_len = json_len ? json_len + 1 : 0;
    uint32_t flags = XL_FLAG_STREAMV2;
    uint64_t ident = htobe64(LIBXL_IDENT);
    uint32_t version = htobe32(LIBXL_VERSION), options = htobe32(0);
    uint8_t *p = buf;

    if (config_len > XL_OPTDATA_MAX - 4) {
        errno = EINVAL;
        return 0;
    }
    if (cap < need) {
        errno = ENOSPC;
        return 0;
    }
    if (config_len)
        flags |= XL_FLAG_JSON;
    memcpy(p, xl_magic, XL_MAGIC_LEN);
    st_le32(p + 32, XL_BYTEORDER);
    st_le32(p + 36, flags);
    st_le32(p + 40, 0);
    st_le32(p + 44, (uint32_t)(4 + config_len));
    p += XL_HEADER_SIZE;
    st_le32(p, (uint32_t)config_len);
    p += 4;
    if (config_len) {
        memcpy(p, json, config_len); /* the NUL too: xl parses a C string */
        p += config_len;
    }
    memcpy(p, &ident, 8);
    memcpy(p + 8, &version, 4);
    memcpy(p + 12, &options, 4);
    p += LIBXL_HEADER_SIZE;
    xl_encode_libxl_rhdr(p, LIBXL_REC_LIBXC_CONTEXT, 0);
    p += LIBXL_RHDR_SIZE;
    return (size_t)(p - buf);
}

/* ---- Decoders ------------------------------------------------------------ */

/* A parser's message, kept in err for its caller to log. */
#define fail(err, errlen, ...)                                                 \
    lib_fail(NULL, NULL, (err), (errlen), XCC_EBADSTREAM, __VA_ARGS__)

int xl_parse_header(const uint8_t hdr[XL_HEADER_SIZE], struct xl_header *h,
                    char *err, size_t errlen)
{
    uint32_t order = ld_le32(hdr + 32);
    uint32_t mflags = ld_le32(hdr + 36);

    memset(h, 0, sizeof(*h));
    if (memcmp(hdr, xl_magic, XL_MAGIC_LEN))
        return fail(err, errlen, "xl header at offset 0: wrong magic (not "
                    "\"Xen saved domain, xl format\")");
    if (order != XL_BYTEORDER)
        return fail(err, errlen, "xl header at offset 32: byte-order marker "
                    "0x%08" PRIx32 " is not 0x%08x (an image from a %s host)",
                    order, XL_BYTEORDER,
                    be32toh(htole32(order)) == XL_BYTEORDER ? "big-endian"
                                                            : "unknown");
    if (mflags & ~XL_FLAGS_KNOWN)
        return fail(err, errlen, "xl header at offset 36: unknown mandatory "
                    "flags 0x%08" PRIx32 " (xl refuses them too)",
                    mflags & ~XL_FLAGS_KNOWN);
    if (!(mflags & XL_FLAG_STREAMV2))
        return fail(err, errlen, "xl header at offset 36: mandatory flags "
                    "0x%08" PRIx32 " lack STREAMv2 (a legacy pre-4.6 image, "
                    "which xc-colo does not read)", mflags);
    h->mandatory_flags = mflags;
    h->optional_flags = ld_le32(hdr + 40);
    h->optional_data_len = ld_le32(hdr + 44);
    if (h->optional_data_len > XL_OPTDATA_MAX)
        return fail(err, errlen, "xl header at offset 44: %" PRIu32 " bytes "
                    "of optional data, more than the %u this reader holds",
                    h->optional_data_len, XL_OPTDATA_MAX);
    return 0;
}

int xl_parse_optdata(const uint8_t *data, uint32_t len, struct xl_header *h,
                     char *err, size_t errlen)
{
    const uint64_t off = XL_HEADER_SIZE;
    uint32_t clen;

    h->config_len = 0;
    h->config = NULL;
    if (len == 0)
        return 0;
    if (len < 4)
        return fail(err, errlen, "xl optional data at offset %" PRIu64
                    ": %" PRIu32 " bytes, too short for the config length",
                    off, len);
    clen = ld_le32(data);
    if (clen > len - 4)
        return fail(err, errlen, "xl optional data at offset %" PRIu64
                    ": config of %" PRIu32 " bytes does not fit in the %"
                    PRIu32 " bytes after its length", off, clen, len - 4);
    if (clen && (h->mandatory_flags & XL_FLAG_JSON)) {
        const uint8_t *nul = memchr(data + 4, 0, clen);
        if (nul != data + 4 + clen - 1)
            return fail(err, errlen, "xl config at offset %" PRIu64 ": the "
                        "JSON config of %" PRIu32 " bytes %s", off + 4, clen,
                        nul ? "has a NUL before its end"
                            : "does not end in a NUL");
    }
    if (!clen)
        return 0;
    h->config = malloc((size_t)clen + 1);
    if (!h->config) {
        snprintf(err, errlen, "cannot allocate %" PRIu32 " bytes for the xl "
                 "config", clen);
        errno = ENOMEM;
        return -1;
    }
    memcpy(h->config, data + 4, clen);
    h->config[clen] = 0; /* a text (non-JSON) config need not end in NUL */
    h->config_len = clen;
    return 0;
}

int xl_parse_libxl_header(const uint8_t hdr[LIBXL_HEADER_SIZE],
                          uint64_t offset, uint32_t *options, char *err,
                          size_t errlen)
{
    uint64_t ident;
    uint32_t version, opts;

    memcpy(&ident, hdr, 8);
    memcpy(&version, hdr + 8, 4);
    memcpy(&opts, hdr + 12, 4);
    ident = be64toh(ident);
    version = be32toh(version);
    opts = be32toh(opts);
    if (ident != LIBXL_IDENT)
        return fail(err, errlen, "libxl header at offset %" PRIu64
                    ": ident 0x%016" PRIx64 " is not 0x%016llx (\"LibxlFmt\")",
                    offset, ident, LIBXL_IDENT);
    if (version != LIBXL_VERSION)
        return fail(err, errlen, "libxl header at offset %" PRIu64
                    ": version %" PRIu32 ", expected %u", offset + 8, version,
                    LIBXL_VERSION);
    if (opts & LIBXL_OPT_BIG_ENDIAN)
        return fail(err, errlen, "libxl header at offset %" PRIu64
                    ": big-endian streams are not supported (options 0x%08"
                    PRIx32 ")", offset + 12, opts);
    *options = opts;
    return 0;
}

void xl_header_release(struct xl_header *h)
{
    free(h->config);
    h->config = NULL;
    h->config_len = 0;
}

/* ---- --xen-compat rule --------------------------------------------------- */

int xl_compat_filter(uint32_t type, const char **why)
{
    if ((type & STREAM_REC_XCC_BLOCK_MASK) != STREAM_REC_XCC_BLOCK)
        return STREAM_FILTER_KEEP;
    if (type == STREAM_REC_ZERO_PAGES || type == STREAM_REC_XBZRLE_PAGES) {
        *why = "page contents in a record of xc-colo's, which a stock Xen "
               "reader cannot take (--xen-compat sends PAGE_DATA only)";
        return STREAM_FILTER_REFUSE;
    }
    return STREAM_FILTER_DROP;
}

/* ---- Writer -------------------------------------------------------------- */

int xl_write_prologue(struct stream_writer *w, const char *json)
{
    size_t need = xl_prologue_size(json ? strlen(json) : 0);
    uint8_t *buf = malloc(need);
    int rc;

    if (!buf)
        return -1;
    if (xl_encode_prologue(buf, need, json) != need) {
        free(buf);
        return -1;
    }
    rc = stream_write_raw(w, buf, need,
                          "the xl header and the libxl stream header");
    free(buf);
    return rc;
}

int xl_write_epilogue(struct stream_writer *w)
{
    uint8_t rhdr[LIBXL_RHDR_SIZE];

    xl_encode_libxl_rhdr(rhdr, LIBXL_REC_END, 0);
    return stream_write_raw(w, rhdr, sizeof(rhdr), "the libxl END record");
}

/* ---- Reader -------------------------------------------------------------- */

void xl_reader_init(struct xl_reader *x, int fd, xentoollog_logger *log)
{
    memset(x, 0, sizeof(*x));
    x->fd = fd;
    x->log = log;
}

void xl_reader_release(struct xl_reader *x)
{
    xl_header_release(&x->hdr);
}

/* Logs one error, keeps its text in x->err and sets errno. */
#define reader_fail(x, e, ...)                                                 \
    lib_fail((x)->log, CTX, (x)->err, sizeof((x)->err), (e), __VA_ARGS__)

/* The parsers' message, logged and kept. */
static int parse_failed(struct xl_reader *x, const char *msg)
{
    int e = errno;

    if (msg != x->err)
        snprintf(x->err, sizeof(x->err), "%s", msg);
    XCC_ERR(x->log, CTX, "%s", x->err);
    errno = e;
    return -1;
}

/* Reads exactly len bytes of `what` at x->offset and advances it. */
static int read_exact(struct xl_reader *x, uint8_t *buf, size_t len,
                      const char *what)
{
    ssize_t got = stream_read_full(x->fd, buf, len);

    if (got < 0)
        return reader_fail(x, errno, "reading %s at offset %" PRIu64 ": %s",
                           what, x->offset, strerror(errno));
    if ((size_t)got < len)
        return reader_fail(x, XCC_ETRUNCATED,
                           "%s at offset %" PRIu64 ": file ends after %zd of "
                           "its %zu bytes", what, x->offset, got, len);
    x->offset += len;
    return 0;
}

#define LREC_FMT "libxl " LIB_REC_FMT
#define LREC_ARGS(rec) (rec)->name, (rec)->type, (rec)->offset

/* Reads one libxl record header; its body is next. */
static int read_rhdr(struct xl_reader *x, struct xl_record *rec)
{
    uint8_t rhdr[LIBXL_RHDR_SIZE];
    ssize_t got;

    memset(rec, 0, sizeof(*rec));
    rec->offset = x->offset;
    got = stream_read_full(x->fd, rhdr, sizeof(rhdr));
    if (got < 0)
        return reader_fail(x, errno, "reading the libxl record header at "
                           "offset %" PRIu64 ": %s", x->offset,
                           strerror(errno));
    if (got == 0)
        return reader_fail(x, XCC_ETRUNCATED, "file ends at offset %" PRIu64
                           " without libxl's END record", x->offset);
    if ((size_t)got < sizeof(rhdr))
        return reader_fail(x, XCC_ETRUNCATED, "libxl record header at offset "
                           "%" PRIu64 ": file ends after %zd of its %u bytes",
                           x->offset, got, LIBXL_RHDR_SIZE);
    x->offset += sizeof(rhdr);
    rec->type = ld_le32(rhdr);
    rec->length = ld_le32(rhdr + 4);
    rec->name = xl_libxl_record_name(rec->type);
    return 0;
}

/* Reads (and drops) the body and padding of rec, checking the padding and,
 * for emulator records, reading the sub-header. */
static int skip_body(struct xl_reader *x, struct xl_record *rec)
{
    uint8_t buf[SKIP_CHUNK];
    uint64_t left = padded8(rec->length), pos = 0;

    while (left) {
        size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
        ssize_t got = stream_read_full(x->fd, buf, n);

        if (got < 0)
            return reader_fail(x, errno, LREC_FMT ": reading the body: %s",
                               LREC_ARGS(rec), strerror(errno));
        if ((size_t)got < n)
            return reader_fail(x, XCC_ETRUNCATED, LREC_FMT ": file ends after "
                               "%" PRIu64 " of the %zu bytes of body and "
                               "padding", LREC_ARGS(rec), pos + (uint64_t)got,
                               padded8(rec->length));
        if (pos == 0 && rec->has_emulator) {
            /* n >= 8: the length was checked to hold the sub-header. */
            rec->emulator_id = ld_le32(buf);
            rec->emulator_index = ld_le32(buf + 4);
        }
        for (size_t i = 0; i < n; i++)
            if (pos + i >= rec->length && buf[i])
                return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": padding "
                                   "byte %" PRIu64 " is 0x%02x, not zero",
                                   LREC_ARGS(rec), pos + i - rec->length,
                                   buf[i]);
        pos += n;
        left -= n;
    }
    x->offset += padded8(rec->length);
    return 0;
}

static int report(struct xl_reader *x, xl_record_fn *cb, void *opaque,
                  const struct xl_record *rec)
{
    if (cb && cb(opaque, x, rec)) {
        snprintf(x->err, sizeof(x->err), "stopped by the caller");
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int xl_read_prologue(struct xl_reader *x, uint8_t prefix[XL_MAGIC_LEN],
                     size_t *prefix_len, xl_record_fn *cb, void *opaque)
{
    uint8_t hdr[XL_HEADER_SIZE], lhdr[LIBXL_HEADER_SIZE], *opt = NULL;
    struct xl_record rec;
    ssize_t got;

    *prefix_len = 0;
    got = stream_read_full(x->fd, hdr, XL_MAGIC_LEN);
    if (got < 0)
        return reader_fail(x, errno, "reading the first bytes: %s",
                           strerror(errno));
    /* A short file that is the start of the magic is a truncated xl
     * header; anything else is for the libxc reader to judge. */
    if ((size_t)got < XL_MAGIC_LEN && got > 0 &&
        !memcmp(hdr, xl_magic, (size_t)got))
        return reader_fail(x, XCC_ETRUNCATED, "xl header at offset 0: file "
                           "ends after %zd of its %u bytes", got,
                           XL_HEADER_SIZE);
    if ((size_t)got < XL_MAGIC_LEN || memcmp(hdr, xl_magic, XL_MAGIC_LEN)) {
        memcpy(prefix, hdr, (size_t)got);
        *prefix_len = (size_t)got;
        return 0;
    }
    x->present = true;
    x->offset = XL_MAGIC_LEN;
    got = stream_read_full(x->fd, hdr + XL_MAGIC_LEN,
                           XL_HEADER_SIZE - XL_MAGIC_LEN);
    if (got < 0)
        return reader_fail(x, errno, "reading the xl header: %s",
                           strerror(errno));
    if ((size_t)got < XL_HEADER_SIZE - XL_MAGIC_LEN)
        return reader_fail(x, XCC_ETRUNCATED, "xl header at offset 0: file "
                           "ends after %zd of its %u bytes",
                           got + (ssize_t)XL_MAGIC_LEN, XL_HEADER_SIZE);
    x->offset = XL_HEADER_SIZE;
    if (xl_parse_header(hdr, &x->hdr, x->err, sizeof(x->err)))
        return parse_failed(x, x->err);
    if (x->hdr.optional_data_len) {
        opt = malloc(x->hdr.optional_data_len);
        if (!opt)
            return reader_fail(x, ENOMEM, "cannot allocate %" PRIu32
                               " bytes for the xl optional data",
                               x->hdr.optional_data_len);
        if (read_exact(x, opt, x->hdr.optional_data_len,
                       "xl optional data (the config)")) {
            free(opt);
            return -1;
        }
        if (xl_parse_optdata(opt, x->hdr.optional_data_len, &x->hdr, x->err,
                             sizeof(x->err))) {
            free(opt);
            return parse_failed(x, x->err);
        }
        free(opt);
    }
    if (read_exact(x, lhdr, sizeof(lhdr), "libxl stream header"))
        return -1;
    if (xl_parse_libxl_header(lhdr, x->offset - sizeof(lhdr),
                              &x->libxl_options, x->err, sizeof(x->err)))
        return parse_failed(x, x->err);
    if (report(x, cb, opaque, NULL))
        return -1;
    if (read_rhdr(x, &rec))
        return -1;
    if (rec.type != LIBXL_REC_LIBXC_CONTEXT)
        return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": the first libxl "
                           "record must be LIBXC_CONTEXT (libxl writes the "
                           "libxc stream first)", LREC_ARGS(&rec));
    if (rec.length)
        return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": body length %"
                           PRIu32 ", expected 0", LREC_ARGS(&rec),
                           rec.length);
    return report(x, cb, opaque, &rec);
}

int xl_read_epilogue(struct xl_reader *x, uint64_t offset, xl_record_fn *cb,
                     void *opaque)
{
    struct xl_record rec;
    uint8_t byte;
    ssize_t got;

    x->offset = offset;
    x->libxc_done = true;
    for (;;) {
        if (read_rhdr(x, &rec))
            return -1;
        switch (rec.type) {
        case LIBXL_REC_END:
            if (rec.length)
                return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": body "
                                   "length %" PRIu32 ", expected 0",
                                   LREC_ARGS(&rec), rec.length);
            break;
        case LIBXL_REC_EMULATOR_XENSTORE_DATA:
        case LIBXL_REC_EMULATOR_CONTEXT:
            if (rec.length < LIBXL_EMULATOR_HDR_SIZE)
                return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": body of %"
                                   PRIu32 " bytes, too short for the %u-byte "
                                   "emulator sub-header", LREC_ARGS(&rec),
                                   rec.length, LIBXL_EMULATOR_HDR_SIZE);
            rec.has_emulator = true;
            break;
        case LIBXL_REC_LIBXC_CONTEXT:
            return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": a second "
                               "libxc stream (only checkpointed streams have "
                               "one, and those are not read here)",
                               LREC_ARGS(&rec));
        case LIBXL_REC_CHECKPOINT_END:
        case LIBXL_REC_CHECKPOINT_STATE:
            return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": a checkpointed "
                               "(Remus/COLO) libxl stream, which xc-colo does "
                               "not read", LREC_ARGS(&rec));
        default:
            if (!(rec.type & LIBXL_REC_OPTIONAL))
                return reader_fail(x, XCC_EBADSTREAM, LREC_FMT ": unknown "
                                   "mandatory record", LREC_ARGS(&rec));
            break;
        }
        if (skip_body(x, &rec) || report(x, cb, opaque, &rec))
            return -1;
        if (rec.type == LIBXL_REC_END)
            break;
    }
    got = stream_read_full(x->fd, &byte, 1);
    if (got < 0)
        return reader_fail(x, errno, "reading after libxl's END at offset %"
                           PRIu64 ": %s", x->offset, strerror(errno));
    if (got > 0)
        return reader_fail(x, XCC_EBADSTREAM, "data after libxl's END "
                           "record, at offset %" PRIu64, x->offset);
    return 0;
}
