/*
 * stream.h - the migration stream: record framing, writer and reader.
 *
 * The framing is Xen's libxc migration stream, spec revision 3 (Xen 4.17);
 * the project's own records sit in one block of types from 0x58430001.
 * libxc-colo/docs/stream-format.md gives every byte of every record.
 *
 * stream.c knows nothing of domains: it frames, writes, reads and checks
 * records. Every count, length, pfn and padding byte read from a stream is
 * checked before anything uses it; a bad stream gets ONE logged error naming
 * the record type (name and hex), its offset in the stream and what was
 * wrong, and the call returns -1 with errno XCC_EBADSTREAM (malformed) or
 * XCC_ETRUNCATED (EOF mid-record, or EOF before END).
 *
 * Internal API (not exported; names start stream_).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_STREAM_H
#define XCC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "pfn_type.h"
#include "private.h"

/* ---- Image and domain headers -------------------------------------------- */

#define STREAM_IHDR_MARKER 0xFFFFFFFFFFFFFFFFull
#define STREAM_IHDR_ID 0x58454E46u /* "XENF" */
#define STREAM_IHDR_VERSION 3u     /* spec revision written */
#define STREAM_IHDR_VERSION_MIN 2u /* Xen 4.17 still restores revision 2 */
#define STREAM_IHDR_OPT_BIG_ENDIAN 0x0001u
#define STREAM_IHDR_SIZE 24u
#define STREAM_DHDR_SIZE 16u
#define STREAM_HEADERS_SIZE (STREAM_IHDR_SIZE + STREAM_DHDR_SIZE)

/* Domain-header types: XCC_DHDR_TYPE_X86_PV, _X86_HVM, _SIM (pfn_type.h). */

/* Page shifts a reader accepts: 4 KiB .. XCC_MAX_PAGE_SIZE (the codec's). */
#define STREAM_PAGE_SHIFT_MIN 12u
#define STREAM_PAGE_SHIFT_MAX 16u

/* ---- Records ------------------------------------------------------------- */

#define STREAM_RHDR_SIZE 8u
#define STREAM_REC_ALIGN 8u
/* Xen's REC_LENGTH_MAX: no record body may be longer (bounds reader memory). */
#define STREAM_REC_LENGTH_MAX (128u << 20)
/* Bit 31 of a type: the record may be skipped by a reader that lacks it. */
#define STREAM_REC_OPTIONAL 0x80000000u

/* Xen's records (xg_sr_stream_format.h numbering). */
#define STREAM_REC_END 0x00000000u
#define STREAM_REC_PAGE_DATA 0x00000001u
#define STREAM_REC_X86_PV_INFO 0x00000002u
#define STREAM_REC_X86_PV_P2M_FRAMES 0x00000003u
#define STREAM_REC_X86_PV_VCPU_BASIC 0x00000004u
#define STREAM_REC_X86_PV_VCPU_EXTENDED 0x00000005u
#define STREAM_REC_X86_PV_VCPU_XSAVE 0x00000006u
#define STREAM_REC_SHARED_INFO 0x00000007u
#define STREAM_REC_X86_TSC_INFO 0x00000008u
#define STREAM_REC_HVM_CONTEXT 0x00000009u
#define STREAM_REC_HVM_PARAMS 0x0000000Au
#define STREAM_REC_TOOLSTACK 0x0000000Bu
#define STREAM_REC_X86_PV_VCPU_MSRS 0x0000000Cu
#define STREAM_REC_VERIFY 0x0000000Du
#define STREAM_REC_CHECKPOINT 0x0000000Eu
#define STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST 0x0000000Fu
#define STREAM_REC_STATIC_DATA_END 0x00000010u
#define STREAM_REC_X86_CPUID_POLICY 0x00000011u
#define STREAM_REC_X86_MSR_POLICY 0x00000012u

/*
 * The project's block: mandatory types 0x58430001.. ("XC" in the top half,
 * far from Xen's sequence). 0x58430000 itself is XCC_DHDR_TYPE_SIM.
 * An unknown mandatory type inside the block is rejected by every reader.
 */
