/*
 * xen_priv.h - state shared by the Xen backend's files (xen.c, xen_p2m.c,
 * xen_m2p.c, xen_softdirty.c, xen_suspend.c). Only these files include Xen's
 * control headers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_XEN_PRIV_H
#define XCC_XEN_PRIV_H

#include <pthread.h>

#include <xenctrl.h>
#include <xenforeignmemory.h>

#include "domain.h"

/* A p2m slot with no frame behind it. */
#define XEN_P2M_INVALID (~(uint64_t)0)

/*
 * libxenctrl 4.17 exports this (XEN_DOMCTL_getpageframeinfo3) but declares
 * it only in its private header. On entry arr[] holds frames (mfns for PV,
 * gfns for HVM); on return each holds XEN_DOMCTL_PFINFO_* bits. Xen takes
 * at most XEN_PFN_TYPE_BATCH entries per call.
 */
int xc_get_pfn_type_batch(xc_interface *xch, uint32_t dom, unsigned int num,
                          xen_pfn_t *arr);
#define XEN_PFN_TYPE_BATCH 1024u

struct xen_dom {
    xcc_domain *dom; /* the handle: mapping changes are reported on it */
    xc_interface *xch;
    xenforeignmemory_handle *fmem;
    xentoollog_logger *log;
    uint32_t domid;
    bool pv;              /* mapped by machine frame through p2m[] */
    unsigned guest_width; /* PV: bytes per p2m entry, 4 or 8 */
    uint64_t nr_pfns;
    uint32_t xen_major, xen_minor;

    /*
     * PV only: pfn -> mfn, a private copy. It is a copy, not a live view of
     * the guest's p2m pages, because a memory-only restore overwrites those
     * pages with the source's frame numbers.
     */
    pthread_mutex_t p2m_lock;
    uint64_t *p2m;
    const char *p2m_source; /* "frame-list" or "m2p", for the log */
    /* The mfns of the guest's p2m pages (frame-list source only; NULL
     * otherwise): X86_PV_P2M_FRAMES (xen_state.c). */
    uint64_t *p2m_leaves;
    uint64_t nr_p2m_leaves;
    bool said_not_suspended; /* xen_state.c warned once */
    unsigned p2m_refreshes;
    uint64_t pagetable_writes_dropped; /* see xen.c, writable PV maps */

    /*
     * Mapping changes (domain_mapping_changed), under p2m_lock: the type
     * class each pfn had when last asked (TYPE_UNKNOWN: never asked), and
     * the pfns whose frame changed since the last dirty-log clean, which
     * the next clean reports dirty (a frame given back by Xen was not
     * written by the guest, so the log never shows it).
     */
    uint8_t *last_class;
    uint64_t last_class_n;
    uint64_t *moved;
    uint64_t moved_n;

    /*
     * Xen's machine-to-phys table (xen_m2p.c), mapped read-only on first
     * use: m2p[mfn] is the pfn Xen last recorded for frame mfn. A test
     * presets m2p (m2p_pages 0: not ours to unmap).
     */
    const xen_pfn_t *m2p;
    uint64_t m2p_entries;
    size_t m2p_pages;

    /* Software dirty tracking (xen_softdirty.c), when Xen has none. */
    bool soft_on;
    uint64_t soft_nr;             /* pfns covered by the mapping */
    void **soft_chunk;            /* persistent read-only mappings */
    size_t soft_nchunks;
    int *soft_err;                /* per pfn: mapping error */
    uint64_t *soft_digest;        /* per pfn: XXH64 of the bytes last sent,
                                     or of the last scan */
    uint64_t *soft_live;          /* pfns a live clean reported */
    unsigned soft_map_generation; /* p2m_refreshes when mapped */

    /* Cooperative suspend (xen_suspend.c): xenstore, opened on the first
     * suspend; suspended while the guest is shut down for suspend by us. */
    struct xs_handle *xsh;
    bool suspended;

