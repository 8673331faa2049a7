/*
 * xen.c - the Xen domain backend: "xen:ID" or a bare domid.
 *
 * Built on libxenctrl (domain info, frame types, log-dirty, pause,
 * populate), libxenforeignmemory (mapping) and libxentoollog (logging);
 * xen_suspend.c adds libxenstore and libxenguest for suspend and resume.
 * HVM and PVH guests are mapped by gfn; PV guests by machine frame, through
 * the pfn -> mfn table that xen_p2m.c builds.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xen_priv.h"

/* Without this device node there is no hypervisor to talk to. */
#define XEN_PRIVCMD_PATH "/dev/xen/privcmd"

#define PAGE_BYTES 4096u
#define BITS_PER_WORD 64u

/* What a pfn's type means for a mapping of it (last_class[]). */
enum type_class {
    CLASS_NO_DATA = 0,   /* hole, ballooned out, broken: nothing to map */
    CLASS_DATA = 1,      /* RAM a mapping shows */
    CLASS_PAGETABLE = 2, /* RAM Xen will not map writable (PV L1..L4) */
    CLASS_UNKNOWN = 0xff /* not asked yet */
};

_Static_assert(sizeof(xen_pfn_t) == sizeof(uint64_t),
               "gfn arrays are passed to Xen as they are");
_Static_assert(sizeof(unsigned long) == sizeof(uint64_t),
               "Xen's dirty bitmap words are the ops' bitmap words");

static struct xen_dom *priv(xcc_domain *d)
{
    return d->priv;
}

static int xen_info(xcc_domain *d, struct xcc_domain_info *info)
{
    struct xen_dom *x = priv(d);
    xc_domaininfo_t di;

    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid) {
        XCC_ERR(d->log, "xen", "no Xen domain %u", x->domid);
        errno = ENOENT;
        return -1;
    }
    if (!x->pv) {
        xen_pfn_t gpfn;

        if (xc_domain_maximum_gpfn(x->xch, x->domid, &gpfn) < 0) {
            XCC_PERR(d->log, "xen", "dom%u: cannot read its highest gfn",
                     x->domid);
            return -1;
        }
        x->nr_pfns = (uint64_t)gpfn + 1;
    }
    info->nr_pfns = x->nr_pfns;
    info->page_size = PAGE_BYTES;
    info->stream_type = x->pv ? XCC_DHDR_TYPE_X86_PV : XCC_DHDR_TYPE_X86_HVM;
    info->xen_major = x->xen_major;
    info->xen_minor = x->xen_minor;
    return 0;
}

/* Grows a pfn-indexed array of `size`-byte entries to cover nr pfns,
 * filling new entries with `fill` bytes. Returns false on ENOMEM. */
static bool grow_pfn_array(void **arr, uint64_t *have, uint64_t nr,
                           size_t size, int fill)
{
    void *p;

    if (nr <= *have)
        return true;
    p = realloc(*arr, nr * size);
    if (!p)
        return false;
    memset((uint8_t *)p + *have * size, fill, (nr - *have) * size);
    *arr = p;
    *have = nr;
    return true;
}

void xen_report_change(struct xen_dom *x, uint64_t first, uint64_t count,
                       enum domain_change_kind kind)
{
    domain_mapping_changed(x->dom, first, count, kind);
    if (kind != DOMAIN_CHANGE_FRAME || first >= x->nr_pfns)
        return;
    if (count > x->nr_pfns - first)
        count = x->nr_pfns - first;
    if (!grow_pfn_array((void **)&x->moved, &x->moved_n,
                        XCC_DIV_ROUND_UP(x->nr_pfns, BITS_PER_WORD),
                        sizeof(uint64_t), 0)) {
        /* Without the bitmap the next clean cannot add them: the next
         * pass may miss their new content; say so. */
        XCC_WARN(x->log, "xen", "dom%u: out of memory noting moved pfns "
                 "%#" PRIx64 "+%" PRIu64, x->domid, first, count);
        return;
    }
    for (uint64_t p = first; p < first + count; p++)
        x->moved[p / BITS_PER_WORD] |= 1ull << (p % BITS_PER_WORD);
}