#define STREAM_REC_XCC_BLOCK 0x58430000u
#define STREAM_REC_XCC_BLOCK_MASK 0x7FFF0000u
#define STREAM_REC_GUEST_INFO 0x58430001u
#define STREAM_REC_ZERO_PAGES 0x58430002u
#define STREAM_REC_XBZRLE_PAGES 0x58430003u
#define STREAM_REC_DIGEST 0x58430004u
#define STREAM_REC_STATS (STREAM_REC_OPTIONAL | 0x58430005u) /* optional */
#define STREAM_REC_COMPRESSED_PAGES 0x58430007u /* zstd pages: compress.h */
/* The sender's XBZRLE cache: pfns whose copy the receiver must keep. */
#define STREAM_REC_CACHE_BASES 0x58430008u
/* The domain's libxl configuration (JSON); xen_records.h. */
#define STREAM_REC_XL_CONFIG 0x58430006u

/* PAGE_DATA pfn entry: type in bits 60..63, pfn in bits 0..51, rest zero. */
#define STREAM_PFN_MASK 0x000FFFFFFFFFFFFFull
#define STREAM_PFN_TYPE_SHIFT 60
#define STREAM_PFN_LIMIT (1ull << 52) /* pfns are below this */
/* Xen's LPINTAB flag: type 0x9..0xC = pinned L1..L4 page tables (data). */
#define STREAM_PFN_TYPE_PINNED 0x8u

/* True for the 4-bit PAGE_DATA types a stream may carry (Xen's table). */
bool stream_pfn_type_valid(unsigned type);
/* True when a PAGE_DATA entry of this type is followed by page data. */
bool stream_pfn_type_has_data(unsigned type);

/* True for the types a sim guest can have: NORMAL and XTAB (a hole). */
bool stream_pfn_type_sim_ok(unsigned type);
/* "normal", "a page table", "BROKEN", ...: for error messages. */
const char *stream_pfn_type_name(unsigned type);

/* "PAGE_DATA", "XBZRLE_PAGES", ...; "UNKNOWN" for types nobody defined. */
const char *stream_record_name(uint32_t type);

/* True for Xen's types and the project's: the reader knows their name. */
bool stream_record_known(uint32_t type);

/* ---- Project record layouts (all little-endian) -------------------------- */

/* GUEST_INFO: u64 nr_pfns, u32 page_size, u32 flags. */
#define STREAM_GUEST_INFO_SIZE 16u
/*
 * GUEST_INFO flag: xc-colo stream format 2. The pfn entries of ZERO_PAGES
 * and XBZRLE_PAGES use PAGE_DATA's encoding (bits 60..63 type, 52..59
 * zero, 0..51 pfn), types with data only. Without it (format 1, xc-colo
 * before page types) their entries are plain pfns, which read as type 0:
 * readers take both; writers always set it.
 */
#define STREAM_GUEST_INFO_TYPED_PFNS XCC_GUEST_INFO_TYPED_PFNS
/*
 * GUEST_INFO flag: xc-colo stream format 3. The sender announces its XBZRLE
 * cache in CACHE_BASES records, and an XBZRLE_PAGES entry needs a base (see
 * "Cache bases" below): a receiver may drop the copy of every other page.
 * Writers set it with XBZRLE on; a stream without it keeps every page.
 */
#define STREAM_GUEST_INFO_CACHE_BASES XCC_GUEST_INFO_CACHE_BASES
#define STREAM_GUEST_INFO_KNOWN_FLAGS                                          \
    (STREAM_GUEST_INFO_TYPED_PFNS | STREAM_GUEST_INFO_CACHE_BASES)

/* CACHE_BASES: u32 n_dropped, u32 n_kept, u64 reserved, then n_dropped
 * pfns, then n_kept pfns (plain u64 pfns). */
#define STREAM_CACHE_BASES_FIXED_SIZE 16u

/* DIGEST: u32 chunk_bytes, u32 count, u32 flags, u32 reserved, u8 whole[16],
 * then count x u8 chunk[16]. Digests are XXH3-128 in canonical (big-endian)
 * form; chunk i covers pfns [i * chunk_pfns, (i + 1) * chunk_pfns). */
#define STREAM_DIGEST_LEN 16u
#define STREAM_DIGEST_FIXED_SIZE 32u

/* ---- Writer -------------------------------------------------------------- */

struct stream_writer;

/* A writer over fd (file, pipe or socket; blocking). NULL + errno (ENOMEM). */
struct stream_writer *stream_writer_new(int fd, xentoollog_logger *log);
void stream_writer_free(struct stream_writer *w); /* never closes fd */

