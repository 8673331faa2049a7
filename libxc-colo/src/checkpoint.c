/*
 * checkpoint.c - continuous checkpoints (Remus/COLO), the sender.
 *
 * A checkpoint run is a live save whose final pass never ends: after the
 * live phase (the save's own, save_precopy, with its stop conditions and
 * digest refreshes), each checkpoint pauses the guest, sends what it
 * dirtied since the last one through the save loop's own pass
 * (save_send_pass: map cache, classifier, XBZRLE cache, stream writer),
 * writes DIGEST (verify) and CHECKPOINT, and lets the guest run for the
 * interval. Checkpoint 1 is the first paused pass after the live phase.
 * This file drives the saver only through save.h's functions.
 *
 * The epoch buffer: an epoch of up to BUFFER_MAX_PAGES pages is written to
 * memory while the guest is paused and sent after it continues (Remus
 * buffers its checkpoints the same way), so the pause costs a memory copy,
 * not the network. A kill or a broken connection during that send leaves
 * the receiver with a partial epoch, which it drops: it keeps the previous
 * checkpoint, as after any break.
 *
 * The back channel. The receiver writes a small stream back (headers, then
 * bare records): a CHECKPOINT after each commit (the acknowledgement that
 * gives the commit time) and, in COLO mode, one CHECKPOINT_DIRTY_PFN_LIST
 * per epoch with the pfns its own running guest wrote. A thread reads it,
 * so acknowledgements are stamped when they arrive, not when the loop
 * happens to look.
 *
 * COLO ordering (exact at every checkpoint): for checkpoint K+1 the
 * primary pauses, writes an empty CHECKPOINT_DIRTY_PFN_LIST (the "epoch
 * begins" marker), harvests its own dirty log, then waits for the
 * secondary's list: the secondary pauses its guest on the marker, before
 * applying anything, and answers with the pfns it wrote since it committed
 * K. The primary merges them into the pass and drops them from the XBZRLE
 * cache first (DESIGN.md invariant 1: the secondary no longer holds what
 * the cache says), so they go whole. The epoch then overwrites every page
 * either side changed, and the secondary commits exactly the primary's
 * checkpoint K+1. At the end one more round (marker, list, those pages,
 * END without CHECKPOINT) takes back what the secondary's guest wrote
 * after the last commit, so both sides stop on the same memory.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "digest.h"
#include "save.h"

#define CTX "checkpoint"

/* The interval wait looks at *stop this often. */
#define STOP_POLL_NS 5000000ull
#define NS_PER_MS 1000000ull
/* Epochs with more dirty pages than this are sent straight to the fd:
 * buffering them would cost as much memory as they are big. */
#define BUFFER_MAX_PAGES 16384u
/* The epoch buffer is allocated and faulted in up front for epochs of
 * about this size (2000 pages), so the pause does not take page faults. */
#define BUFFER_RESERVE_BYTES (8u << 20)
/* What it keeps between epochs after a larger one: room for the epochs
 * checkpointing is made for, not a 64 MiB high-water mark forever. */
#define BUFFER_KEEP_BYTES (16u << 20)

/* One checkpoint's figures (stats.h). */
#define ckpt_entry stats_checkpoint_entry

struct xcc_checkpointer {
    xcc_saver *s;
    xcc_domain *d;
    int fd;
    bool verify;
    struct xcc_checkpoint_params p;
    xentoollog_logger *log;
    const char *stop_reason;

    struct ckpt_entry *ck;
    size_t n, cap;
    uint64_t secondary_total;

    /* The epoch buffer (Remus's): the paused pass is written to memory,
     * the guest continues, then the buffer goes to the fd. The pause costs
     * one memcpy per page into pages already mapped, not a write(2). */
    struct stream_writer *mw;  /* memory writer; NULL: no buffering */
    uint64_t buffered_bytes;   /* sent through the buffer, in all */

    /* Back channel, shared with the reader thread under mu. */
    pthread_t thr;
    bool thr_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;          /* main -> thread: finish */
    bool back_done;         /* thread has exited (END, EOF or error) */
    int back_errno;         /* 0, or why the channel failed */
    bool back_end;          /* the receiver sent END */
    uint64_t *ack_ns;       /* arrival time of acknowledgement i */
    size_t nacks, acks_cap;
    uint64_t *list;         /* a COLO dirty list not yet taken */
    size_t list_n;
    bool list_ready;