static enum type_class type_class(uint8_t type)
{
    if (!xcc_pfn_type_has_data(type))
        return CLASS_NO_DATA;
    return xcc_pfn_type_is_pagetable(type) ? CLASS_PAGETABLE : CLASS_DATA;
}

void xen_note_type_changes(struct xen_dom *x, const uint64_t *pfns,
                              const uint8_t *types, size_t n)
{
    pthread_mutex_lock(&x->p2m_lock);
    if (!grow_pfn_array((void **)&x->last_class, &x->last_class_n, x->nr_pfns,
                        1, CLASS_UNKNOWN)) {
        pthread_mutex_unlock(&x->p2m_lock);
        return; /* tracking is lost for now; the next call tries again */
    }
    for (size_t i = 0; i < n;) {
        uint64_t pfn = pfns[i];
        uint8_t old, now;
        size_t j;
        enum domain_change_kind kind;

        if (pfn >= x->last_class_n) {
            i++;
            continue;
        }
        old = x->last_class[pfn];
        now = (uint8_t)type_class(types[i]);
        x->last_class[pfn] = now;
        if (old == CLASS_UNKNOWN || old == now) {
            i++;
            continue;
        }
        kind = old == CLASS_NO_DATA || now == CLASS_NO_DATA
                   ? DOMAIN_CHANGE_FRAME
                   : DOMAIN_CHANGE_WRITABLE;
        /* One report for a run of consecutive pfns changing alike. */
        for (j = i + 1; j < n && pfns[j] == pfn + (j - i) &&
                        pfns[j] < x->last_class_n;
             j++) {
            uint8_t o = x->last_class[pfns[j]], c = (uint8_t)type_class(types[j]);

            if (o == CLASS_UNKNOWN || o == c ||
                (o == CLASS_NO_DATA || c == CLASS_NO_DATA
                     ? DOMAIN_CHANGE_FRAME
                     : DOMAIN_CHANGE_WRITABLE) != kind)
                break;
            x->last_class[pfns[j]] = c;
        }
        xen_report_change(x, pfn, j - i, kind);
        i = j;
    }
    pthread_mutex_unlock(&x->p2m_lock);
}

static int xen_pfn_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                         size_t n)
{
    struct xen_dom *x = priv(d);
    uint64_t *frames;
    int rc;

    if (!x->pv) {
        rc = xen_frame_types(x, pfns, types, n);
    } else {
        frames = malloc((n ? n : 1) * sizeof(*frames));
        if (!frames)
            return -1;
        pthread_mutex_lock(&x->p2m_lock);
        for (size_t i = 0; i < n; i++)
            frames[i] = xen_p2m_lookup(x, pfns[i]);
        pthread_mutex_unlock(&x->p2m_lock);
        rc = xen_frame_types(x, frames, types, n);
        free(frames);
    }
    if (rc == 0)
        xen_note_type_changes(x, pfns, types, n);
    return rc;
}

/*
 * A Xen built without shadow paging has no log-dirty mode for PV guests:
 * track by page digests instead (xen_softdirty.c), and say so. The
 * environment can ask for the digest scan on any Xen, so that one
 * hypervisor tests both paths: XCC_XEN_DIRTY=digest.
 */
#define XEN_DIRTY_ENV "XCC_XEN_DIRTY"

static int softdirty_enable(xcc_domain *d, bool forced)
{
    struct xen_dom *x = priv(d);

    if (forced)
        XCC_INFO(d->log, "xen", "dom%u: tracking dirty pages by digest, as "
                 XEN_DIRTY_ENV "=digest asks", x->domid);
    else
        XCC_WARN(d->log, "xen", "dom%u: this Xen has no log-dirty mode for "
                 "PV guests (built without shadow paging); tracking dirty "
                 "pages by digest instead", x->domid);
    if (xen_softdirty_enable(x) < 0) {
        XCC_PERR(d->log, "xen", "dom%u: cannot start digest dirty tracking",
                 x->domid);
        return -1;
    }
    return 0;
}