/*
 * A writer into memory (checkpoint's epoch buffer: the records are built
 * while the guest is paused and sent after it runs again). The buffer is
 * an anonymous mapping: reserve bytes are allocated and faulted in now, and
 * it grows as needed by mremap (no copy). NULL + errno (ENOMEM).
 */
struct stream_writer *stream_writer_new_mem(size_t reserve,
                                            xentoollog_logger *log);
/* The bytes a memory writer holds (since the last reset) and their count. */
const uint8_t *stream_writer_mem(const struct stream_writer *w, size_t *len);
/* Empties a memory writer's buffer (the byte count goes on) and gives back
 * the memory beyond keep bytes; the rest stays mapped for the next use. */
void stream_writer_mem_reset(struct stream_writer *w, size_t keep);

/*
 * Holds an fd writer to bytes_per_sec on average (a token bucket; 0: no
 * limit). A memory writer is never limited: its bytes are limited when
 * they reach the fd. stream_writer_throttled_ns() is the time spent
 * waiting for the limit so far.
 */
void stream_writer_set_rate(struct stream_writer *w, uint64_t bytes_per_sec);
uint64_t stream_writer_throttled_ns(const struct stream_writer *w);

/*
 * A record filter for a writer: called with each record's type before it
 * is written; returns STREAM_FILTER_KEEP, STREAM_FILTER_DROP (nothing is
 * written, the write succeeds) or STREAM_FILTER_REFUSE (the write fails
 * with EINVAL, logged with *why). --xen-compat uses one (xl_format.h).
 */
enum { STREAM_FILTER_KEEP = 0, STREAM_FILTER_DROP, STREAM_FILTER_REFUSE };
typedef int stream_record_filter(uint32_t type, const char **why);
void stream_writer_set_filter(struct stream_writer *w,
                              stream_record_filter *filter);

/* len raw bytes (no record framing: the xl and libxl wrappers), counted in
 * stream_writer_bytes(); what names them in the error. 0 or -1/errno. */
int stream_write_raw(struct stream_writer *w, const void *buf, size_t len,
                     const char *what);

/* Total bytes written so far, headers and padding included. */
uint64_t stream_writer_bytes(const struct stream_writer *w);

/*
 * Every write below loops over writev, surviving EINTR and short writes, and
 * returns 0, or -1 with errno (the write's errno, EINVAL for bad arguments,
 * E2BIG for a record body over STREAM_REC_LENGTH_MAX) after logging once.
 * After a failed write the stream is unusable (a record may be half out).
 */

/* Image header (big-endian, version 3, little-endian option) + domain
 * header (dhdr_type: XCC_DHDR_TYPE_*; page_shift 12..16). */
int stream_write_headers(struct stream_writer *w, uint32_t dhdr_type,
                         unsigned page_shift, uint32_t xen_major,
                         uint32_t xen_minor);

/* One record whose body is the concatenation of iov[0..iovcnt) (any iovcnt:
 * sliced by IOV_MAX); the header and zero padding are added. */
int stream_write_record(struct stream_writer *w, uint32_t type,
                        const struct iovec *iov, int iovcnt);

/*
 * PAGE_DATA for n pages: pfns[i] (< 2^52) of type types[i] (XCC_PFN_* /
 * 4-bit Xen type; types NULL = all XCC_PFN_NORMAL); pages[i] points at the
 * page_size bytes of page i when its type carries data (ignored otherwise).
 * Zero-copy: page pointers go straight into the iovec. Splits into several
 * records when n pages would pass the length cap. n == 0 writes nothing.
 */
int stream_write_page_data(struct stream_writer *w, const uint64_t *pfns,
                           const uint8_t *types, size_t n,
                           const uint8_t *const *pages, size_t page_size);

/* ZERO_PAGES for pfns[0..n) (split at the cap; n == 0 writes nothing). */
int stream_write_zero_pages(struct stream_writer *w, const uint64_t *pfns,
                            size_t n);
/* The same with each pfn's type (a type with data; types NULL: all
 * XCC_PFN_NORMAL), for a format-2 stream (STREAM_GUEST_INFO_TYPED_PFNS). */
int stream_write_zero_pages_typed(struct stream_writer *w,
                                  const uint64_t *pfns, const uint8_t *types,
                                  size_t n);

