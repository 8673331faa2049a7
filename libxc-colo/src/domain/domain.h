/*
 * domain.h - the domain backend interface.
 *
 * The save and restore loops reach a guest only through this ops table.
 * Backends (sim.c, xen.c) know nothing of streams, save or restore.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_DOMAIN_H
#define XCC_DOMAIN_H

#include <sys/types.h>

#include "../private.h"

/* enum xcc_pfn_type, xcc_pfn_type_has_data(), XCC_DHDR_TYPE_*. */
#include "../pfn_type.h"

struct xcc_domain_info {
    uint64_t nr_pfns;      /* valid pfns are 0 .. nr_pfns-1 */
    uint32_t page_size;    /* bytes; 4096 on x86 */
    uint32_t stream_type;  /* XCC_DHDR_TYPE_* for the domain header */
    uint32_t xen_major;    /* hypervisor version, 0 for sim */
    uint32_t xen_minor;
};

/* The phases of a save that carry domain-state records (state_records). */
enum domain_state_phase {
    DOMAIN_STATE_STATIC = 1,
    DOMAIN_STATE_START = 2,
    DOMAIN_STATE_TAIL = 3,
};

struct iovec;
/* Takes one record: 0, or -1 with errno (the write failed, logged). */
typedef int domain_record_fn(void *opaque, uint32_t type,
                             const struct iovec *iov, int iovcnt);

struct xcc_domain_ops {
    const char *kind; /* "sim" or "xen" */

    /* Fills *info. Cheap; may be called again after populate. */
    int (*info)(xcc_domain *d, struct xcc_domain_info *info);

    /* types[i] = XCC_PFN_* of pfns[i]. Returns 0 or -1/errno. */
    int (*pfn_types)(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                     size_t n);

    /* Log-dirty mode on/off. Enabling marks nothing dirty. */
    int (*logdirty_enable)(xcc_domain *d);
    int (*logdirty_disable)(xcc_domain *d);

    /*
     * Sets bit p of bitmap (nr_pfns bits, 64 per word, zeroed by the caller)
     * for every pfn p written since the previous clean, and re-arms the
     * tracking in the same atomic step, like SHADOW_OP_CLEAN. `final` is set
     * on the last pass, with the guest paused. Returns the number of dirty
     * pfns reported (over-reporting is allowed, missing a page is not), or
     * -1 with errno.
     */
    int64_t (*logdirty_clean)(xcc_domain *d, uint64_t *bitmap, bool final);

    /*
     * Maps the n pages pfns[0..n) into one contiguous region, read-only or
     * writable, like xenforeignmemory_map: err[i] is 0 or a negative errno
     * for a page that could not be mapped (its slot is inaccessible). Returns
     * NULL with errno when the whole call failed (ENOMEM: out of mappings).
     */
    void *(*map)(xcc_domain *d, bool writable, const uint64_t *pfns, int *err,
                 size_t n);
    int (*unmap)(xcc_domain *d, void *addr, size_t n);

    int (*pause)(xcc_domain *d);
    int (*unpause)(xcc_domain *d);

    /*
     * Optional (NULL): a backend that finds dirty pages by comparing page
     * contents (Xen's digest fallback) answers true while it does so. The
     * saver then sends pages from a copy and passes page_sent the exact
     * bytes the receiver will hold, so that the next clean compares the
     * guest against what was sent rather than against an earlier scan: a
     * transient state caught by a copy is then always sent again.
     * page_sent is called from the saver's encoding threads (--threads),
     * several at once but never twice at once for the same pfn.
     */
    bool (*dirty_by_content)(xcc_domain *d);
    void (*page_sent)(xcc_domain *d, uint64_t pfn, const void *page);

    /*
     * Optional (NULL: pages go as they are): rewrites page, a private copy
     * of pfn whose type the backend reported, into the bytes the stream
     * carries; the saver asks for every PV page table (L1..L4, pinned or
     * not): mfns become pfns, Xen's slots zero (xen_pt.h). Returns 0, or
     * -1 with errno EAGAIN when the table cannot be normalised while the
     * guest runs (it names a frame that is moving) and !final: the saver
     * sends it in a later pass. Any other failure (and EAGAIN's cause
     * when final) is logged naming the pfn.
     */
    int (*normalise)(xcc_domain *d, uint64_t pfn, unsigned type, void *page,
                     bool final);

    /*
     * Optional (NULL: pause and unpause instead): quiesce the guest for the
     * final pass and for each checkpoint, and let it run on afterwards.
     * suspend waits timeout_ms at most (0: the backend's default) for the
     * guest to answer; one that does not is left running (-1, XCC_ENOSUSPEND).
     * unpause of a suspended guest resumes it.
     */
    int (*suspend)(xcc_domain *d, uint32_t timeout_ms);
    int (*resume)(xcc_domain *d);

    /*
     * Optional (NULL: none, as for sim): the backend's domain-state records
     * for one phase of a save, in Xen's record format (xen_records.h),
     * handed to emit(opaque, type, iov, iovcnt) one record at a time, the
     * body as the concatenation of iov[]. STATIC: before STATIC_DATA_END
     * (X86_PV_INFO, CPU policy); START: after it, before the first page
     * (X86_PV_P2M_FRAMES); TAIL: after the last pages of a save or of a
     * checkpoint, with the guest paused or suspended (TSC, shared info,
     * every online vCPU). Returns the number of records emitted, or -1
     * with errno after logging (or emit's -1).
     */
    int (*state_records)(xcc_domain *d, enum domain_state_phase phase,
                         domain_record_fn *emit, void *opaque);