static int xen_logdirty_enable(xcc_domain *d)
{
    struct xen_dom *x = priv(d);
    size_t bytes = XCC_DIV_ROUND_UP(x->nr_pfns, BITS_PER_WORD) * 8;
    int pages = (int)XCC_DIV_ROUND_UP(bytes ? bytes : 1, PAGE_BYTES);
    const char *mode = getenv(XEN_DIRTY_ENV);

    if (mode && *mode && strcmp(mode, "digest") && strcmp(mode, "xen")) {
        XCC_ERR(d->log, "xen", "bad " XEN_DIRTY_ENV " '%s': expected "
                "'digest' or 'xen'", mode);
        errno = EINVAL;
        return -1;
    }
    if (mode && !strcmp(mode, "digest")) {
        if (!x->pv) {
            XCC_ERR(d->log, "xen", "dom%u: " XEN_DIRTY_ENV "=digest is for "
                    "PV guests only", x->domid);
            errno = EINVAL;
            return -1;
        }
        return softdirty_enable(d, true);
    }
    if (x->dirty_hbuf.hbuf && pages > x->dirty_hbuf_pages) {
        xc__hypercall_buffer_free_pages(x->xch, &x->dirty_hbuf,
                                        x->dirty_hbuf_pages);
        x->dirty_hbuf.hbuf = NULL;
    }
    if (!x->dirty_hbuf.hbuf) {
        if (!xc__hypercall_buffer_alloc_pages(x->xch, &x->dirty_hbuf, pages)) {
            XCC_PERR(d->log, "xen", "cannot allocate a %d-page dirty bitmap",
                     pages);
            return -1;
        }
        x->dirty_hbuf_pages = pages;
    }

    if (xc_shadow_control(x->xch, x->domid,
                          XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL, 0) < 0) {
        /*
         * A domain left in another shadow mode (say, by a save that died)
         * refuses; switching shadow off first clears that, as libxenguest
         * does.
         */
        int first = errno;

        XCC_DBG(d->log, "xen", "dom%u: log-dirty refused (%s); retrying "
                "after OFF", x->domid, strerror(first));
        xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
        if (xc_shadow_control(x->xch, x->domid,
                              XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, NULL,
                              0) < 0) {
            if (errno == EOPNOTSUPP && x->pv)
                return softdirty_enable(d, false);
            XCC_PERR(d->log, "xen", "dom%u: cannot enable log-dirty mode",
                     x->domid);
            return -1;
        }
    }
    x->logdirty_on = true;
    return 0;
}

static int xen_logdirty_disable(xcc_domain *d)
{
    struct xen_dom *x = priv(d);

    if (x->soft_on) {
        xen_softdirty_disable(x);
        return 0;
    }
    if (xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL,
                          0) < 0) {
        XCC_PERR(d->log, "xen", "dom%u: cannot switch log-dirty off",
                 x->domid);
        return -1;
    }
    x->logdirty_on = false;
    return 0;
}

static bool xen_dirty_by_content(xcc_domain *d)
{
    return priv(d)->soft_on;
}

static void xen_page_sent(xcc_domain *d, uint64_t pfn, const void *page)
{
    xen_softdirty_sent(priv(d), pfn, page);
}

/*
 * SHADOW_OP_PEEK: Xen's log-dirty bitmap read without clearing it, for pfns
 * [0, first + count) (the domctl has no start). Bits below first are
 * reported as well, which the interface allows. The soft-dirty fallback has
 * no peek: nothing is reported.
 */
