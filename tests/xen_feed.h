/*
 * xen_feed.h - the stream xc-colo hands to libxl when it restores into a
 * new Xen domain: a stock libxl v2 stream (Xen 4.17, libxl_sr_stream_format.h
 * and docs/specs/libxc-migration-stream.pandoc), written into a pipe whose
 * other end libxl_domain_create_restore reads.
 *
 *   libxl header   16 bytes, big-endian: "LibxlFmt", u32 version 2,
 *                  u32 options (bit 0 big-endian, bit 1 legacy)
 *   libxl records  u32 type, u32 length (host order), body, padding to 8
 *     LIBXC_CONTEXT (1, empty): the libxc stream follows inline:
 *       image header  24 bytes, big-endian: u64 marker ~0, u32 "XENF",
 *                     u32 version (2 or 3), u16 options, 6 reserved bytes
 *       domain header 16 bytes: u32 type, u16 page_shift, u16 reserved,
 *                     u32 xen_major, u32 xen_minor
 *       records       as libxl's, up to END (type 0)
 *     END (0): the last record
 *
 * Two producers, one writer (xen_feed_emit_*):
 *  - a stock image (`xl save`, or `xc-colo save --xen-compat`): the
 *    stream after the xl header is checked record by record and forwarded
 *    unchanged (xen_feed_forward_libxl);
 *  - an xc-colo stream (not yet: issue 15's translator): the library's
 *    restore loop decodes each record and the translator emits the libxl
 *    header, LIBXC_CONTEXT, the libxc records (PAGE_DATA batches of at most
 *    XEN_FEED_BATCH pfns, ZERO_PAGES and XBZRLE_PAGES decoded against its
 *    per-pfn copy, xc-colo's own records dropped), the libxc END and the
 *    libxl END, through the same emitters. Nothing of ours reaches libxl:
 *    xen_feed_emit_record refuses 0x5843xxxx.
 *
 * Every error names the record, its offset in the source and the fault,
 * in f->err. No libxl here: this file is tested without Xen.
 */
#ifndef XCC_XEN_FEED_H
#define XCC_XEN_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libxc's MAX_BATCH_SIZE: libxenguest refuses a larger PAGE_DATA. */
#define XEN_FEED_BATCH 1024u
/* A record body held in memory: a full PAGE_DATA batch is 4 MiB + 12 KiB;
 * X86_PV_P2M_FRAMES of a 1 TiB guest is 4 MiB. Twice that bounds what a
 * hostile length can make the receiver allocate. */
#define XEN_FEED_RECORD_MAX (16u << 20)

#define XEN_FEED_LIBXL_HEADER 16u
#define XEN_FEED_LIBXC_HEADERS 40u /* image header and domain header */

/* libxl records (libxl_sr_stream_format.h). */
#define XEN_LIBXL_END 0u
#define XEN_LIBXL_LIBXC_CONTEXT 1u
#define XEN_LIBXL_EMULATOR_XENSTORE_DATA 2u
#define XEN_LIBXL_EMULATOR_CONTEXT 3u
#define XEN_LIBXL_CHECKPOINT_END 4u
#define XEN_LIBXL_CHECKPOINT_STATE 5u

/* libxc records this file looks into. */
#define XEN_LIBXC_END 0u
#define XEN_LIBXC_PAGE_DATA 1u
#define XEN_LIBXC_LAST_KNOWN 0x12u /* X86_MSR_POLICY, Xen 4.17 */
#define XEN_REC_OPTIONAL 0x80000000u
#define XEN_REC_XCCOLO_MASK 0x7fff0000u
#define XEN_REC_XCCOLO 0x58430000u /* "XC": xc-colo's own block */

struct xen_feed {
    int in_fd;               /* the source, after the xl header */
    int out_fd;              /* the pipe libxl reads */
    uint64_t in_off;         /* source offset of the next byte */
    uint64_t out_bytes;      /* bytes written to out_fd */
    uint64_t libxl_records;  /* END included */
    uint64_t libxc_records;  /* END included */
    uint64_t pages;          /* PAGE_DATA entries */
    bool reader_gone;        /* out_fd's reader stopped reading (EPIPE) */
    uint8_t *buf;            /* one record body */
    size_t cap;
    char err[320];
};

/* in_off: the source offset in_fd is at (the xl header's size). */
void xen_feed_init(struct xen_feed *f, int in_fd, uint64_t in_off,
                   int out_fd);
void xen_feed_release(struct xen_feed *f);

/*
 * Reads a stock libxl v2 stream from in_fd (header, records, the libxc
 * stream inside LIBXC_CONTEXT, up to the libxl END) and writes it to
 * out_fd unchanged, checking each part first: libxl and libxc headers, each
 * record's length and padding, PAGE_DATA's count and size, no record of
 * xc-colo's, no checkpoint record (a plain stream). Reads nothing past
 * END. Returns 0, or -1 with f->err set (f->reader_gone: the writing
 * failed because libxl stopped reading, which is libxl's error to report).
 */
int xen_feed_forward_libxl(struct xen_feed *f);

/* ---- The writer both producers use ------------------------------------- */

/* The libxl v2 header (version 2, little-endian options). 0 or -1/err. */
int xen_feed_emit_libxl_header(struct xen_feed *f);

/*
 * One record (header, body, zero padding to 8 bytes) of either layer.
 * Refuses xc-colo's own types, so none can leak into libxl. 0 or -1/err.
 */
int xen_feed_emit_record(struct xen_feed *f, uint32_t type, const void *body,
                         uint32_t length);

/* Raw bytes (the libxc image and domain headers). 0 or -1/err. */
int xen_feed_emit_raw(struct xen_feed *f, const void *p, size_t n);

/*
 * Checks a PAGE_DATA body (libxc layout: u32 count, u32 reserved, count
 * u64 pfn|type words, then a page for each entry whose type carries data).
 * page_size is 1 << the domain header's page_shift. 0, or -1 with why set
 * to a static string.
 */
int xen_feed_check_page_data(const uint8_t *body, uint32_t length,
                             uint32_t page_size, const char **why);

#endif /* XCC_XEN_FEED_H */
