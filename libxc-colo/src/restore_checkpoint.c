/*
 * restore_checkpoint.c - the receiver of a checkpoint stream: buffered
 * epochs, commit, failover, and the COLO secondary's side.
 *
 * Before the first CHECKPOINT the records are applied as they come, as a
 * plain restore applies them (the target is incomplete until checkpoint 1:
 * the live phase and the first paused pass make checkpoint 1 together).
 * A stream that breaks before it leaves nothing to keep.
 *
 * After it, every record of an epoch is checked and staged, not applied:
 * each page's final bytes are built in a scratch page (a copy; an XBZRLE
 * delta decodes onto the page as the previous checkpoint left it, or as an
 * earlier record of the same epoch left it), the target untouched. Only the
 * epoch's CHECKPOINT commits: the scratch pages are copied into the target,
 * a step that reads nothing from the stream and so cannot be torn by it.
 * When the stream breaks or goes bad mid-epoch, the scratch pages are
 * dropped and the target holds the last checkpoint exactly (DESIGN.md,
 * invariant 2); the call fails with XCC_EFAILOVER and says which one.
 *
 * The back channel (when there is one): headers, then a CHECKPOINT record
 * after each commit (the acknowledgement), in COLO mode one
 * CHECKPOINT_DIRTY_PFN_LIST per epoch, and END at the end.
 *
 * COLO: the caller runs the guest after each commit (on_commit). The first
 * record of the next epoch (the sender's marker) pauses it, before anything
 * of the epoch is applied; its dirty log is harvested and sent back, and the
 * primary includes those pages in the epoch. END may carry a last, closing
 * epoch: the pages the guest wrote after the last commit, taken back.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "compress.h"
#include "restore.h"

#define CTX "restore"

/* Pages resolved per map-cache lookup when committing. */
#define COMMIT_BATCH 1024u

enum slot_kind { SLOT_DATA = 1, SLOT_ZERO = 2 };

/* The staged epoch: pfn -> scratch page. */
struct epoch {
    uint32_t *slot_of;  /* nr_pfns entries: slot + 1, 0 for none */
    uint64_t *pfn;      /* per slot */
    uint8_t *kind;      /* per slot: SLOT_* */
    uint8_t *data;      /* per slot: page_size bytes */
    uint8_t *undo;      /* per slot: the target's page before the commit,
                         * kept while a DIGEST is to be checked */
    size_t n, cap, undo_cap;
    uint64_t records;   /* records read in this epoch */
    uint8_t *digest;    /* a copy of the epoch's DIGEST body, or NULL */
    uint32_t digest_len;
    uint64_t digest_off;
};

struct ckrun {
    xcc_restorer *r;
    const struct xcc_checkpoint_restore_params *p;
    struct epoch ep;
    struct stream_writer *back; /* NULL: no back channel (or it broke) */
    uint64_t *bitmap;           /* COLO harvest */
    uint64_t *pfns;             /* COLO list / commit batch */
    uint8_t **pages;
    int *err;
    bool guest_paused;          /* COLO: paused for the current epoch */
    bool logdirty_on;
    uint64_t committed;         /* checkpoints in the target */
    uint64_t commit_ns_total, commit_ns_max;
};

void xcc_checkpoint_restore_params_init(struct xcc_checkpoint_restore_params *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->back_fd = -1;
}

/* Makes pfns exist in the target, once each (no content changes); pfns
 * may be k->pfns itself. */
static int ck_populate(struct ckrun *k, const uint64_t *pfns, size_t n)
{
    return restore_populate(k->r, pfns, n, k->pfns);
}

/* ---- Staging ------------------------------------------------------------- */

static void epoch_free(struct epoch *ep)
{
    free(ep->slot_of);
    free(ep->pfn);
    free(ep->kind);
    free(ep->data);
    free(ep->undo);
    free(ep->digest);
}

/* Forgets the staged pages (after a commit, or to discard). */
static void epoch_reset(struct epoch *ep)
{
    for (size_t i = 0; i < ep->n; i++)
        ep->slot_of[ep->pfn[i]] = 0;
    ep->n = 0;
    ep->records = 0;
    free(ep->digest);
    ep->digest = NULL;
}