/*
 * XBZRLE_PAGES: page i is pfns[i], its encoded delta is lens[i] bytes
 * (1..page size) and the deltas are concatenated in data, in order.
 * Split at the cap; n == 0 writes nothing.
 */
int stream_write_xbzrle_pages(struct stream_writer *w, const uint64_t *pfns,
                              const uint32_t *lens, size_t n,
                              const uint8_t *data);
/* The same with types, as stream_write_zero_pages_typed(). */
int stream_write_xbzrle_pages_typed(struct stream_writer *w,
                                    const uint64_t *pfns, const uint8_t *types,
                                    const uint32_t *lens, size_t n,
                                    const uint8_t *data);

/* GUEST_INFO: sent right after the headers by xc-colo streams. */
int stream_write_guest_info(struct stream_writer *w, uint64_t nr_pfns,
                            uint32_t page_size, uint32_t flags);

/* DIGEST: whole-memory digest and count chunk digests (16 bytes each, as
 * xcc_domain_digest produces them); flags are the XCC_DIGEST_* used. */
int stream_write_digest(struct stream_writer *w, uint32_t chunk_bytes,
                        uint32_t flags, const uint8_t whole[16],
                        const uint8_t *chunks, uint32_t count);

/* CHECKPOINT_DIRTY_PFN_LIST: a bare u64 pfn[n] body (Xen's layout); n == 0
 * writes an empty list ("nothing dirty"); split at the cap. */
int stream_write_dirty_pfn_list(struct stream_writer *w, const uint64_t *pfns,
                                size_t n);

/*
 * CACHE_BASES: the pfns whose copy the receiver may drop (dropped[0..nd))
 * and those it must keep from their next page on (kept[0..nk)), applied in
 * that order. Split at the cap (dropped pfns first, then kept, in order);
 * nd == nk == 0 writes nothing.
 */
int stream_write_cache_bases(struct stream_writer *w, const uint64_t *dropped,
                             size_t nd, const uint64_t *kept, size_t nk);

/* STATS (optional record): len bytes of UTF-8 JSON. */
int stream_write_stats(struct stream_writer *w, const char *json, size_t len);

/* Body-less records. */
int stream_write_end(struct stream_writer *w);
int stream_write_checkpoint(struct stream_writer *w);
int stream_write_static_data_end(struct stream_writer *w);

/* ---- Reader -------------------------------------------------------------- */

struct stream_reader;

struct stream_headers {
    uint32_t version; /* 2 or 3 */
    uint16_t options;
    uint32_t dhdr_type; /* XCC_DHDR_TYPE_* */
    uint32_t page_shift;
    uint32_t page_size; /* 1 << page_shift */
    uint32_t xen_major;
    uint32_t xen_minor;
};

struct stream_record {
    uint32_t type;
    uint32_t length;     /* body bytes, padding excluded */
    uint64_t offset;     /* stream offset of the record header */
    const uint8_t *body; /* valid until the next stream_read_record */
};

/* A reader over fd (file, pipe or socket). NULL + errno (ENOMEM). */
struct stream_reader *stream_reader_new(int fd, xentoollog_logger *log);
void stream_reader_free(struct stream_reader *r); /* never closes fd */

/*
 * Reads and validates both headers: marker, id, version 2..3, little-endian,
 * known domain type, page_shift 12..16. Returns 0, or -1 with errno
 * XCC_EBADSTREAM / XCC_ETRUNCATED (or a read errno) after logging once.
 */
int stream_read_headers(struct stream_reader *r, struct stream_headers *h);

/*
 * As stream_read_headers(), when the first prefix_len bytes (at most the 40
 * of both headers) were already read from the fd by whoever looked for a
 * wrapper (the xl header); EINVAL after the headers were read.
 */
int stream_read_headers_prefixed(struct stream_reader *r,
                                 const uint8_t *prefix, size_t prefix_len,
                                 struct stream_headers *h);

/* Before the headers: the offset of the stream's first byte in the file
 * (an xl image's libxc stream starts after the xl and libxl headers), so
 * that every error and stream_reader_offset() give file offsets. */
void stream_reader_set_offset(struct stream_reader *r, uint64_t offset);