    char *json;
};

void xcc_checkpoint_params_init(struct xcc_checkpoint_params *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->interval_ms = XCC_CHECKPOINT_DEFAULT_INTERVAL_MS;
    p->back_fd = -1;
}

xcc_checkpointer *xcc_checkpointer_new(xcc_domain *d, int fd,
                                       const struct xcc_save_params *sp,
                                       const struct xcc_checkpoint_params *cp,
                                       xentoollog_logger *log)
{
    struct xcc_save_params spl;
    xcc_checkpointer *c;

    if (!log)
        log = lib_default_logger();
    if ((sp && !LIB_PARAMS_SIZE_OK(log, CTX, xcc_save_params, sp)) ||
        (cp && !LIB_PARAMS_SIZE_OK(log, CTX, xcc_checkpoint_params, cp)))
        return NULL;
    if (sp)
        spl = *sp;
    else
        xcc_save_params_init(&spl);
    spl.live = 1;
    if (cp && cp->colo && cp->back_fd < 0) {
        XCC_ERR(log, CTX, "COLO mode needs a back channel (a TCP connection "
                "or a socket fd) for the secondary's dirty pages");
        errno = EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->log = log;
    c->d = d;
    c->fd = fd;
    c->verify = spl.verify && !spl.xen_compat;
    if (cp)
        c->p = *cp;
    else
        xcc_checkpoint_params_init(&c->p);
    if (!c->p.back_timeout_ms)
        c->p.back_timeout_ms = CKPT_DEFAULT_BACK_TIMEOUT_MS;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->mw = stream_writer_new_mem(BUFFER_RESERVE_BYTES, log);
    if (!c->mw)
        XCC_WARN(log, CTX, "no memory for the epoch buffer (%s): checkpoints "
                 "are sent while the guest is paused", xcc_strerror(errno));
    c->s = xcc_saver_new(d, fd, &spl, log);
    if (c->s && c->s->xl_wrap) {
        /* libxl's Remus stream (CHECKPOINT_END after each epoch) is not
         * written: an xl image of one epoch only would mislead. */
        XCC_ERR(log, CTX, "--xen-compat checkpoints of a Xen domain: the "
                "libxl checkpoint (Remus) framing is not supported");
        errno = EINVAL;
    }
    if (!c->s || c->s->xl_wrap) {
        int e = errno;
        xcc_checkpointer_free(c);
        errno = e;
        return NULL;
    }
    return c;
}

static void stop_thread(xcc_checkpointer *c)
{
    if (!c->thr_started)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thr, NULL);
    c->thr_started = false;
}

void xcc_checkpointer_free(xcc_checkpointer *c)
{
    if (!c)
        return;
    stop_thread(c);
    xcc_saver_free(c->s);
    stream_writer_free(c->mw);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->ck);
    free(c->ack_ns);
    free(c->list);
    free(c->json);
    free(c);
}

/* ---- The back channel ---------------------------------------------------- */

/* Waits until fd is readable or the main loop asks the thread to finish.
 * Returns 1 readable, 0 stop, -1 error. */
static int back_wait(xcc_checkpointer *c)
{
    struct pollfd pfd = {.fd = c->p.back_fd, .events = POLLIN};

    for (;;) {
        bool stop;
        int rc;

        pthread_mutex_lock(&c->mu);
        stop = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            return 0;
        rc = poll(&pfd, 1, CKPT_BACK_POLL_MS);
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc > 0)
            return 1;
    }
}