/* The slot of pfn, made when absent (*fresh then set). NULL: ENOMEM. */
static uint8_t *epoch_slot(xcc_restorer *r, struct epoch *ep, uint64_t pfn,
                           size_t *idx, bool *fresh)
{
    const size_t psz = r->page_size;
    uint32_t s = ep->slot_of[pfn];

    *fresh = false;
    if (s) {
        *idx = s - 1;
        return ep->data + (size_t)(s - 1) * psz;
    }
    if (ep->n == ep->cap) {
        size_t cap = ep->cap ? 2 * ep->cap : 1024;
        uint64_t *pf = realloc(ep->pfn, cap * sizeof(*pf));
        if (pf)
            ep->pfn = pf;
        uint8_t *kd = realloc(ep->kind, cap);
        if (kd)
            ep->kind = kd;
        uint8_t *dt = realloc(ep->data, cap * psz);
        if (dt)
            ep->data = dt;
        if (!pf || !kd || !dt) {
            restore_fail(r, ENOMEM, "cannot buffer an epoch of %zu pages", cap);
            return NULL;
        }
        ep->cap = cap;
    }
    *idx = ep->n;
    ep->pfn[ep->n] = pfn;
    ep->kind[ep->n] = SLOT_DATA;
    ep->slot_of[pfn] = (uint32_t)(++ep->n);
    *fresh = true;
    return ep->data + (ep->n - 1) * psz;
}

static int stage_page_data(struct ckrun *k, const struct stream_record *rec)
{
    xcc_restorer *r = k->r;
    struct stream_page_data pd;
    size_t m = 0;

    if (compress_parse_pages(r->rd, rec, r->limit_pfns, r->page_size, &pd) < 0 ||
        restore_check_types(r, rec, &pd) < 0)
        return -1;
    for (size_t i = 0; i < pd.count; i++)
        if (pd.pages[i] || pd.types[i] == XCC_PFN_XALLOC)
            k->pfns[m++] = pd.pfns[i];
    if (ck_populate(k, k->pfns, m) < 0)
        return -1;
    for (size_t i = 0; i < pd.count; i++) {
        size_t idx;
        bool fresh;
        uint8_t *slot;

        if (!pd.pages[i]) {
            r->st.nodata++;
            continue;
        }
        slot = epoch_slot(r, &k->ep, pd.pfns[i], &idx, &fresh);
        if (!slot)
            return -1;
        memcpy(slot, pd.pages[i], r->page_size);
        k->ep.kind[idx] = SLOT_DATA;
        r->st.normal++;
    }
    return 0;
}

static int stage_zero_pages(struct ckrun *k, const struct stream_record *rec)
{
    xcc_restorer *r = k->r;
    struct stream_pfn_list zl;

    if (stream_parse_zero_pages(r->rd, rec, r->limit_pfns, &zl) < 0 ||
        restore_check_pfn_types(r, rec, zl.pfns, zl.types, zl.count) < 0)
        return -1;
    if (ck_populate(k, zl.pfns, zl.count) < 0)
        return -1;
    for (size_t i = 0; i < zl.count; i++) {
        size_t idx;
        bool fresh;

        if (!epoch_slot(r, &k->ep, zl.pfns[i], &idx, &fresh))
            return -1;
        k->ep.kind[idx] = SLOT_ZERO;
    }
    r->st.zero += zl.count;
    return 0;
}

/* Reads the target's page of pfn (as the last checkpoint left it). */
static int read_target_page(struct ckrun *k, uint64_t pfn, uint8_t *out)
{
    xcc_restorer *r = k->r;
    uint8_t *page = NULL;
    int err = 0;
    int64_t got = xcc_map_cache_lookup(r->mc, &pfn, 1, &page, &err);

    if (got != 1 || err || !page)
        return restore_fail(r, err ? -err : (errno ? errno : EIO),
                       "cannot map pfn %#" PRIx64 " of '%s' to read it",
                       pfn, r->d->name);
    memcpy(out, page, r->page_size);
    xcc_map_cache_release(r->mc);
    return 0;
}

