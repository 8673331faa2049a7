/*
 * xl_format.h - the framing stock `xl save` puts around a libxc stream, and
 * that stock `xl restore` reads (Xen 4.17):
 *
 *   xl header (48 bytes, host byte order)   tools/xl/xl.h, xl_saverestore.c
 *     +0  char magic[32]  "Xen saved domain, xl format\n \0 \r" (+ zeros)
 *     +32 u32 byteorder   0x01020304 as the writer's host stores it
 *     +36 u32 mandatory_flags  bit 0 config is JSON, bit 1 libxl v2 stream;
 *                              any other bit: xl refuses the file
 *     +40 u32 optional_flags
 *     +44 u32 optional_data_len
 *   optional data (optional_data_len bytes)
 *     u32 config_len, then config_len bytes of config (JSON: libxl's
 *     libxl_domain_config_to_json text with its NUL); bytes past the config
 *     are a tail older readers skip
 *   libxl stream header (16 bytes, big-endian)  libxl_sr_stream_format.h
 *     u64 ident "LibxlFmt", u32 version 2, u32 options (bit 0 big-endian,
 *     bit 1 converted from a legacy stream)
 *   libxl records: u32 type, u32 body_length (little-endian on x86), body,
 *     zero padding to 8 bytes, as libxc records
 *     LIBXC_CONTEXT (1, empty): the libxc stream follows, up to its END
 *     EMULATOR_XENSTORE_DATA (2), EMULATOR_CONTEXT (3): HVM device model
 *     CHECKPOINT_END (4), CHECKPOINT_STATE (5): Remus/COLO streams
 *     END (0, empty): the last record
 *
 * For a PV guest libxl writes: header, LIBXC_CONTEXT, the libxc stream, END.
 * The writer here writes exactly that; the reader takes what libxl's reader
 * takes for a plain (not checkpointed) stream, and checks more (padding,
 * trailing bytes, a NUL-terminated JSON config). Every error names the part
 * or record, its file offset and what was wrong.
 *
 * Internal API (names start xl_).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_XL_FORMAT_H
#define XCC_XL_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "private.h"

struct stream_writer;

/* ---- xl header ----------------------------------------------------------- */

#define XL_MAGIC_LEN 32u
#define XL_HEADER_SIZE 48u
#define XL_BYTEORDER 0x01020304u
#define XL_FLAG_JSON 0x1u     /* the config is libxl JSON */
#define XL_FLAG_STREAMV2 0x2u /* a libxl v2 stream follows (Xen >= 4.6) */
#define XL_FLAGS_KNOWN (XL_FLAG_JSON | XL_FLAG_STREAMV2)
/* Optional data a reader holds in memory: a JSON config is a few KiB, so
 * this bounds what a hostile length can make us allocate. */
#define XL_OPTDATA_MAX (16u << 20)

/* The 32 magic bytes (the string's NUL, space, NUL, CR, then zeros). */
extern const uint8_t xl_magic[XL_MAGIC_LEN];

struct xl_header {
    uint32_t mandatory_flags;
    uint32_t optional_flags;
    uint32_t optional_data_len;
    uint32_t config_len; /* bytes of config, its NUL included; 0: none */
    char *config;        /* malloc'ed, NUL-terminated; NULL: none */
};

/* ---- libxl stream -------------------------------------------------------- */

#define LIBXL_HEADER_SIZE 16u
#define LIBXL_IDENT 0x4c6962786c466d74ull /* "LibxlFmt" */
#define LIBXL_VERSION 2u
#define LIBXL_OPT_BIG_ENDIAN 0x1u
#define LIBXL_OPT_LEGACY 0x2u

#define LIBXL_RHDR_SIZE 8u
#define LIBXL_REC_END 0x00000000u
#define LIBXL_REC_LIBXC_CONTEXT 0x00000001u
#define LIBXL_REC_EMULATOR_XENSTORE_DATA 0x00000002u
#define LIBXL_REC_EMULATOR_CONTEXT 0x00000003u
#define LIBXL_REC_CHECKPOINT_END 0x00000004u
#define LIBXL_REC_CHECKPOINT_STATE 0x00000005u
#define LIBXL_REC_OPTIONAL 0x80000000u
/* Emulator records start with u32 emulator_id, u32 index. */
#define LIBXL_EMULATOR_HDR_SIZE 8u

/* "END", "LIBXC_CONTEXT", ...; "UNKNOWN" otherwise. */
const char *xl_libxl_record_name(uint32_t type);

/* ---- Pure encoders and decoders (unit-tested byte for byte) -------------- */

/* Bytes xl_encode_prologue() writes for a config of json_len bytes (the
 * NUL not counted; json NULL: json_len 0, no config). */
size_t xl_prologue_size(size_t json_len);

/*
 * The xl header, its optional data (config_len, the config with its NUL),
 * the libxl header and the LIBXC_CONTEXT record, as `xl save` writes them
 * (host byte order for the xl header: little-endian on x86). json NULL:
 * config_len 0 and no JSON flag. buf holds xl_prologue_size(strlen(json)).
 * Returns the bytes written, or 0 with errno EINVAL (config too long for
 * the u32 lengths) or ENOSPC (cap too small).
 */