/*
 * Reads the next record: type, length, offset and body (8-byte aligned,
 * valid until the next call). Checks the length cap, the zero padding and
 * the framing rules of the records with fixed sizes (END, CHECKPOINT,
 * VERIFY, STATIC_DATA_END: empty; GUEST_INFO: 16 bytes); and rejects an
 * unknown mandatory type inside the project's block. Bodies of other types
 * are checked by the parsers below. Returns 0, or -1 with errno
 * XCC_EBADSTREAM, XCC_ETRUNCATED (EOF mid-record, or EOF before END) or a
 * read errno, after logging once; EINVAL when called again after END.
 */
int stream_read_record(struct stream_reader *r, struct stream_record *rec);

/*
 * The same in two steps, for a reader that must not hold a large body:
 * stream_read_record_head() reads and checks the header as above (rec->body
 * NULL); then either stream_read_record_body() reads the whole body as
 * stream_read_record() does, or stream_read_body_part() hands out the next
 * len bytes of it at most (returns the count, 0 at the end; the padding is
 * read and checked after the last byte), or one of the streamed checks
 * below consumes it.
 */
int stream_read_record_head(struct stream_reader *r, struct stream_record *rec);
int stream_read_record_body(struct stream_reader *r, struct stream_record *rec);
ssize_t stream_read_body_part(struct stream_reader *r,
                              const struct stream_record *rec, uint8_t *buf,
                              size_t len);

/*
 * Reads up to len bytes from fd, stopping early only at EOF, surviving
 * EINTR and short reads, and waiting (poll) on a non-blocking fd: the one
 * read loop of the stream reader and of the xl framing (xl_format.c).
 * Returns the number of bytes read, or -1 with errno (never EINTR).
 */
ssize_t stream_read_full(int fd, uint8_t *buf, size_t len);

/* After END: 0 at EOF, -1/XCC_EBADSTREAM when bytes follow (logged). */
int stream_read_expect_eof(struct stream_reader *r);

/* Bytes consumed so far (the offset of the next record). */
uint64_t stream_reader_offset(const struct stream_reader *r);

/* The last error message logged by this reader or its parsers ("" if none). */
const char *stream_reader_error(const struct stream_reader *r);

/* For parsers and checks outside stream.c (compress.c, the Xen state
 * checks of xen_records.c run by inspect and restore): logs one error
 * about rec (name, hex type, offset, then fmt), keeps it as the reader's
 * error and sets errno to err. Returns -1. */
int stream_rec_fail(struct stream_reader *r, const struct stream_record *rec,
                    int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A slot for compress.c's decoder state, freed with the reader
 * (compress_dec_free). */
void **stream_reader_zdec(struct stream_reader *r);
/* fn(opaque, pfn, type) for every entry of every PAGE_DATA record that
 * stream_parse_page_data() or stream_check_page_data() validates, in
 * stream order (the checker of Xen's vCPU records wants each pfn's last
 * page-table type). NULL: none. */
typedef void stream_type_hook(void *opaque, uint64_t pfn, unsigned type);
void stream_reader_set_type_hook(struct stream_reader *r,
                                 stream_type_hook *fn, void *opaque);

/* ---- Body parsers ---------------------------------------------------------
 *
 * Each validates the whole body BEFORE returning anything: counts against
 * the length, every pfn < nr_pfns (pass STREAM_PFN_LIMIT when unknown),
 * types, reserved fields zero, no pfn twice in one record. Output arrays
 * are owned by the reader and valid until the next stream_read_record or
 * parse. Return 0, or -1 with errno XCC_EBADSTREAM after logging once
 * (record name, hex type, offset, what). EINVAL: rec of the wrong type.
 */

struct stream_page_data {
    uint32_t count;
    const uint64_t *pfns;        /* pfn only, type bits stripped */
    const uint8_t *types;        /* 4-bit types */
    const uint8_t *const *pages; /* into rec->body, NULL: no data */
};
/* page_size: the target's; must equal the stream's page size. */
int stream_parse_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           uint32_t page_size, struct stream_page_data *out);
/* The same rules for a PAGE_DATA body that rec does not hold (a
 * COMPRESSED_PAGES record, decompressed); errors name rec. */
int stream_parse_page_body(struct stream_reader *r,
                           const struct stream_record *rec,
                           const uint8_t *body, uint32_t length,
                           uint64_t nr_pfns, uint32_t page_size,
                           struct stream_page_data *out);

