/*
 * compress.h - whole pages compressed with zstd (issue 16, item 5):
 * the COMPRESSED_PAGES record (0x58430007), written and read.
 *
 * Body (little-endian; libxc-colo/docs/stream-format.md):
 *   u32 count        pages, >= 1
 *   u32 frame_len    bytes of the zstd frame
 *   u64 pfn[count]   PAGE_DATA's encoding: type in bits 60..63 (a type that
 *                    carries data), bits 52..59 zero, pfn in bits 0..51
 *   u8  frame[frame_len]  one zstd frame: the count pages, concatenated in
 *                    entry order, exactly count * page_size bytes
 * The body is exactly 8 + 8 * count + frame_len bytes.
 *
 * The saver compresses the pages XBZRLE does not cover (iteration 0, cache
 * misses, overflows: whatever would go as PAGE_DATA with data), one record
 * per slice. Compression switches itself off per batch when it does not
 * pay (random data): the batch goes as PAGE_DATA; while off, a small sample
 * of each batch is tried (4 pages), and compression comes back when it
 * pays again. It starts off, so random memory never costs a full try.
 *
 * The reader never trusts the frame's declared size: it decompresses into
 * a buffer of count * page_size bytes plus one, with the decoder's window
 * bounded by that size, and refuses a frame that stops short, goes past,
 * or leaves bytes behind. Errors name the record, its offset and what.
 *
 * Internal API (names start compress_).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_COMPRESS_H
#define XCC_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

struct json_object;

/* zstd levels the saver takes (--compress zstd:LEVEL). */
#define COMPRESS_LEVEL_MIN 1
#define COMPRESS_LEVEL_MAX 19
#define COMPRESS_LEVEL_DEFAULT 1
/* The fixed part of the body: count, frame_len. */
#define COMPRESS_HEAD_SIZE 8u

struct compress_stats {
    int level;             /* 0: compression off */
    uint64_t batches;      /* batches of data pages offered */
    uint64_t compressed;   /* of which sent as COMPRESSED_PAGES */
    uint64_t not_paying;   /* compressed in full, sent as PAGE_DATA */
    uint64_t skipped;      /* not tried in full (compression was off) */
    uint64_t probes;       /* samples tried while off */
    uint64_t pages;        /* pages sent in COMPRESSED_PAGES */
    uint64_t raw_bytes;    /* their bytes */
    uint64_t frame_bytes;  /* their zstd frames' bytes */
    uint64_t ns;           /* CPU time compressing (samples included) */
};

/* ---- Writer ---- */

struct compress_enc;

/* For batches of up to batch pages of page_size bytes at zstd level;
 * figures go to *st. NULL with errno (ENOMEM). */
struct compress_enc *compress_enc_new(int level, size_t batch,
                                      uint32_t page_size,
                                      struct compress_stats *st);
void compress_enc_free(struct compress_enc *z);

/*
 * Whether the batches that follow belong to a live pass (the guest runs):
 * there a batch must save a quarter of its bytes to pay, not an eighth.
 * zstd runs slowest on near-random memory, and a slower live pass lets the
 * guest dirty more pages, which the next pass sends again: at an eighth, a
 * live migration of a sim guest (batches saving 12-16%) sent 1.4 times the
 * bytes of the same migration without zstd.
 */
void compress_set_live(struct compress_enc *z, bool live);

/*
 * Writes the PAGE_DATA entries pfns/types/pages[0..n) (as
 * stream_write_page_data takes them): entries without data go as
 * PAGE_DATA, the pages with data as one COMPRESSED_PAGES record when it
 * pays, else as PAGE_DATA. 0 or -1 with errno (logged).
 */
int compress_write_pages(struct compress_enc *z, struct stream_writer *w,
                         const uint64_t *pfns, const uint8_t *types, size_t n,
                         const uint8_t *const *pages, size_t page_size);

/* ---- Reader ---- */

/*
 * Parses PAGE_DATA (stream_parse_page_data) or COMPRESSED_PAGES into out,
 * with the same rules; a COMPRESSED_PAGES record's pages point into a
 * buffer that the reader owns, valid until the next parse of this kind.
 * 0, or -1 with errno XCC_EBADSTREAM (ENOMEM) after one logged error
 * naming the record, its offset and what was wrong.
 */
int compress_parse_pages(struct stream_reader *r,
                         const struct stream_record *rec, uint64_t nr_pfns,
                         uint32_t page_size, struct stream_page_data *out);

/* The reader's decoder state (stream.c frees it with the reader). */
void compress_dec_free(void *dec);

/* Adds "compression": {...} to a save document when st->level. */
void compress_json(struct json_object *root, const struct compress_stats *st);

#endif /* XCC_COMPRESS_H */