static int stage_xbzrle(struct ckrun *k, const struct stream_record *rec)
{
    xcc_restorer *r = k->r;
    struct stream_xbzrle_pages x;

    if (stream_parse_xbzrle_pages(r->rd, rec, r->limit_pfns, r->page_size,
                                  &x) < 0 ||
        restore_check_pfn_types(r, rec, x.pfns, x.types, x.count) < 0)
        return -1;
    if (ck_populate(k, x.pfns, x.count) < 0)
        return -1;
    for (size_t i = 0; i < x.count; i++) {
        size_t idx;
        bool fresh;
        uint8_t *slot = epoch_slot(r, &k->ep, x.pfns[i], &idx, &fresh);

        if (!slot)
            return -1;
        /* The base: this epoch's own copy, else the committed page. */
        if (fresh) {
            if (read_target_page(k, x.pfns[i], slot) < 0)
                return -1;
        } else if (k->ep.kind[idx] == SLOT_ZERO) {
            memset(slot, 0, r->page_size);
        }
        k->ep.kind[idx] = SLOT_DATA;
        if (xcc_xbzrle_decode(x.deltas[i], x.lens[i], slot, r->page_size) < 0)
            return restore_fail(r, XCC_EBADSTREAM,
                           "XBZRLE_PAGES record at offset %" PRIu64 ": the "
                           "delta of pfn %#" PRIx64 " (entry %zu) does not "
                           "decode", rec->offset, x.pfns[i], i);
        r->st.xbzrle_bytes += x.lens[i];
    }
    r->st.xbzrle += x.count;
    return 0;
}

static int stage_digest(struct ckrun *k, const struct stream_record *rec)
{
    xcc_restorer *r = k->r;
    struct stream_digest dg;
    const uint64_t pfns = r->guest_info_seen ? r->info.nr_pfns : r->nr_pfns;

    /* Checked now, compared after the commit it describes. */
    if (stream_parse_digest(r->rd, rec, pfns, &dg) < 0)
        return -1;
    free(k->ep.digest);
    k->ep.digest = malloc(rec->length ? rec->length : 1);
    if (!k->ep.digest)
        return restore_fail(r, ENOMEM, "cannot keep a DIGEST record");
    memcpy(k->ep.digest, rec->body, rec->length);
    k->ep.digest_len = rec->length;
    k->ep.digest_off = rec->offset;
    return 0;
}

/* ---- Commit -------------------------------------------------------------- */

/*
 * Copies the staged pages into the target. Nothing here reads the stream,
 * and every page was built beforehand, so only a failing target can stop
 * it halfway (then the restore fails hard, not over). With undo (a DIGEST
 * is to be checked), each target page is kept first, so a commit that
 * fails verification can be taken back (rollback_epoch).
 */
static int commit_epoch(struct ckrun *k, bool undo)
{
    xcc_restorer *r = k->r;
    struct epoch *ep = &k->ep;
    const size_t psz = r->page_size;

    if (undo && ep->undo_cap < ep->n) {
        uint8_t *u = realloc(ep->undo, ep->n * psz);
        if (!u)
            return restore_fail(r, ENOMEM, "cannot keep the %zu pages an "
                                "epoch overwrites", ep->n);
        ep->undo = u;
        ep->undo_cap = ep->n;
    }
    for (size_t base = 0; base < ep->n;) {
        size_t n = ep->n - base < COMMIT_BATCH ? ep->n - base : COMMIT_BATCH;
        int64_t got = xcc_map_cache_lookup(r->mc, ep->pfn + base, n, k->pages,
                                           k->err);
        if (got <= 0)
            return restore_fail(r, errno ? errno : EIO, "commit: cannot map pfn %#"
                           PRIx64 " of '%s': %s", ep->pfn[base], r->d->name,
                           xcc_strerror(errno));
        for (size_t j = 0; j < (size_t)got; j++) {
            size_t i = base + j;
            uint8_t *dst = k->pages[j];

            if (k->err[j] || !dst)
                return restore_fail(r, k->err[j] ? -k->err[j] : EIO,
                               "commit: pfn %#" PRIx64 " of '%s' cannot be "
                               "mapped", ep->pfn[i], r->d->name);
            if (undo)
                memcpy(ep->undo + i * psz, dst, psz);
            if (ep->kind[i] == SLOT_ZERO)
                restore_zero_page(r, dst);
            else
                memcpy(dst, ep->data + i * psz, psz);
        }
        xcc_map_cache_release(r->mc);
        base += (size_t)got;
    }
    r->pages_applied += ep->n;
    return 0;
}

/* Puts back the pages commit_epoch(k, true) overwrote: the target holds
 * the previous checkpoint again. */