static int back_record(xcc_checkpointer *c, struct stream_reader *rd,
                       const struct stream_record *rec)
{
    const uint64_t now = lib_now_ns();
    struct stream_pfn_list pl;

    switch (rec->type) {
    case STREAM_REC_CHECKPOINT:
        pthread_mutex_lock(&c->mu);
        if (c->nacks == c->acks_cap) {
            size_t cap = c->acks_cap ? 2 * c->acks_cap : 256;
            uint64_t *p = realloc(c->ack_ns, cap * sizeof(*p));
            if (!p) {
                pthread_mutex_unlock(&c->mu);
                errno = ENOMEM;
                return -1;
            }
            c->ack_ns = p;
            c->acks_cap = cap;
        }
        c->ack_ns[c->nacks++] = now;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return 0;
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
        if (stream_parse_dirty_pfn_list(rd, rec, c->d->info.nr_pfns, &pl) < 0)
            return -1;
        pthread_mutex_lock(&c->mu);
        if (c->list_ready) {
            pthread_mutex_unlock(&c->mu);
            XCC_ERR(c->log, CTX, "back channel: a second dirty pfn list "
                    "(offset %" PRIu64 ") before the first was used",
                    rec->offset);
            errno = XCC_EBADSTREAM;
            return -1;
        }
        free(c->list);
        c->list = malloc((pl.count ? pl.count : 1) * sizeof(uint64_t));
        if (!c->list) {
            pthread_mutex_unlock(&c->mu);
            errno = ENOMEM;
            return -1;
        }
        memcpy(c->list, pl.pfns, (size_t)pl.count * sizeof(uint64_t));
        c->list_n = pl.count;
        c->list_ready = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        return 0;
    default:
        if (rec->type & STREAM_REC_OPTIONAL)
            return 0;
        XCC_ERR(c->log, CTX, "back channel: unexpected %s record (type %#"
                PRIx32 ") at offset %" PRIu64, stream_record_name(rec->type),
                rec->type, rec->offset);
        errno = XCC_EBADSTREAM;
        return -1;
    }
}