    /* Restore side: make pfns exist (allocate their memory). */
    int (*populate)(xcc_domain *d, const uint64_t *pfns, size_t n);

    /* Releases priv. The domain itself (guest) is left as it is. */
    void (*close)(xcc_domain *d);

    /*
     * The saver lock (one saver per domain: two would steal each other's
     * dirty log). Opens the domain's lock file and takes an exclusive
     * flock on it without waiting, via domain_lockfile(). Returns the
     * file's fd, or -1 with errno (EBUSY: another saver holds it, whose pid
     * is in *holder, 0 when unknown). NULL: the backend has no lock.
     */
    int (*lock)(xcc_domain *d, pid_t *holder);

    /*
     * Optional (NULL): sets bit p of bitmap (nr_pfns bits) for the pfns p
     * of [first, first + count) written since the previous clean, WITHOUT
     * re-arming the tracking (Xen's SHADOW_OP_PEEK): the next clean still
     * reports them. Bits outside the range may be set too. It only feeds a
     * prediction (hot pages cached during the first pass), so it may
     * under-report; a failure costs the prediction, not the save. Returns
     * the number of bits it set, or -1 with errno.
     */
    int64_t (*logdirty_peek)(xcc_domain *d, uint64_t *bitmap, uint64_t first,
                             uint64_t count);
};

/*
 * Mapping changes: a backend that sees a pfn's backing frame or type change
 * (ballooning, a page table freed, the PV p2m re-read) reports the pfn
 * range with domain_mapping_changed(); whoever keeps mappings across calls
 * (the map cache) asks domain_mapping_changes() before it hands out
 * pointers again, and drops what it holds of those ranges.
 */
enum domain_change_kind {
    /* The pfn is backed by another frame, or came or went: every mapping
     * of it shows the wrong page. */
    DOMAIN_CHANGE_FRAME = 1,
    /* Only whether it may be mapped writable changed (a PV page table
     * made or freed): writable mappings of it are wrong. */
    DOMAIN_CHANGE_WRITABLE = 2,
};

/* Changes kept for consumers that have not asked yet; one that falls
 * further behind is told that everything changed. */
#define DOMAIN_CHANGES_KEPT 64u

struct domain_change {
    uint64_t first, count;
    enum domain_change_kind kind;
};

struct xcc_domain {
    const struct xcc_domain_ops *ops;
    void *priv;
    xentoollog_logger *log;
    char *name; /* as given to xcc_domain_open */
    struct xcc_domain_info info;
    /* The saver lock (lock.c), taken for a whole save or checkpoint run. */
    bool locked;
    int lock_fd;

    /* Mapping changes reported so far; change number s (from 1) is in
     * changes[(s - 1) % DOMAIN_CHANGES_KEPT]. The domain belongs to one
     * thread, as its ops do. */
    uint64_t changes_seq;
    struct domain_change changes[DOMAIN_CHANGES_KEPT];

    /* xcc_domain_digest_exclude(): sorted, no repeats. */
    uint64_t *digest_excluded;
    size_t ndigest_excluded;
};

/* Reports that the mappings of pfns [first, first + count) changed. */
void domain_mapping_changed(xcc_domain *d, uint64_t first, uint64_t count,
                            enum domain_change_kind kind);

typedef void domain_change_fn(void *opaque, uint64_t first, uint64_t count,
                              enum domain_change_kind kind);

/*
 * Calls fn for every change reported after change number *seen (0: none
 * seen), oldest first, and sets *seen to the newest. When some of them are
 * no longer kept, calls fn once for every pfn (0, UINT64_MAX) instead.
 * Returns the number of fn calls.
 */
unsigned domain_mapping_changes(const xcc_domain *d, uint64_t *seen,
                                domain_change_fn *fn, void *opaque);

/*
 * A backend whose guest RAM is a file (sim's RAM file, the translator's
 * decode copy): maps pfns[i] (page i of fd) for every i with err[i] == 0
 * into one region, as ops->map does; slots with an error stay PROT_NONE.
 * n > 0. NULL with errno.
 */
void *domain_map_fd_pages(int fd, size_t psz, int prot, const uint64_t *pfns,
                          const int *err, size_t n);

/* Backend constructors, chosen by xcc_domain_open from the name's prefix. */
int sim_domain_open(xcc_domain *d, const char *simname, unsigned flags);
int xen_domain_open(xcc_domain *d, const char *idstr, unsigned flags);

/*
 * The saver lock (lock.c). domain_lock takes it through ops->lock, logging
 * who holds it when it is taken (-1, errno EBUSY). domain_lock_check
 * returns 0 while the locked domain still exists and -1 with errno
 * ENOENT once its lock file was removed (the guest was destroyed under the
 * save). domain_unlock releases it; all three accept an unlocked domain.
 */
int domain_lock(xcc_domain *d);
int domain_lock_check(xcc_domain *d);
void domain_unlock(xcc_domain *d);

/*
 * For backends: opens (creating, 0600, never through a symlink) the lock
 * file `name` in directory dirfd (or the absolute path `name`, dirfd
 * AT_FDCWD), flocks it exclusively without waiting and writes the caller's
 * pid into it. Returns the fd, or -1 with errno (EBUSY: *holder is the
 * pid found in the file, 0 when unknown).
 */
int domain_lockfile(int dirfd, const char *name, pid_t *holder);

#endif /* XCC_DOMAIN_H */