static int rollback_epoch(struct ckrun *k)
{
    xcc_restorer *r = k->r;
    struct epoch *ep = &k->ep;
    const size_t psz = r->page_size;

    for (size_t base = 0; base < ep->n;) {
        size_t n = ep->n - base < COMMIT_BATCH ? ep->n - base : COMMIT_BATCH;
        int64_t got = xcc_map_cache_lookup(r->mc, ep->pfn + base, n, k->pages,
                                           k->err);
        if (got <= 0)
            return -1;
        for (size_t j = 0; j < (size_t)got; j++) {
            if (k->err[j] || !k->pages[j])
                return -1;
            memcpy(k->pages[j], ep->undo + (base + j) * psz, psz);
        }
        xcc_map_cache_release(r->mc);
        base += (size_t)got;
    }
    return 0;
}

/* Compares the epoch's DIGEST (if any) with the target, after commit. */
static int check_digest(struct ckrun *k)
{
    struct stream_record rec = {
        .type = STREAM_REC_DIGEST,
        .length = k->ep.digest_len,
        .offset = k->ep.digest_off,
        .body = k->ep.digest,
    };

    if (!k->ep.digest)
        return 0;
    return restore_apply(k->r, &rec);
}

/* ---- The back channel ------------------------------------------------------ */

static void back_broken(struct ckrun *k)
{
    XCC_WARN(k->r->log, CTX, "the back channel to the sender broke (%s); "
             "no more acknowledgements", xcc_strerror(errno));
    stream_writer_free(k->back);
    k->back = NULL;
}

static void send_ack(struct ckrun *k)
{
    if (k->back && stream_write_checkpoint(k->back) < 0)
        back_broken(k);
}

/* COLO: pauses the guest, harvests what it wrote and sends the list. */
static int colo_pause_and_report(struct ckrun *k)
{
    xcc_restorer *r = k->r;
    const size_t words = XCC_DIV_ROUND_UP(r->nr_pfns, 64);
    size_t n = 0;

    if (k->guest_paused)
        return 0;
    if (r->d->ops->pause(r->d) < 0)
        return restore_fail(r, errno, "COLO: cannot pause '%s': %s", r->d->name,
                       xcc_strerror(errno));
    k->guest_paused = true;
    memset(k->bitmap, 0, words * sizeof(uint64_t));
    if (r->d->ops->logdirty_clean(r->d, k->bitmap, true) < 0)
        return restore_fail(r, errno, "COLO: cannot read the dirty log of '%s': "
                       "%s", r->d->name, xcc_strerror(errno));
    for (size_t w = 0; w < words; w++) {
        uint64_t word = k->bitmap[w];
        while (word) {
            uint64_t pfn = (uint64_t)w * 64 + (unsigned)__builtin_ctzll(word);
            word &= word - 1;
            if (pfn < r->limit_pfns)
                k->pfns[n++] = pfn;
        }
    }
    if (n > STREAM_REC_LENGTH_MAX / sizeof(uint64_t))
        return restore_fail(r, E2BIG, "COLO: %zu dirty pfns do not fit one "
                       "record", n);
    if (k->back && stream_write_dirty_pfn_list(k->back, k->pfns, n) < 0)
        back_broken(k);
    XCC_DBG(r->log, CTX, "COLO: the guest wrote %zu pages this epoch", n);
    return 0;
}

/* ---- The loop ------------------------------------------------------------ */

static int after_commit(struct ckrun *k)
{
    xcc_restorer *r = k->r;

    k->committed++;
    send_ack(k);
    if (k->p->colo && !k->logdirty_on) {
        /* Before the guest first runs, so none of its writes is missed. */
        if (r->d->ops->logdirty_enable(r->d) < 0)
            return restore_fail(r, errno, "COLO: cannot enable dirty logging on "
                           "'%s': %s", r->d->name, xcc_strerror(errno));
        k->logdirty_on = true;
    }
    k->guest_paused = false;
    if (k->p->on_commit && k->p->on_commit(k->p->opaque, k->committed))
        return restore_fail(r, ECANCELED, "stopped after checkpoint %" PRIu64
                       " by the caller", k->committed);
    return 0;
}

/*
 * Commits the staged epoch and checks its DIGEST. A commit that fails
 * verification is taken back, so the target holds the last checkpoint
 * that passed (DESIGN.md, invariant 2): returns 1 then (errno
 * XCC_EFAILOVER, the message kept). 0 done, -1 a hard failure.
 */