static void *back_thread(void *arg)
{
    xcc_checkpointer *c = arg;
    struct stream_reader *rd = stream_reader_new(c->p.back_fd, c->log);
    struct stream_headers h;
    struct stream_record rec;
    int err = 0, rc;

    if (!rd) {
        err = ENOMEM;
        goto out;
    }
    rc = back_wait(c);
    if (rc <= 0) {
        err = rc < 0 ? errno : 0;
        goto out;
    }
    if (stream_read_headers(rd, &h) < 0) {
        err = errno;
        goto out;
    }
    for (;;) {
        rc = back_wait(c);
        if (rc <= 0) {
            err = rc < 0 ? errno : 0;
            break;
        }
        if (stream_read_record(rd, &rec) < 0) {
            err = errno;
            break;
        }
        if (rec.type == STREAM_REC_END) {
            pthread_mutex_lock(&c->mu);
            c->back_end = true;
            pthread_mutex_unlock(&c->mu);
            break;
        }
        if (back_record(c, rd, &rec) < 0) {
            err = errno;
            break;
        }
    }
out:
    stream_reader_free(rd);
    pthread_mutex_lock(&c->mu);
    c->back_done = true;
    c->back_errno = err;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void deadline_after(struct timespec *ts, uint32_t ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/*
 * COLO: waits for the secondary's dirty list and adds it to the coming pass
 * (save_add_pending drops its pfns from the XBZRLE cache). Returns the
 * count or -1.
 */
static int64_t take_secondary_list(xcc_checkpointer *c)
{
    struct timespec dl;
    uint64_t *list;
    size_t n;
    int rc = 0;

    deadline_after(&dl, c->p.back_timeout_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->list_ready && !c->back_done && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    if (!c->list_ready) {
        int e = c->back_done ? (c->back_errno ? c->back_errno : EPIPE)
                             : ETIMEDOUT;
        pthread_mutex_unlock(&c->mu);
        XCC_ERR(c->log, CTX, "COLO: no dirty pfn list from the secondary "
                "(%s); is it restoring with --colo?", xcc_strerror(e));
        errno = e;
        return -1;
    }
    /* Ours now: the reader allocates the next list afresh. */
    list = c->list;
    n = c->list_n;
    c->list = NULL;
    c->list_ready = false;
    pthread_mutex_unlock(&c->mu);
    save_add_pending(c->s, list, n);
    free(list);
    return (int64_t)n;
}

/* ---- Helpers ------------------------------------------------------------- */

static bool stop_requested(const xcc_checkpointer *c)
{
    return c->p.stop && *c->p.stop;
}

/* Sleeps until `until` (lib_now_ns clock), a stop request or a cancel. */
static void wait_until(const xcc_checkpointer *c, uint64_t until)
{
    for (;;) {
        uint64_t now = lib_now_ns(), step;
        struct timespec ts;

        if (now >= until || stop_requested(c) || save_cancelled(c->s))
            return;
        step = until - now;
        if (step > STOP_POLL_NS)
            step = STOP_POLL_NS;
        ts.tv_sec = (time_t)(step / 1000000000ull);
        ts.tv_nsec = (long)(step % 1000000000ull);
        nanosleep(&ts, NULL);
    }
}

static struct ckpt_entry *new_entry(xcc_checkpointer *c)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        struct ckpt_entry *p = realloc(c->ck, cap * sizeof(*p));
        if (!p) {
            XCC_PERR(c->log, CTX, "cannot record checkpoint figures");
            return NULL;
        }
        c->ck = p;
        c->cap = cap;
    }
    memset(&c->ck[c->n], 0, sizeof(c->ck[0]));
    return &c->ck[c->n];
}

/*
 * One checkpoint: the guest is paused on entry. Sends the pass, DIGEST,
 * the digest callback and CHECKPOINT.
 */
static int checkpoint_once(xcc_checkpointer *c, struct ckpt_entry *e,
                           uint64_t k, bool *buffered)
{
    xcc_saver *s = c->s;
    struct stream_writer *main_w = save_writer(s);
    uint64_t bytes0 = stream_writer_bytes(main_w);
    uint64_t hashed0 = save_chunks_hashed(s);
    const struct stats_iteration *pass;
    uint8_t digest[16];
    int64_t n;
    int rc = -1;

    *buffered = false;
    /* The marker goes at once: the secondary must pause now. */
    if (c->p.colo && k > 1 && stream_write_dirty_pfn_list(main_w, NULL, 0) < 0)
        return -1;
    n = save_harvest(s, true);
    if (n < 0)
        return -1;
    e->dirty = (uint64_t)n;
    if (c->p.colo && k > 1) {
        n = take_secondary_list(c);
        if (n < 0)
            return -1;
        e->secondary_dirty = (uint64_t)n;
        c->secondary_total += (uint64_t)n;
    }
    /* Small epochs are built in memory while the guest is paused and sent
     * once it runs again: the pause then costs a memory copy, not the
     * network (Remus's output buffering, applied to the stream). Own and
     * secondary pfns may overlap: the pass counts the union. */
    if (c->mw && e->dirty + e->secondary_dirty <= BUFFER_MAX_PAGES) {
        stream_writer_mem_reset(c->mw, BUFFER_KEEP_BYTES);
        e->bytes = stream_writer_bytes(main_w) - bytes0;
        bytes0 = stream_writer_bytes(c->mw);
        save_set_writer(s, c->mw);
        *buffered = true;
    }
    if (save_send_pass(s, true, true) < 0)
        goto out;
    pass = save_last_pass(s);
    e->pages = pass->pages;
    e->dirty = pass->dirty_pages;
    /* The domain state again, as libxenguest sends it every checkpoint. */
    if (save_send_state(s, DOMAIN_STATE_TAIL) < 0)
        goto out;
    if (c->verify && save_send_digest(s) < 0)
        goto out;
    e->digest_chunks = save_chunks_hashed(s) - hashed0;
    if (c->p.want_digest &&
        xcc_domain_digest(c->d, c->p.digest_flags, digest, NULL, 0) < 0) {
        XCC_PERR(c->log, CTX, "checkpoint %" PRIu64 ": digest of '%s'", k,
                 c->d->name);
        goto out;
    }
    if (c->p.on_checkpoint &&
        c->p.on_checkpoint(c->p.opaque, k, c->p.want_digest ? digest : NULL)) {
        XCC_ERR(c->log, CTX, "checkpoint %" PRIu64 ": stopped by the caller",
                k);
        errno = ECANCELED;
        goto out;
    }
    /* A cancel or a destroyed guest: no CHECKPOINT for this epoch. */
    if (save_check(s) < 0)
        goto out;
    /* Read before the CHECKPOINT goes out: its acknowledgement cannot come
     * earlier, however late this thread runs again (commit time >= 0). */
    if (!*buffered)
        e->t_sent = lib_now_ns();
    if (stream_write_checkpoint(save_writer(s)) < 0)
        goto out;
    e->bytes += stream_writer_bytes(save_writer(s)) - bytes0;
    rc = 0;
out:
    save_set_writer(s, main_w);
    return rc;
}

/* Sends the epoch buffer to the stream's fd, then empties it. */
static int flush_buffer(xcc_checkpointer *c, struct ckpt_entry *e)
{
    size_t len, off = 0;
    const uint8_t *buf = stream_writer_mem(c->mw, &len);

    while (off < len) {
        ssize_t n;

        /* Before each write: the last one carries the CHECKPOINT, whose
         * acknowledgement cannot come earlier (commit time >= 0). */
        e->t_sent = lib_now_ns();
        n = write(c->fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            XCC_PERR(c->log, CTX, "sending a checkpoint (%zu of %zu bytes "
                     "sent)", off, len);
            return -1;
        }
        off += (size_t)n;
    }
    c->buffered_bytes += len;
    /* The guest runs: give back what a large epoch grew the buffer by. */
    stream_writer_mem_reset(c->mw, BUFFER_KEEP_BYTES);
    return 0;
}

/*
 * COLO's closing round: the secondary's guest ran after the last commit;
 * fetch what it wrote and send those pages (the primary is paused since
 * the last checkpoint, so they carry that checkpoint's content) before
 * END, which the secondary applies as a whole, as an epoch.
 */
static int colo_close(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;

    if (stream_write_dirty_pfn_list(save_writer(s), NULL, 0) < 0)
        return -1;
    int64_t n = take_secondary_list(c);
    if (n < 0)
        return -1;
    c->secondary_total += (uint64_t)n;
    if (save_send_pass(s, true, true) < 0)
        return -1;
    /* The primary did not change: the last DIGEST still holds, and lets
     * the secondary prove it is back on the checkpoint. */
    if (c->verify && save_send_digest(s) < 0)
        return -1;
    return 0;
}

/* After END: the last acknowledgements (and the receiver's END). */
static void wait_back_end(xcc_checkpointer *c)
{
    struct timespec dl;
    int rc = 0;

    if (!c->thr_started)
        return;
    deadline_after(&dl, c->p.back_timeout_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->back_done && rc == 0)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &dl);
    if (!c->back_end)
        XCC_WARN(c->log, CTX, "the receiver did not close its back channel "
                 "(%zu of %zu checkpoints acknowledged)", c->nacks, c->n);
    pthread_mutex_unlock(&c->mu);
    stop_thread(c);
}

