/*
 * xccolo.h - the public interface of libxccolo.
 *
 * libxccolo saves, restores, live-migrates and continuously checkpoints the
 * memory of a virtual machine over one file descriptor. Guests are reached
 * through a domain backend: "xen:ID" (or a bare number) for a Xen domain,
 * "sim:NAME" for a simulated guest.
 *
 * Conventions, as in Xen's small libraries:
 *  - handles are opaque;
 *  - functions return -1 (or NULL) and set errno on failure; errno may hold
 *    one of the XCC_E* codes below, which xcc_strerror() describes;
 *  - the library never prints and never exits: it logs through the
 *    xentoollog_logger the caller passes (NULL: a stderr logger at WARN).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCCOLO_H
#define XCCOLO_H

#include <stddef.h>
#include <stdint.h>
#include <xentoollog.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version. The soname's major number is XCC_VERSION_MAJOR.                  */
/* ------------------------------------------------------------------------ */
#define XCC_VERSION_MAJOR 1
#define XCC_VERSION_MINOR 0
#define XCC_VERSION_PATCH 0
#define XCC_VERSION_STRING "1.0.0"
#define XCC_VERSION_NUMBER                                                     \
    (XCC_VERSION_MAJOR * 10000 + XCC_VERSION_MINOR * 100 + XCC_VERSION_PATCH)

/* Returns XCC_VERSION_STRING of the library actually loaded. */
const char *xcc_version(void);

/* ------------------------------------------------------------------------ */
/* Errors. Values above any errno so they can travel in errno.               */
/* ------------------------------------------------------------------------ */
enum {
    XCC_EBADSTREAM = 2001, /* the stream is malformed; the log says where */
    XCC_ETRUNCATED = 2002, /* the stream ended before END */
    XCC_EDIGEST = 2003,    /* a DIGEST record did not match the target */
    XCC_ENOXEN = 2004,     /* no Xen hypervisor (/dev/xen/privcmd missing) */
    XCC_EFAILOVER = 2005,  /* checkpoint stream broke; last epoch kept */
    XCC_EBUSY = 2006,      /* guest too busy to converge (--abort-if-busy) */
    XCC_EBADDOMAIN = 2007, /* unknown or malformed domain name */
};

/* Describes an errno value or an XCC_E* code. Never returns NULL. */
const char *xcc_strerror(int err);

/* ------------------------------------------------------------------------ */
/* XBZRLE codec (QEMU's wire format, byte for byte).                         */
/* ------------------------------------------------------------------------ */
/* (section owned by xbzrle.c) */

/*
 * Encodes new_page as a delta against old_page. len is a multiple of 8, at
 * most 65536. Returns the encoded length (> 0), 0 when the pages are equal,
 * or -1 when the encoding would not fit in dst_len (nothing is written past
 * dst + dst_len).
 */
int xcc_xbzrle_encode(const uint8_t *old_page, const uint8_t *new_page,
                      size_t len, uint8_t *dst, size_t dst_len);

/*
 * Applies the delta src[0..src_len) onto page, which holds the old bytes.
 * Returns the number of bytes of page covered (>= 0) or -1 on malformed
 * input. Never writes outside page[0..len).
 */
int xcc_xbzrle_decode(const uint8_t *src, size_t src_len, uint8_t *page,
                      size_t len);

/* ------------------------------------------------------------------------ */
/* XBZRLE page cache (pfn -> copy of the page as last sent).                 */
/* ------------------------------------------------------------------------ */
/* (section owned by page_cache.c) */
typedef struct xcc_page_cache xcc_page_cache;

/* ------------------------------------------------------------------------ */
/* Domains.                                                                  */
/* ------------------------------------------------------------------------ */
/* (section owned by domain/domain.c) */
typedef struct xcc_domain xcc_domain;

/*
 * Opens a domain by name: "sim:NAME" for a simulated guest, "xen:ID" or a
 * bare number for a Xen domain. flags: 0 for now. Returns NULL with errno
 * (XCC_EBADDOMAIN for a malformed name, XCC_ENOXEN without a hypervisor,
 * ENOENT for a domain that does not exist); the reason is logged.
 */
xcc_domain *xcc_domain_open(const char *name, xentoollog_logger *log,
                            unsigned flags);

/* Releases the handle; the guest itself is left as it is. NULL is a no-op. */
void xcc_domain_close(xcc_domain *d);

/* Number of pfns (0 .. nr_pfns-1) and page size in bytes. Returns 0 or -1. */
int xcc_domain_get_info(xcc_domain *d, uint64_t *nr_pfns,
                        uint32_t *page_size);

/* Stops / continues the guest; returns once the state has changed. */
int xcc_domain_pause(xcc_domain *d);
int xcc_domain_unpause(xcc_domain *d);

/* Flags for xcc_domain_digest. */
#define XCC_DIGEST_EXCLUDE_PAGETABLES 1u /* PV L1..L4 pages hash as zeros */

/*
 * XXH3-128 digest of the guest's memory in pfn order; pages that cannot be
 * mapped (holes) and excluded pages count as zero-filled. digest receives
 * 16 bytes, big-endian (the canonical XXH128 form, printed as 32 hex
 * digits). When chunk_digests is not NULL it receives 16 bytes per
 * XCC_DIGEST_CHUNK of memory, for at most max_chunks chunks. Returns the
 * number of chunks, or -1 with errno.
 */
#define XCC_DIGEST_CHUNK (2u << 20)
int64_t xcc_domain_digest(xcc_domain *d, unsigned flags, uint8_t digest[16],
                          uint8_t *chunk_digests, size_t max_chunks);

/* ------------------------------------------------------------------------ */
/* Simulated guests (sim:NAME).                                              */
/* ------------------------------------------------------------------------ */
/* (section owned by domain/sim.c) */

/* ------------------------------------------------------------------------ */
/* Map cache.                                                                */
/* ------------------------------------------------------------------------ */
/* (section owned by map_cache.c) */
typedef struct xcc_map_cache xcc_map_cache;

/* ------------------------------------------------------------------------ */
/* Stream inspection.                                                        */
/* ------------------------------------------------------------------------ */
/* (section owned by stream.c) */

/* ------------------------------------------------------------------------ */
/* Save, migrate and checkpoint.                                             */
/* ------------------------------------------------------------------------ */
/* (section owned by save.c) */
typedef struct xcc_saver xcc_saver;

/* ------------------------------------------------------------------------ */
/* Restore.                                                                  */
/* ------------------------------------------------------------------------ */
/* (section owned by restore.c) */
typedef struct xcc_restorer xcc_restorer;

#ifdef __cplusplus
}
#endif
#endif /* XCCOLO_H */