static int64_t xen_logdirty_peek(xcc_domain *d, uint64_t *bitmap,
                                 uint64_t first, uint64_t count)
{
    struct xen_dom *x = priv(d);
    xc_shadow_op_stats_t stats;
    uint64_t pages, words;
    int64_t n = 0;

    if (x->soft_on || !x->logdirty_on || !x->dirty_hbuf.hbuf ||
        first >= x->nr_pfns || !count)
        return 0;
    pages = count > x->nr_pfns - first ? x->nr_pfns : first + count;
    words = XCC_DIV_ROUND_UP(pages, BITS_PER_WORD);
    memset(x->dirty_hbuf.hbuf, 0, words * 8);
    if (xc_logdirty_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_PEEK,
                            &x->dirty_hbuf, pages, 0, &stats) < 0) {
        XCC_PERR(d->log, "xen", "dom%u: cannot peek at the dirty bitmap",
                 x->domid);
        return -1;
    }
    const unsigned long *src = x->dirty_hbuf.hbuf;
    for (uint64_t w = first / BITS_PER_WORD; w < words; w++) {
        uint64_t v = src[w];
        if (w == words - 1 && pages % BITS_PER_WORD)
            v &= (1ull << (pages % BITS_PER_WORD)) - 1;
        bitmap[w] |= v;
        n += __builtin_popcountll(v);
    }
    return n;
}

static int64_t xen_logdirty_clean(xcc_domain *d, uint64_t *bitmap, bool final)
{
    struct xen_dom *x = priv(d);
    const uint64_t words = XCC_DIV_ROUND_UP(x->nr_pfns, BITS_PER_WORD);
    xc_shadow_op_stats_t stats;
    unsigned mode = 0;
    long long rc;
    int64_t count = 0;

    if (x->soft_on)
        return xen_softdirty_clean(x, bitmap, final);
    if (!x->logdirty_on || !x->dirty_hbuf.hbuf) {
        XCC_ERR(d->log, "xen", "dom%u: log-dirty is not enabled", x->domid);
        errno = EINVAL;
        return -1;
    }
    /*
     * On the final pass, also report pages Xen itself maps writable (the
     * vCPU info areas), which only FINAL includes.
     */
    if (final && !x->final_flag_unsupported)
        mode = XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL;
    memset(x->dirty_hbuf.hbuf, 0, words * 8);
    rc = xc_logdirty_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
                             &x->dirty_hbuf, x->nr_pfns, mode, &stats);
    if (rc < 0 && mode && errno == EINVAL) {
        x->final_flag_unsupported = true;
        XCC_DBG(d->log, "xen", "this Xen has no LOGDIRTY_FINAL; plain CLEAN");
        rc = xc_logdirty_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_CLEAN,
                                 &x->dirty_hbuf, x->nr_pfns, 0, &stats);
    }
    if (rc < 0) {
        XCC_PERR(d->log, "xen", "dom%u: cannot read the dirty bitmap",
                 x->domid);
        return -1;
    }
    const unsigned long *src = x->dirty_hbuf.hbuf;
    pthread_mutex_lock(&x->p2m_lock);
    for (uint64_t w = 0; w < words; w++) {
        uint64_t v = src[w];

        /* Pfns that moved to another frame: their bytes changed without
         * a write the log saw. */
        if (w < x->moved_n) {
            v |= x->moved[w];
            x->moved[w] = 0;
        }

        if (w == words - 1 && x->nr_pfns % BITS_PER_WORD)
            v &= (1ull << (x->nr_pfns % BITS_PER_WORD)) - 1;
        bitmap[w] |= v;
        count += __builtin_popcountll(v);
    }
    pthread_mutex_unlock(&x->p2m_lock);
    return count;
}

/* Maps frames[0..n) of the domain; err[] as xenforeignmemory_map. */
static void *map_frames(struct xen_dom *x, int prot, const uint64_t *frames,
                        int *err, size_t n)
{
    return xenforeignmemory_map(x->fmem, x->domid, prot, n,
                                (const xen_pfn_t *)frames, err);
}