static int run(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;
    uint64_t k, next_pause = 0;

    if (c->p.back_fd >= 0) {
        if (pthread_create(&c->thr, NULL, back_thread, c)) {
            XCC_ERR(c->log, CTX, "cannot start the back channel's reader");
            errno = EAGAIN;
            return -1;
        }
        c->thr_started = true;
    }
    if (save_precopy(s, c->p.stop) < 0)
        return -1;

    for (k = 1;; k++) {
        struct ckpt_entry *e;
        bool last, buffered;

        if (k > 1)
            wait_until(c, next_pause);
        e = new_entry(c);
        if (!e)
            return -1;
        if (save_pause(s) < 0)
            return -1;
        e->t_pause = lib_now_ns();
        if (checkpoint_once(c, e, k, &buffered) < 0)
            return -1;
        last = (c->p.count && k >= c->p.count) || stop_requested(c);
        if (last) {
            e->t_resume = lib_now_ns();
        } else {
            if (save_unpause(s) < 0)
                return -1;
            e->t_resume = lib_now_ns();
        }
        if (buffered && flush_buffer(c, e) < 0)
            return -1;
        c->n++;
        if (last)
            break;
        next_pause = e->t_resume + (uint64_t)c->p.interval_ms * NS_PER_MS;
    }
    c->stop_reason = stop_requested(c) ? "stopped" : "count";
    if (c->p.colo && colo_close(c) < 0)
        return -1;
    if (save_check(s) < 0 || stream_write_end(save_writer(s)) < 0)
        return -1;
    wait_back_end(c);
    XCC_INFO(c->log, CTX, "%zu checkpoints of '%s', %zu acknowledged", c->n,
             c->d->name, c->nacks);
    return 0;
}