static int commit_verified(struct ckrun *k)
{
    xcc_restorer *r = k->r;
    const bool undo = k->ep.digest && r->p.verify;

    if (commit_epoch(k, undo) < 0)
        return -1;
    if (check_digest(k) == 0)
        return 0;
    if (!undo || rollback_epoch(k) < 0) {
        XCC_ERR(r->log, CTX, "checkpoint %" PRIu64 " failed verification and "
                "cannot be taken back: '%s' holds unverified memory",
                k->committed + 1, r->d->name);
        return -1;
    }
    XCC_ERR(r->log, CTX, "checkpoint %" PRIu64 " failed verification (%s); "
            "taken back: '%s' holds checkpoint %" PRIu64, k->committed + 1,
            xcc_restorer_error(r), r->d->name, k->committed);
    errno = XCC_EFAILOVER;
    return 1;
}

/* One checkpoint's commit: copy, verify, acknowledge, run on. -1 a hard
 * failure, 1 verification failed and the commit was taken back. */
static int do_commit(struct ckrun *k)
{
    uint64_t t0 = lib_now_ns(), dt;
    int rc = commit_verified(k);

    if (rc)
        return rc;
    epoch_reset(&k->ep);
    dt = lib_now_ns() - t0;
    k->commit_ns_total += dt;
    if (dt > k->commit_ns_max)
        k->commit_ns_max = dt;
    return after_commit(k);
}

/* A record of an epoch (after checkpoint 1). -1: a stream fault. */
static int stage_record(struct ckrun *k, const struct stream_record *rec)
{
    xcc_restorer *r = k->r;
    struct stream_pfn_list pl;

    switch (rec->type) {
    case STREAM_REC_PAGE_DATA:
    case STREAM_REC_COMPRESSED_PAGES:
        return stage_page_data(k, rec);
    case STREAM_REC_ZERO_PAGES:
        return stage_zero_pages(k, rec);
    case STREAM_REC_XBZRLE_PAGES:
        return stage_xbzrle(k, rec);
    case STREAM_REC_DIGEST:
        return stage_digest(k, rec);
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
        /* The sender's "epoch begins" marker (COLO). */
        if (stream_parse_dirty_pfn_list(r->rd, rec, r->limit_pfns, &pl) < 0)
            return -1;
        if (!k->p->colo)
            XCC_WARN(r->log, CTX, "the sender runs in COLO mode; restore "
                     "with --colo to answer it");
        return 0;
    default:
        /* STATS and the like change no memory; GUEST_INFO is refused. */
        return restore_apply(r, rec);
    }
}

static int run(struct ckrun *k, uint64_t *kept)
{
    xcc_restorer *r = k->r;
    struct stream_record rec;

    for (;;) {
        int crc;

        if (restore_next(r, &rec) < 0)
            goto broken;
        /* The record-order rules inspect applies too. */
        if (restore_order(r, &rec) < 0)
            goto broken;

        if (k->committed == 0) {
            /* Before checkpoint 1: applied directly. */
            if (rec.type == STREAM_REC_END)
                goto end;
            if (rec.type == STREAM_REC_CHECKPOINT) {
                XCC_INFO(r->log, CTX, "checkpoint 1 is in '%s'", r->d->name);
                if (after_commit(k) < 0)
                    return -1;
                continue;
            }
            if (restore_apply(r, &rec) < 0)
                return -1;
            continue;
        }

        /* An epoch: the guest (COLO) stops before anything is applied. */
        if (k->p->colo && colo_pause_and_report(k) < 0)
            return -1;
        k->ep.records++;
        if (rec.type == STREAM_REC_CHECKPOINT) {
            crc = do_commit(k);
            if (crc > 0)
                goto unverified;
            if (crc < 0)
                return -1;
            continue;
        }
        if (rec.type == STREAM_REC_END) {
            /* restore_order() let END end an epoch only when it is COLO's
             * closing one (it opened with the marker). */
            if (k->ep.records > 1) {
                /* The secondary guest's last writes undone. */
                crc = commit_verified(k);
                if (crc > 0)
                    goto unverified;
                if (crc < 0)
                    return -1;
                epoch_reset(&k->ep);
            }
            goto end;
        }
        if (stage_record(k, &rec) < 0)
            goto broken;
    }

end:
    /* Answer END before waiting for the sender to close: it waits for
     * this END (and the last acknowledgements) before closing. */
    if (k->back && stream_write_end(k->back) < 0)
        back_broken(k);
    stream_writer_free(k->back);
    k->back = NULL;
    if (restore_read_tail(r) < 0) {
        if (k->committed)
            goto broken;
        return -1;
    }
    *kept = k->committed;
    return 0;

unverified:
    *kept = k->committed;
    epoch_reset(&k->ep);
    errno = XCC_EFAILOVER;
    return -1;

broken:
    *kept = k->committed;
    if (!k->committed)
        return -1;
    /* Nothing of the partial epoch reached the target. */
    epoch_reset(&k->ep);
    XCC_ERR(r->log, CTX, "failover: the stream broke during epoch %" PRIu64
            " (%s); '%s' keeps checkpoint %" PRIu64, k->committed + 1,
            xcc_restorer_error(r), r->d->name, k->committed);
    errno = XCC_EFAILOVER;
    return -1;
}