size_t xl_encode_prologue(uint8_t *buf, size_t cap, const char *json);

/* The 8 bytes of a libxl record header (little-endian). */
void xl_encode_libxl_rhdr(uint8_t out[LIBXL_RHDR_SIZE], uint32_t type,
                          uint32_t length);

/*
 * Checks the 48 bytes of an xl header (at file offset 0) and fills the
 * flags and optional_data_len of *h (config NULL). Returns 0, or -1 with
 * errno XCC_EBADSTREAM and err naming the offset and the fault: bad magic,
 * another byte order, unknown mandatory flags, or no STREAMv2 flag (a
 * pre-4.6 legacy image, which xc-colo does not read).
 */
int xl_parse_header(const uint8_t hdr[XL_HEADER_SIZE], struct xl_header *h,
                    char *err, size_t errlen);

/*
 * Parses the optional data (len bytes at file offset XL_HEADER_SIZE) into
 * h->config_len and h->config (malloc'ed copy, NUL-terminated). A JSON
 * config must end in its NUL and hold no other. 0, or -1 with errno
 * XCC_EBADSTREAM (err says where) or ENOMEM.
 */
int xl_parse_optdata(const uint8_t *data, uint32_t len, struct xl_header *h,
                     char *err, size_t errlen);

/* Checks the libxl stream header at file offset `offset`: ident, version 2,
 * little-endian. Fills *options. 0 or -1/XCC_EBADSTREAM with err. */
int xl_parse_libxl_header(const uint8_t hdr[LIBXL_HEADER_SIZE],
                          uint64_t offset, uint32_t *options, char *err,
                          size_t errlen);

void xl_header_release(struct xl_header *h);

/* ---- --xen-compat: which of the saver's records a stock reader gets ------- */

/*
 * The one rule for a stream stock Xen reads (a stream_record_filter):
 * Xen's records are kept; xc-colo's own block (0x5843xxxx, and 0xD843xxxx
 * with the optional bit) is dropped, except the records that carry page
 * contents (ZERO_PAGES, XBZRLE_PAGES), which are refused: dropping them
 * would lose memory, and the saver never sends them in this mode.
 */
int xl_compat_filter(uint32_t type, const char **why);

/* ---- Writer -------------------------------------------------------------- */

/* Writes the prologue (xl_encode_prologue) through w. 0 or -1/errno. */
int xl_write_prologue(struct stream_writer *w, const char *json);

/* Writes libxl's END record, after the libxc stream's END. 0 or -1/errno. */
int xl_write_epilogue(struct stream_writer *w);

/* ---- Reader -------------------------------------------------------------- */

struct xl_record {
    uint64_t offset; /* file offset of the record header */
    uint32_t type;
    uint32_t length; /* body bytes, padding excluded */
    const char *name;
    bool has_emulator; /* EMULATOR_*: the sub-header below is valid */
    uint32_t emulator_id, emulator_index;
};

struct xl_reader {
    int fd;
    xentoollog_logger *log;
    uint64_t offset; /* file offset of the next byte */
    bool present;    /* the file starts with an xl header */
    struct xl_header hdr;
    uint32_t libxl_options;
    bool libxc_done; /* LIBXC_CONTEXT and its stream are behind us */
    char err[512];
};

/*
 * Called with rec NULL once the xl and libxl headers are valid, then once
 * per libxl record. Non-zero stops the read (-1, errno ECANCELED).
 */
typedef int xl_record_fn(void *opaque, const struct xl_reader *x,
                         const struct xl_record *rec);

void xl_reader_init(struct xl_reader *x, int fd, xentoollog_logger *log);
void xl_reader_release(struct xl_reader *x);

/*
 * Reads the first XL_MAGIC_LEN bytes (fewer at EOF). Without the xl magic,
 * they are left in prefix[0..*prefix_len) for stream_read_headers_prefixed
 * and x->present is false. With it, reads and checks the xl header, its
 * optional data, the libxl header and the first libxl record, which must
 * be LIBXC_CONTEXT (as libxl writes it), reporting each to cb (may be
 * NULL); *prefix_len is then 0 and x->offset is where the libxc stream
 * starts. Returns 0, or -1 with errno XCC_ETRUNCATED / XCC_EBADSTREAM / a
 * read errno, after one logged error kept in x->err.
 */
int xl_read_prologue(struct xl_reader *x, uint8_t prefix[XL_MAGIC_LEN],
                     size_t *prefix_len, xl_record_fn *cb, void *opaque);

/*
 * After the libxc stream's END, at file offset `offset`: reads the libxl
 * records up to END (emulator records are checked and skipped: a memory
 * image has no device model), then checks that nothing follows. A second
 * LIBXC_CONTEXT, a checkpoint record or an unknown mandatory type is an
 * error. Returns 0 or -1 as xl_read_prologue().
 */
int xl_read_epilogue(struct xl_reader *x, uint64_t offset, xl_record_fn *cb,
                     void *opaque);

#endif /* XCC_XL_FORMAT_H */