    /* Log-dirty: a hypercall-safe bitmap of nr_pfns bits. */
    bool logdirty_on;
    bool final_flag_unsupported;
    xc_hypercall_buffer_t dirty_hbuf;
    int dirty_hbuf_pages;
};

/*
 * Builds (or rebuilds) x->p2m and sets x->nr_pfns for a PV domain: from the
 * guest's p2m frame-list-list, found through shared_info, when the guest
 * has published one whose frames it owns; otherwise (a domain that has not
 * booted yet, or whose p2m pages a memory-only restore has overwritten) by
 * scanning Xen's machine-to-phys table for the frames the domain owns.
 * Called with p2m_lock held or before the domain is shared. Returns 0, or
 * -1 with errno after logging.
 */
int xen_p2m_build(struct xen_dom *x);

/*
 * Reports pfns [first, first + count) as mapped differently (kind: a
 * domain_change_kind) to the handle's consumers; FRAME changes are also
 * reported dirty at the next clean. Caller holds p2m_lock.
 */
void xen_report_change(struct xen_dom *x, uint64_t first, uint64_t count,
                       enum domain_change_kind kind);

/*
 * After a type query: compares each pfn's type class (no data, data, PV
 * page table) with the one it had when last asked and reports the changes
 * with xen_report_change: data appearing or going (ballooning) as FRAME, a
 * page table made or freed as WRITABLE. A pfn's first answer is only
 * recorded. Takes p2m_lock.
 */
void xen_note_type_changes(struct xen_dom *x, const uint64_t *pfns,
                           const uint8_t *types, size_t n);

/* Machine frame of pfn, or XEN_P2M_INVALID. Caller holds p2m_lock. */
static inline uint64_t xen_p2m_lookup(const struct xen_dom *x, uint64_t pfn)
{
    return pfn < x->nr_pfns ? x->p2m[pfn] : XEN_P2M_INVALID;
}

/*
 * Xen's type of each frame in frames[0..n) (mfns for PV, gfns for HVM), as
 * XCC_PFN_*. XEN_P2M_INVALID frames are holes (XTAB). Returns 0 or -1.
 */
int xen_frame_types(struct xen_dom *x, const uint64_t *frames, uint8_t *types,
                    size_t n);

/*
 * mfn -> pfn for a PV domain (xen_m2p.c): through Xen's M2P (mapped on
 * first use), checked against the p2m, as libxenguest's
 * mfn_in_pseudophysmap does: 0 with *pfn when m2p[mfn] is a pfn of the
 * domain whose p2m entry is mfn again; -1 with errno ERANGE when it is not
 * (not the domain's frame, or the guest is moving it), or the mapping
 * errno. Takes p2m_lock.
 */
int xen_mfn_to_pfn(struct xen_dom *x, uint64_t mfn, uint64_t *pfn);

/*
 * The normalise op (xen_m2p.c, xen_pt.c): rewrites the copy page (4 KiB)
 * of page-table pfn of type (L1..L4, pinned or not) for the stream. 0, or
 * -1 with errno: EAGAIN when an entry names a frame that is not (or no
 * longer) the guest's and !final (the saver sends it in a later pass);
 * otherwise the error is logged naming the pfn, slot and entry.
 */
int xen_normalise_page(struct xen_dom *x, uint64_t pfn, unsigned type,
                       void *page, bool final);

/* Unmaps the M2P if xen_m2p.c mapped it. */
void xen_m2p_unmap(struct xen_dom *x);

/* The state_records op (xen_state.c). */
int xen_state_records(xcc_domain *d, enum domain_state_phase phase,
                      domain_record_fn *emit, void *opaque);

/*
 * Dirty tracking by page digests, for PV guests when Xen has no log-dirty
 * mode for them (a hypervisor built without shadow paging). Same contract
 * as the ops' logdirty_enable / logdirty_clean / logdirty_disable.
 */