/*
 * PV: true when some page failed although the table named a frame that the
 * domain no longer owns, i.e. the guest moved the pfn (ballooning, page
 * exchange) and the table must be re-read.
 */
static bool pv_frames_moved(struct xen_dom *x, const uint64_t *mfns,
                            const int *err, size_t n)
{
    uint64_t stale[64];
    uint8_t types[64];
    size_t ns = 0;

    for (size_t i = 0; i < n && ns < XCC_ARRAY_SIZE(stale); i++)
        if (err[i] && mfns[i] != XEN_P2M_INVALID)
            stale[ns++] = mfns[i];
    if (ns == 0 || xen_frame_types(x, stale, types, ns) < 0)
        return false;
    for (size_t i = 0; i < ns; i++)
        if (types[i] == XCC_PFN_XTAB)
            return true;
    return false;
}

/*
 * PV: Xen refuses writable foreign mappings of page-table pages (their
 * contents are machine frame numbers Xen validates) and of descriptor-table
 * pages (GDT/LDT). A memory-only restore must leave those of the target as
 * they are, so when a writable map hits some, the region is rebuilt: private anonymous memory for the whole
 * range, with the other pages mapped over it (MAP_FIXED) run by run. A
 * write to a page-table slot lands in the anonymous page and is dropped.
 * (Replacing single pages of a privcmd mapping is not possible: the kernel
 * will not split such a mapping.) Returns the region, which may be p
 * itself, or NULL with errno; *dropped counts the page-table slots.
 */
static void *pv_remap_around_pagetables(struct xen_dom *x, void *p, int prot,
                                        const uint64_t *mfns, int *err,
                                        size_t n, size_t *dropped)
{
    uint64_t frame[64];
    size_t slot[64], npt = 0;
    uint8_t types[64], *base;
    bool *pt = calloc(n, sizeof(*pt));

    *dropped = 0;
    if (!pt)
        return p;
    for (size_t i = 0; i < n;) {
        size_t k = 0;

        for (; i < n && k < XCC_ARRAY_SIZE(frame); i++) {
            if (err[i] && mfns[i] != XEN_P2M_INVALID) {
                slot[k] = i;
                frame[k++] = mfns[i];
            }
        }
        if (k == 0 || xen_frame_types(x, frame, types, k) < 0)
            continue;
        for (size_t j = 0; j < k; j++) {
            /*
             * EBUSY: the frame holds a type that excludes writable mappings
             * (a page table, or a descriptor table, which the type query
             * reports as plain RAM).
             */
            if (xcc_pfn_type_is_pagetable(types[j]) ||
                err[slot[j]] == -EBUSY) {
                pt[slot[j]] = true;
                npt++;
            }
        }
    }
    if (npt == 0) {
        free(pt);
        return p;
    }

    xenforeignmemory_unmap(x->fmem, p, n);
    base = mmap(NULL, n * PAGE_BYTES, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        free(pt);
        return NULL;
    }
    for (size_t i = 0; i < n;) {
        size_t j = i;

        if (pt[i]) {
            err[i++] = 0;
            continue;
        }
        while (j < n && !pt[j])
            j++;
        if (!xenforeignmemory_map2(x->fmem, x->domid, base + i * PAGE_BYTES,
                                   prot, MAP_FIXED, j - i,
                                   (const xen_pfn_t *)(mfns + i), err + i)) {
            int saved = errno;

            XCC_PERR(x->log, "xen", "dom%u: cannot map %zu frames around "
                     "page tables", x->domid, j - i);
            munmap(base, n * PAGE_BYTES);
            free(pt);
            errno = saved;
            return NULL;
        }
        i = j;
    }
    free(pt);
    *dropped = npt;
    return base;
}