int xcc_restorer_run_checkpointed(xcc_restorer *r, xcc_domain *d,
                                  const struct xcc_checkpoint_restore_params *p,
                                  uint64_t *kept)
{
    struct xcc_checkpoint_restore_params defaults;
    struct ckrun k;
    uint64_t kept_local = 0;
    int rc = -1;

    if (!kept)
        kept = &kept_local;
    *kept = 0;
    if (!r || !d) {
        errno = EINVAL;
        return -1;
    }
    if (r->d)
        return restore_fail(r, EINVAL, "a restorer runs once");
    if (!p) {
        xcc_checkpoint_restore_params_init(&defaults);
        p = &defaults;
    }
    if (p->size != sizeof(*p))
        return restore_fail(r, EINVAL, "struct xcc_checkpoint_restore_params "
                            "has size %zu, but this library knows only size "
                            "%zu: initialise it with "
                            "xcc_checkpoint_restore_params_init()",
                            p->size, sizeof(*p));
    memset(&k, 0, sizeof(k));
    k.r = r;
    k.p = p;
    r->st.status = "active";
    if (xcc_restorer_begin(r, NULL) < 0 || restore_attach(r, d) < 0)
        goto out;
    restore_order_start(r, STREAM_ORDER_CHECKPOINTED);
    k.ep.slot_of = calloc(r->nr_pfns ? r->nr_pfns : 1, sizeof(uint32_t));
    k.bitmap = calloc(XCC_DIV_ROUND_UP(r->nr_pfns, 64) + 1, sizeof(uint64_t));
    /* Lists and batches: at most every pfn once. */
    k.pfns = calloc(r->nr_pfns > COMMIT_BATCH ? r->nr_pfns : COMMIT_BATCH,
                    sizeof(uint64_t));
    k.pages = calloc(COMMIT_BATCH, sizeof(uint8_t *));
    k.err = calloc(COMMIT_BATCH, sizeof(int));
    if (!k.ep.slot_of || !k.bitmap || !k.pfns || !k.pages || !k.err) {
        restore_fail(r, ENOMEM, "cannot allocate the epoch buffers for %" PRIu64
                " pfns", r->nr_pfns);
        goto out;
    }
    if (p->back_fd >= 0) {
        k.back = stream_writer_new(p->back_fd, r->log);
        if (!k.back || stream_write_headers(k.back, r->h.dhdr_type,
                                            r->h.page_shift, r->h.xen_major,
                                            r->h.xen_minor) < 0) {
            if (!k.back)
                errno = ENOMEM;
            back_broken(&k);
        }
    }
    rc = run(&k, kept);
out:;
    int saved = errno;
    if (k.committed)
        XCC_INFO(r->log, CTX, "%" PRIu64 " checkpoints committed, %.3f ms "
                 "on average, %.3f ms at most", k.committed,
                 (double)k.commit_ns_total / 1e6 /
                     (double)(k.committed > 1 ? k.committed - 1 : 1),
                 (double)k.commit_ns_max / 1e6);
    stream_writer_free(k.back);
    epoch_free(&k.ep);
    free(k.bitmap);
    free(k.pfns);
    free(k.pages);
    free(k.err);
    r->st.t_end = lib_now_ns();
    r->st.bytes = stream_reader_offset(r->rd);
    r->st.status = rc == 0 ? "completed" : "failed";
    errno = rc == 0 ? 0 : (saved ? saved : EIO);
    return rc;
}