int xen_softdirty_enable(struct xen_dom *x);
int64_t xen_softdirty_clean(struct xen_dom *x, uint64_t *bitmap, bool final);
void xen_softdirty_sent(struct xen_dom *x, uint64_t pfn, const void *page);
void xen_softdirty_disable(struct xen_dom *x);

/*
 * Cooperative suspend (xen_suspend.c), the ops' suspend and resume.
 * xen_suspend asks the guest to suspend itself (control/shutdown =
 * "suspend" in xenstore) and waits, timeout_ms at most (0: the default),
 * until Xen reports it shut down with SHUTDOWN_suspend. A guest that has
 * not acknowledged by then has the request withdrawn and runs on: -1 with
 * errno XCC_ENOSUSPEND. xen_resume resumes a guest shut down for suspend in
 * place (xc_domain_resume, fast: the guest sees its suspend cancelled).
 * xen_suspend_close releases xenstore (from xen_close).
 */
#define XEN_SUSPEND_DEFAULT_TIMEOUT_MS 30000u
int xen_suspend(xcc_domain *d, uint32_t timeout_ms);
int xen_resume(xcc_domain *d);
/* True when the guest is shut down for suspend (by us or another tool):
 * unpausing it means resuming it. */
bool xen_suspend_is_suspended(struct xen_dom *x);
void xen_suspend_close(struct xen_dom *x);

/*
 * The wait for a suspend as a state machine without Xen, so that its
 * timing is unit-tested. Each look at the domain gives an observation;
 * xen_suspend_wait_step says what to do next.
 */
enum xen_suspend_state {
    XEN_SUSPEND_REQUESTED, /* "suspend" written, not yet acknowledged */
    XEN_SUSPEND_ACKED,     /* the guest cleared the node: it is suspending */
    XEN_SUSPEND_DONE,      /* shut down with SHUTDOWN_suspend */
    XEN_SUSPEND_FAILED,
};

struct xen_suspend_obs {
    bool gone;            /* no such domain any more, or dying */
    bool shutdown;        /* Xen reports it shut down ... */
    unsigned reason;      /* ... with this SHUTDOWN_* code */
    bool request_pending; /* control/shutdown still reads "suspend" */
};

enum xen_suspend_verdict {
    XEN_SUSPEND_WAIT,      /* look again, after xen_suspend_wait_poll_ms */
    XEN_SUSPEND_SUSPENDED, /* done: the guest is suspended */
    XEN_SUSPEND_WITHDRAW,  /* time is up, no answer: withdraw the request */
    XEN_SUSPEND_STUCK,     /* acknowledged, but not suspended in time */
    XEN_SUSPEND_GONE,      /* the domain went away */
    XEN_SUSPEND_OTHER,     /* it shut down for another reason */
};

struct xen_suspend_wait {
    enum xen_suspend_state state;
    uint64_t t_request, t_ack, t_done; /* ns, caller's clock */
    uint64_t deadline;                 /* ns */
    uint64_t timeout_ns;
    unsigned looks;
};

/* Between two looks without a watch event, at most (ms). */
#define XEN_SUSPEND_POLL_MS 20

void xen_suspend_wait_init(struct xen_suspend_wait *w, uint64_t now_ns,
                           uint32_t timeout_ms);
enum xen_suspend_verdict xen_suspend_wait_step(struct xen_suspend_wait *w,
                                               const struct xen_suspend_obs *o,
                                               uint64_t now_ns);
/* A withdrawal found the request acknowledged at the last moment: the
 * guest is suspending; wait for it as long again. */
void xen_suspend_wait_late_ack(struct xen_suspend_wait *w, uint64_t now_ns);
/* How long to sleep before the next look (ms, 0..XEN_SUSPEND_POLL_MS). */
int xen_suspend_wait_poll_ms(const struct xen_suspend_wait *w,
                             uint64_t now_ns);

#endif /* XCC_XEN_PRIV_H */