struct stream_pfn_list {
    uint32_t count;
    const uint64_t *pfns;
    const uint8_t *types; /* ZERO_PAGES: 4-bit types; DIRTY_PFN_LIST: NULL */
};
int stream_parse_zero_pages(struct stream_reader *r,
                            const struct stream_record *rec, uint64_t nr_pfns,
                            struct stream_pfn_list *out);
/* count may be 0 (nothing dirty). */
int stream_parse_dirty_pfn_list(struct stream_reader *r,
                                const struct stream_record *rec,
                                uint64_t nr_pfns, struct stream_pfn_list *out);

struct stream_xbzrle_pages {
    uint32_t count;
    const uint64_t *pfns;
    const uint8_t *types;         /* 4-bit types (types with data only) */
    const uint32_t *lens;         /* encoded length of each delta */
    const uint8_t *const *deltas; /* into rec->body */
};
/* Checks lengths (1..page_size, summing to the rest of the body), each
 * delta's run grammar (QEMU's XBZRLE, runs within page_size) and, in a
 * stream that announces its cache, that every pfn has a base. */
int stream_parse_xbzrle_pages(struct stream_reader *r,
                              const struct stream_record *rec, uint64_t nr_pfns,
                              uint32_t page_size,
                              struct stream_xbzrle_pages *out);

struct stream_guest_info {
    uint64_t nr_pfns;   /* 1 .. 2^52 */
    uint32_t page_size; /* equals the stream's page size */
    uint32_t flags;
};
int stream_parse_guest_info(struct stream_reader *r,
                            const struct stream_record *rec,
                            struct stream_guest_info *out);

/*
 * Cache bases (a stream whose GUEST_INFO has STREAM_GUEST_INFO_CACHE_BASES).
 * The reader follows, in stream order, which pfns have a base on the
 * receiver: a pfn has one when a page of it (PAGE_DATA or COMPRESSED_PAGES
 * with data, ZERO_PAGES, XBZRLE_PAGES) arrived while CACHE_BASES had it
 * kept, and loses it when CACHE_BASES drops it, when a page of it arrives
 * while it is not kept, or when a PAGE_DATA entry without data names it.
 * Every parser and streamed check of a page record updates this once the
 * record is valid; stream_parse_xbzrle_pages() refuses an entry whose pfn
 * has no base, naming it. Without the flag nothing is tracked and every
 * pfn counts as having a base (a receiver keeps everything).
 */
struct stream_cache_bases {
    uint32_t n_dropped, n_kept;
    const uint64_t *dropped; /* reader's arrays, valid as the parsers' */
    const uint64_t *kept;
};
/* Checks: the GUEST_INFO flag, body exactly 16 + 8 * (n_dropped + n_kept),
 * reserved zero, at least one pfn, every pfn below nr_pfns, no pfn twice in
 * one list (a pfn in both lists is dropped, then kept). Then applies it. */
int stream_parse_cache_bases(struct stream_reader *r,
                             const struct stream_record *rec, uint64_t nr_pfns,
                             struct stream_cache_bases *out);
/* Whether the stream announces its cache (the GUEST_INFO flag). */
bool stream_reader_bases_on(const struct stream_reader *r);
/* Whether the receiver must keep its copy of pfn now (true for every pfn
 * when the stream does not announce its cache). */
bool stream_reader_has_base(const struct stream_reader *r, uint64_t pfn);
/* Pfns that have a base now (0 without the flag). */
uint64_t stream_reader_bases(const struct stream_reader *r);

struct stream_digest {
    uint32_t chunk_bytes;  /* XCC_DIGEST_CHUNK: the only size allowed */
    uint32_t count;        /* = ceil(nr_pfns / chunk_pfns) when nr_pfns known */
    uint32_t flags;        /* XCC_DIGEST_* */
    const uint8_t *whole;  /* 16 bytes */
    const uint8_t *chunks; /* count x 16 bytes */
};
/* nr_pfns: the stream's/target's (STREAM_PFN_LIMIT: count not checked). */
int stream_parse_digest(struct stream_reader *r,
                        const struct stream_record *rec, uint64_t nr_pfns,
                        struct stream_digest *out);