static void *xen_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                     int *err, size_t n)
{
    struct xen_dom *x = priv(d);
    const int prot = writable ? PROT_READ | PROT_WRITE : PROT_READ;
    uint64_t *mfns;
    void *p;

    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (!x->pv)
        return map_frames(x, prot, pfns, err, n);

    mfns = malloc(n * sizeof(*mfns));
    if (!mfns)
        return NULL;
    for (int attempt = 0;; attempt++) {
        pthread_mutex_lock(&x->p2m_lock);
        for (size_t i = 0; i < n; i++)
            mfns[i] = xen_p2m_lookup(x, pfns[i]);
        pthread_mutex_unlock(&x->p2m_lock);

        p = map_frames(x, prot, mfns, err, n);
        if (!p || attempt > 0 || !pv_frames_moved(x, mfns, err, n))
            break;
        /* The guest changed its p2m under us: re-read it, map again. */
        xenforeignmemory_unmap(x->fmem, p, n);
        pthread_mutex_lock(&x->p2m_lock);
        int rc = xen_p2m_build(x);
        x->p2m_refreshes++;
        pthread_mutex_unlock(&x->p2m_lock);
        XCC_INFO(d->log, "xen", "dom%u: a mapped frame had moved; p2m re-read "
                 "(%u so far)", x->domid, x->p2m_refreshes);
        if (rc < 0) {
            p = NULL;
            break;
        }
    }
    if (p && writable) {
        size_t k;

        p = pv_remap_around_pagetables(x, p, prot, mfns, err, n, &k);
        if (k) {
            x->pagetable_writes_dropped += k;
            XCC_DBG(d->log, "xen", "dom%u: %zu page-table pages mapped "
                    "to a scratch page", x->domid, k);
        }
    }
    if (p) {
        /* Holes: report them as such, whatever the kernel said. */
        for (size_t i = 0; i < n; i++)
            if (mfns[i] == XEN_P2M_INVALID)
                err[i] = -ENOENT;
    }
    free(mfns);
    return p;
}

static int xen_normalise(xcc_domain *d, uint64_t pfn, unsigned type,
                         void *page, bool final)
{
    return xen_normalise_page(priv(d), pfn, type, page, final);
}

static int xen_unmap(xcc_domain *d, void *addr, size_t n)
{
    return xenforeignmemory_unmap(priv(d)->fmem, addr, n);
}

static int xen_pause(xcc_domain *d)
{
    struct xen_dom *x = priv(d);

    if (xc_domain_pause(x->xch, x->domid) < 0) {
        XCC_PERR(d->log, "xen", "cannot pause dom%u", x->domid);
        return -1;
    }
    return 0;
}

static int xen_unpause(xcc_domain *d)
{
    struct xen_dom *x = priv(d);

    /* A suspended guest is shut down: only a resume lets it run. */
    if (x->suspended || xen_suspend_is_suspended(x))
        return xen_resume(d);

    if (xc_domain_unpause(x->xch, x->domid) < 0) {
        XCC_PERR(d->log, "xen", "cannot unpause dom%u", x->domid);
        return -1;
    }
    return 0;
}