int xcc_checkpointer_run(xcc_checkpointer *c)
{
    int rc;

    if (!c) {
        errno = EINVAL;
        return -1;
    }
    rc = save_start(c->s, "checkpointer");
    if (rc == 0)
        rc = run(c);
    stop_thread(c);
    return save_end(c->s, rc, c->buffered_bytes);
}

void xcc_checkpointer_cancel(xcc_checkpointer *c)
{
    if (c)
        xcc_saver_cancel(c->s);
}

/* ---- Figures ------------------------------------------------------------- */

/* The figures with the acknowledgement times filled in (malloc'd; NULL:
 * ENOMEM). */
static struct ckpt_entry *entries_acked(xcc_checkpointer *c, uint64_t *acked)
{
    struct ckpt_entry *e = malloc((c->n ? c->n : 1) * sizeof(*e));

    if (!e)
        return NULL;
    memcpy(e, c->ck, c->n * sizeof(*e));
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++)
        e[i].t_ack = i < c->nacks ? c->ack_ns[i] : 0;
    *acked = c->nacks < c->n ? c->nacks : c->n;
    pthread_mutex_unlock(&c->mu);
    return e;
}

void xcc_checkpointer_get_summary(const xcc_checkpointer *c,
                                  struct xcc_checkpoint_summary *o)
{
    xcc_checkpointer *m = (xcc_checkpointer *)c; /* for the mutex only */
    struct stats_checkpoint sc = {.n = c->n};
    struct ckpt_entry *e = entries_acked(m, &o->acked);
    double *v = malloc((c->n ? c->n : 1) * sizeof(double));
    double bytes = 0, pages = 0;
    size_t nc = 0;

    memset(o, 0, sizeof(*o));
    o->checkpoints = c->n;
    o->secondary_dirty = c->secondary_total;
    o->commit_p50_ms = o->commit_p99_ms = o->commit_max_ms = -1;
    if (!v || !e || !c->n) {
        free(v);
        free(e);
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (e[i].t_ack)
            o->acked++;
        double ms = stats_checkpoint_commit_ms(&e[i]);
        if (ms >= 0)
            v[nc++] = ms;
    }
    if (nc) {
        o->commit_p50_ms = stats_percentile(v, nc, 50);
        o->commit_p99_ms = stats_percentile(v, nc, 99);
        o->commit_max_ms = v[nc - 1];
    }
    for (size_t i = 0; i < c->n; i++) {
        v[i] = stats_checkpoint_pause_ms(&e[i]);
        bytes += (double)e[i].bytes;
        pages += (double)e[i].pages;
    }
    o->pause_p50_ms = stats_percentile(v, c->n, 50);
    o->pause_p99_ms = stats_percentile(v, c->n, 99);
    o->pause_max_ms = v[c->n - 1];
    o->bytes_mean = bytes / (double)c->n;
    o->pages_mean = pages / (double)c->n;
    sc.e = e;
    o->per_second = stats_checkpoint_rate(&sc);
    free(v);
    free(e);
}

const char *xcc_checkpointer_stats_json(xcc_checkpointer *c)
{
    struct stats_checkpoint sc = {
        .interval_ms = c->p.interval_ms,
        .colo = c->p.colo,
        .back_channel = c->p.back_fd >= 0,
        .secondary_dirty = c->secondary_total,
        .stop_reason = c->stop_reason ? c->stop_reason : "",
        .n = c->n,
    };
    struct ckpt_entry *e = entries_acked(c, &sc.acknowledged);
    char *json;

    if (!e)
        return NULL;
    sc.e = e;
    json = save_stats_json(c->s, &sc);
    free(e);
    if (!json)
        return NULL;
    free(c->json);
    c->json = json;
    return c->json;
}
