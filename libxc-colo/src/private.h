/*
 * private.h - definitions shared by the library's modules, never installed.
 *
 * Module-specific internals live in the module's own header (map_cache.h,
 * stream.h, domain/domain.h, ...). Only names prefixed xcc_ are exported
 * (libxccolo.map); everything here is internal.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_PRIVATE_H
#define XCC_PRIVATE_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xentoollog.h>

#include "xccolo.h"

#define XCC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define XCC_DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))

/* Largest page the codec and the stream accept (the codec's 65536 limit). */
#define XCC_MAX_PAGE_SIZE 65536u

/* Size of a digest chunk: DIGEST records and `sim digest --chunks`. */
#define XCC_DIGEST_CHUNK_BYTES (2u << 20)

/*
 * Logging. Every message goes through a caller-supplied logger; the library
 * never writes to a terminal itself. `ctx` names the module ("stream",
 * "sim", ...), as xtl_log's context argument does.
 */
void lib_log(xentoollog_logger *log, xentoollog_level level, int errnoval,
             const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define XCC_ERR(log, ctx, ...) lib_log((log), XTL_ERROR, -1, (ctx), __VA_ARGS__)
#define XCC_PERR(log, ctx, ...)                                                \
    lib_log((log), XTL_ERROR, errno, (ctx), __VA_ARGS__)
#define XCC_WARN(log, ctx, ...) lib_log((log), XTL_WARN, -1, (ctx), __VA_ARGS__)
#define XCC_INFO(log, ctx, ...) lib_log((log), XTL_INFO, -1, (ctx), __VA_ARGS__)
#define XCC_DBG(log, ctx, ...) lib_log((log), XTL_DEBUG, -1, (ctx), __VA_ARGS__)

/*
 * The one error helper of the readers, parsers and checkers: formats fmt
 * into msg (len bytes: the text the module keeps for its *_error()
 * accessor or hands to its caller), logs it at ERROR under ctx (ctx NULL:
 * only kept, for a caller that wraps it in its own logged message), sets
 * errno = err and returns -1, so that `return lib_fail(...)` fails in one
 * line. Each module binds its buffer in a one-line macro (reader_fail,
 * restore_fail, ...).
 */
int lib_fail(xentoollog_logger *log, const char *ctx, char *msg, size_t len,
             int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/*
 * The prefix of every error about one record, in the libxc stream and in
 * xl's libxl framing alike: its name, hex type and offset, as in
 * "PAGE_DATA record (type 0x00000001) at offset 64". Arguments: the name
 * (const char *), the type (uint32_t) and the offset (uint64_t).
 */
#define LIB_REC_FMT "%s record (type 0x%08" PRIx32 ") at offset %" PRIu64

/* The logger to use when the caller passed NULL: stderr, WARN and above. */
xentoollog_logger *lib_default_logger(void);

/* Monotonic clock in nanoseconds. */
uint64_t lib_now_ns(void);

/*
 * Writes to the next n of the page cache's buffers through the process's
 * own mapping (a byte rewritten with itself), so that a later insert does
 * not pay the first-touch fault. MAP_POPULATE allocates the pages, but where
 * the process runs in a guest with shadow paging (a PV dom0; a KVM-PVM
 * guest) the first user write still faults, for tens of microseconds a
 * page. Returns how many were touched; 0 once all have been.
 */
struct xcc_page_cache;
size_t page_cache_prefault(struct xcc_page_cache *c, size_t n);
/* True when the page_size bytes at p (a multiple of 64) are all zero. */
bool lib_page_is_zero(const uint8_t *p, size_t page_size);

/*
 * Checks the size a caller set in a params struct (its first member, set
 * by the struct's init function) against the sizes this library knows
 * (only `known` in 1.0). Returns true when it is one; otherwise logs which
 * struct and which init function, sets errno EINVAL and returns false.
 * `what` names the struct, e.g. "xcc_save_params".
 */
bool lib_params_size_ok(xentoollog_logger *log, const char *ctx,
                        const char *what, size_t size, size_t known);
#define LIB_PARAMS_SIZE_OK(log, ctx, type, p)                                  \
    lib_params_size_ok((log), (ctx), #type, (p)->size, sizeof(struct type))

#endif /* XCC_PRIVATE_H */