static int xen_populate(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    struct xen_dom *x = priv(d);
    uint8_t *types = malloc(n ? n : 1);
    xen_pfn_t *todo = malloc((n ? n : 1) * sizeof(*todo));
    uint64_t *want = malloc((n ? n : 1) * sizeof(*want));
    size_t nt = 0;
    int ret = -1;

    if (!types || !todo || !want)
        goto out;
    /* Populating a pfn that exists would leak (PV) or replace its frame. */
    if (xen_pfn_types(d, pfns, types, n) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (types[i] != XCC_PFN_XTAB)
            continue;
        want[nt] = pfns[i];
        todo[nt++] = (xen_pfn_t)pfns[i];
    }
    if (nt == 0) {
        ret = 0;
        goto out;
    }
    if (xc_domain_populate_physmap_exact(x->xch, x->domid, nt, 0, 0, todo) <
        0) {
        XCC_PERR(d->log, "xen", "dom%u: cannot populate %zu pfns (first %#"
                 PRIx64 ")", x->domid, nt, want[0]);
        goto out;
    }
    if (x->pv) {
        /* For PV, Xen hands back the new machine frames in place. */
        uint64_t top = 0;

        for (size_t i = 0; i < nt; i++)
            if (want[i] + 1 > top)
                top = want[i] + 1;
        pthread_mutex_lock(&x->p2m_lock);
        if (top > x->nr_pfns) {
            uint64_t *np = realloc(x->p2m, top * sizeof(*np));

            if (!np) {
                pthread_mutex_unlock(&x->p2m_lock);
                goto out;
            }
            for (uint64_t p = x->nr_pfns; p < top; p++)
                np[p] = XEN_P2M_INVALID;
            x->p2m = np;
            x->nr_pfns = top;
        }
        for (size_t i = 0; i < nt; i++)
            x->p2m[want[i]] = todo[i];
        pthread_mutex_unlock(&x->p2m_lock);
    }
    ret = 0;
out:
    free(types);
    free(todo);
    free(want);
    return ret;
}

static void xen_close(xcc_domain *d)
{
    struct xen_dom *x = priv(d);

    if (!x)
        return;
    if (x->pagetable_writes_dropped)
        XCC_INFO(d->log, "xen", "dom%u: %" PRIu64 " writes to page-table "
                 "pages were dropped (a PV memory-only restore keeps the "
                 "target's page tables)", x->domid, x->pagetable_writes_dropped);
    /* A save that stopped early must not leave the guest in shadow mode. */
    if (x->logdirty_on)
        xc_shadow_control(x->xch, x->domid, XEN_DOMCTL_SHADOW_OP_OFF, NULL, 0);
    xen_softdirty_disable(x);
    xen_suspend_close(x);
    xen_m2p_unmap(x);
    if (x->dirty_hbuf.hbuf)
        xc__hypercall_buffer_free_pages(x->xch, &x->dirty_hbuf,
                                        x->dirty_hbuf_pages);
    if (x->fmem)
        xenforeignmemory_close(x->fmem);
    if (x->xch)
        xc_interface_close(x->xch);
    pthread_mutex_destroy(&x->p2m_lock);
    free(x->p2m);
    free(x->p2m_leaves);
    free(x->last_class);
    free(x->moved);
    free(x);
    d->priv = NULL;
}

/* Where the saver locks of Xen domains live, one file per domid. */
#define XEN_LOCK_DIR "/run/xc-colo"

/*
 * The saver lock (lock.c): XEN_LOCK_DIR/xen-DOMID.lock. The directory is
 * created 0700 and used only when it is a real directory owned by us, so
 * another user cannot point it elsewhere.
 */
