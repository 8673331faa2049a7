/*
 * digest.h - the one definition of the memory digests.
 *
 * A guest's memory is cut into chunks of XCC_DIGEST_CHUNK bytes in pfn
 * order (the last chunk may be short). Each chunk digest is XXH3-128 of the
 * chunk's bytes, where holes, pages that cannot be mapped and pages without
 * data count as zero-filled pages (and, with XCC_DIGEST_EXCLUDE_PAGETABLES,
 * PV page tables too; with XCC_DIGEST_EXCLUDE_LISTED, the pfns listed by
 * xcc_domain_digest_exclude). The whole-memory digest is XXH3-128 of the chunk
 * digests concatenated in order. Digests are stored in XXH128's canonical
 * (big-endian) form.
 *
 * The whole digest is built from the chunks so that a sender can rehash
 * only the chunks the guest wrote since it last hashed them: the final,
 * paused pass then hashes a few chunks, not all memory. DIGEST records,
 * `xc-colo digest`, the checkpoint digest log and the restorer's check all
 * use these functions, so their figures are always comparable.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_DIGEST_H
#define XCC_DIGEST_H

#include "private.h"

/* Bytes of one digest (XXH3-128). */
#define DIGEST_BYTES 16u

/* Flags the digest functions understand. */
#define DIGEST_KNOWN_FLAGS \
    (XCC_DIGEST_EXCLUDE_PAGETABLES | XCC_DIGEST_EXCLUDE_LISTED)

/* Number of chunk digests of a guest of nr_pfns pages of page_size bytes. */
uint64_t digest_nchunks(uint64_t nr_pfns, uint32_t page_size);

/*
 * Recomputes into chunks[16 * c] the digest of every chunk c whose bit is
 * set in stale (NULL: every chunk) and clears the bit, reading d through
 * mc (d's size as d->info holds it). flags: XCC_DIGEST_*. Returns 0 or -1
 * with errno (logged).
 */
int digest_chunks(xcc_domain *d, xcc_map_cache *mc, unsigned flags,
                  uint64_t *stale, uint8_t *chunks);

/* The whole-memory digest from nchunks chunk digests. */
void digest_whole(const uint8_t *chunks, uint64_t nchunks,
                  uint8_t whole[DIGEST_BYTES]);

#endif /* XCC_DIGEST_H */