/*
 * Streamed checks: the rules of stream_parse_page_data() and
 * stream_parse_zero_pages() / stream_parse_dirty_pfn_list(), applied to a
 * body read in pieces right after stream_read_record_head() (inspect: a
 * record of 16 Mi pfns costs a 256 KiB piece and the duplicate check, not
 * the body and three arrays). They consume the body. 0, or -1 as the
 * parsers.
 */
struct stream_page_counts {
    uint32_t count;     /* entries */
    uint32_t with_data; /* entries followed by a page */
    uint32_t by_type[16]; /* entries of each 4-bit type */
};
int stream_check_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           struct stream_page_counts *out);
/* ZERO_PAGES or CHECKPOINT_DIRTY_PFN_LIST; by_type (16 counters, may be
 * NULL) gets ZERO_PAGES entries counted by type. */
int stream_check_pfn_list(struct stream_reader *r,
                          const struct stream_record *rec, uint64_t nr_pfns,
                          uint32_t *count, uint32_t *by_type);

/*
 * The page-table check of a Xen PV stream's page: calls fn for every
 * PAGE_DATA page of a page-table type (checked = data pages handed out)
 * while stream_check_page_data reads the body; NULL: none. fn returns 0,
 * or -1 to fail the record (it names what was wrong in msg).
 */
typedef int stream_page_fn(void *opaque, uint64_t pfn, unsigned type,
                           const uint8_t *page, char *msg, size_t msglen);
void stream_reader_set_page_check(struct stream_reader *r, stream_page_fn *fn,
                                  void *opaque);

/* ---- Record order ---------------------------------------------------------
 *
 * The one set of structural rules (which record may come where) that
 * inspect and both restore loops apply, record by record, before a body is
 * parsed (libxc-colo/docs/stream-format.md, sections 5 and 6):
 *   - GUEST_INFO only as the first record after the headers;
 *   - CHECKPOINT and CHECKPOINT_DIRTY_PFN_LIST only in a checkpoint stream
 *     (STREAM_ORDER_PLAIN refuses them with ENOTSUP), and
 *     CHECKPOINT_DIRTY_PFN_LIST only after the first CHECKPOINT;
 *   - a checkpoint stream has at least one CHECKPOINT before END
 *     (STREAM_ORDER_CHECKPOINTED), and END follows a CHECKPOINT directly,
 *     except after COLO's closing epoch (one that opens with a
 *     CHECKPOINT_DIRTY_PFN_LIST).
 * STREAM_ORDER_ANY (inspect) takes a stream with a CHECKPOINT as a
 * checkpoint stream and one without as a plain stream; so whatever inspect
 * accepts, restore accepts in the matching mode.
 */
enum stream_order_mode {
    STREAM_ORDER_ANY = 0,     /* inspect: plain or checkpoint stream */
    STREAM_ORDER_PLAIN,       /* xcc_restorer_run */
    STREAM_ORDER_CHECKPOINTED /* xcc_restorer_run_checkpointed */
};

struct stream_order {
    enum stream_order_mode mode;
    uint64_t records;       /* records seen, END included */
    uint64_t checkpoints;   /* CHECKPOINT records seen */
    uint64_t epoch_records; /* records since the last CHECKPOINT */
    bool epoch_colo;        /* this epoch opened with a DIRTY_PFN_LIST */
};

void stream_order_init(struct stream_order *o, enum stream_order_mode mode);

/* Checks that rec may come next and counts it. 0, or -1 with errno
 * XCC_EBADSTREAM (ENOTSUP: a checkpoint record in PLAIN mode) after one
 * logged error naming the record, its offset and the rule. */
int stream_order_check(struct stream_reader *r, struct stream_order *o,
                       const struct stream_record *rec);

/* ---- Inspection (stream_inspect.c) ---------------------------------------
 *
 * xcc_stream_inspect() on a stream whose first prefix_len bytes were read
 * already (prefix), starting at file offset `offset`. wrapped: the stream
 * sits in an xl image, so libxl's records follow its END (not checked
 * here) and a CHECKPOINT is refused. t is filled as by xcc_stream_inspect
 * (zeroed by the caller). 0 or -1 with errno.
 */
int stream_inspect_at(int fd, xentoollog_logger *log, const uint8_t *prefix,
                      size_t prefix_len, uint64_t offset, bool wrapped,
                      xcc_inspect_fn *cb, void *opaque,
                      struct xcc_inspect_totals *t);

#endif /* XCC_STREAM_H */