static int xen_lock(xcc_domain *d, pid_t *holder)
{
    struct xen_dom *x = d->priv;
    char name[32];
    struct stat st;
    int dfd, fd, e;

    *holder = 0;
    if (mkdir(XEN_LOCK_DIR, 0700) < 0 && errno != EEXIST)
        return -1;
    dfd = open(XEN_LOCK_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    if (fstat(dfd, &st) < 0 || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        XCC_ERR(d->log, "xen", "%s is not a private directory of this user",
                XEN_LOCK_DIR);
        close(dfd);
        errno = EPERM;
        return -1;
    }
    snprintf(name, sizeof(name), "xen-%" PRIu32 ".lock", x->domid);
    fd = domain_lockfile(dfd, name, holder);
    e = errno;
    close(dfd);
    errno = e;
    return fd;
}

static const struct xcc_domain_ops xen_ops = {
    .kind = "xen",
    .info = xen_info,
    .pfn_types = xen_pfn_types,
    .logdirty_enable = xen_logdirty_enable,
    .logdirty_disable = xen_logdirty_disable,
    .logdirty_clean = xen_logdirty_clean,
    .dirty_by_content = xen_dirty_by_content,
    .page_sent = xen_page_sent,
    .map = xen_map,
    .unmap = xen_unmap,
    .pause = xen_pause,
    .unpause = xen_unpause,
    .normalise = xen_normalise,
    .suspend = xen_suspend,
    .resume = xen_resume,
    .state_records = xen_state_records,
    .populate = xen_populate,
    .close = xen_close,
    .lock = xen_lock,
    .logdirty_peek = xen_logdirty_peek,
};

/* Parses a domid: decimal, below Xen's reserved ids. */
static int parse_domid(xcc_domain *d, const char *s, uint32_t *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v >= DOMID_FIRST_RESERVED || s[0] == '-' ||
        s[0] == '+') {
        XCC_ERR(d->log, "xen", "bad Xen domain id '%s': expected a number "
                "from 1 to %u", s, DOMID_FIRST_RESERVED - 1);
        errno = XCC_EBADDOMAIN;
        return -1;
    }
    if (v == 0) {
        XCC_ERR(d->log, "xen", "domain 0 is dom0, which cannot be saved or "
                "restored");
        errno = XCC_EBADDOMAIN;
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

int xen_domain_open(xcc_domain *d, const char *idstr, unsigned flags)
{
    struct xen_dom *x;
    xc_domaininfo_t di;
    uint32_t domid;
    int ver;

    (void)flags;
    if (parse_domid(d, idstr, &domid) < 0)
        return -1;
    if (access(XEN_PRIVCMD_PATH, F_OK) < 0) {
        XCC_ERR(d->log, "xen", "no Xen hypervisor: %s not found",
                XEN_PRIVCMD_PATH);
        errno = XCC_ENOXEN;
        return -1;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return -1;
    x->domid = domid;
    x->dom = d;
    x->log = d->log;
    pthread_mutex_init(&x->p2m_lock, NULL);
    d->priv = x;
    d->ops = &xen_ops;

    x->xch = xc_interface_open(d->log, d->log, 0);
    if (!x->xch) {
        XCC_PERR(d->log, "xen", "cannot open the Xen control interface");
        goto fail;
    }
    if (xc_domain_getinfolist(x->xch, domid, 1, &di) != 1 ||
        di.domain != domid) {
        XCC_ERR(d->log, "xen", "no Xen domain %u", domid);
        errno = ENOENT;
        goto fail;
    }
    if (di.flags & XEN_DOMINF_dying) {
        XCC_ERR(d->log, "xen", "Xen domain %u is being destroyed", domid);
        errno = ENOENT;
        goto fail;
    }
    x->pv = !(di.flags & XEN_DOMINF_hvm_guest);
    ver = xc_version(x->xch, XENVER_version, NULL);
    if (ver > 0) {
        x->xen_major = (uint32_t)ver >> 16;
        x->xen_minor = (uint32_t)ver & 0xffff;
    }
    x->fmem = xenforeignmemory_open(d->log, 0);
    if (!x->fmem) {
        XCC_PERR(d->log, "xen", "cannot open foreign memory mapping");
        goto fail;
    }
    if (x->pv) {
        unsigned width = 0;

        if (xc_domain_get_guest_width(x->xch, domid, &width) < 0) {
            XCC_PERR(d->log, "xen", "dom%u: cannot read its guest width",
                     domid);
            goto fail;
        }
        x->guest_width = width;
        if (xen_p2m_build(x) < 0)
            goto fail;
    }
    XCC_INFO(d->log, "xen", "dom%u: %s guest, %" PRIu64 " pfns%s%s, Xen %u.%u",
             domid, x->pv ? "PV" : "HVM/PVH", x->nr_pfns,
             x->pv ? ", p2m from the " : "", x->pv ? x->p2m_source : "",
             x->xen_major, x->xen_minor);
    return 0;

fail: {
    int saved = errno;

    xen_close(d);
    d->ops = NULL;
    errno = saved;
    return -1;
}
}
