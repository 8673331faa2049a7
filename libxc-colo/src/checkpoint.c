/*
 * checkpoint.c - continuous checkpoints (Remus/COLO), the sender.
 *
 * A checkpoint run is a live save whose final pass never ends: after the
 * live phase, each checkpoint pauses the guest, sends what it dirtied since
 * the last one through the save loop's own pass (save_send_pass: map cache,
 * classifier, XBZRLE cache, stream writer), writes DIGEST (verify) and
 * CHECKPOINT, and lets the guest run for the interval. Checkpoint 1 is the
 * first paused pass after the live phase.
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

struct ckpt_entry {
    uint64_t pages;           /* pages sent in the checkpoint's pass */
    uint64_t bytes;           /* stream bytes from pause to CHECKPOINT */
    uint64_t dirty;           /* pfns in the pass (own + secondary's) */
    uint64_t secondary_dirty; /* COLO: pfns the secondary sent back */
    uint64_t t_pause, t_sent, t_resume;
};

struct xcc_checkpointer {
    xcc_saver *s;
    struct xcc_checkpoint_params p;
    xentoollog_logger *log;

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
    if (!c->s) {
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
        if (stream_parse_dirty_pfn_list(rd, rec, c->s->nr_pfns, &pl) < 0)
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
 * COLO: waits for the secondary's dirty list, merges it into the coming
 * pass and drops its pfns from the XBZRLE cache. Returns the count or -1.
 */
static int64_t take_secondary_list(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;
    struct timespec dl;
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
    for (size_t i = 0; i < c->list_n; i++) {
        uint64_t pfn = c->list[i];
        s->dirty[pfn / 64] |= 1ull << (pfn % 64);
        /* The secondary's copy changed under the cache: the next send of
         * this pfn must be whole (invariant 1). */
        if (s->pc)
            xcc_page_cache_drop(s->pc, pfn);
    }
    int64_t n = (int64_t)c->list_n;
    c->list_ready = false;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- Helpers ------------------------------------------------------------- */

static int pause_guest(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;

    if (s->d->ops->pause(s->d) < 0) {
        XCC_PERR(c->log, CTX, "cannot pause '%s'", s->d->name);
        return -1;
    }
    s->paused_by_us = true;
    return 0;
}

static int unpause_guest(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;

    if (s->d->ops->unpause(s->d) < 0) {
        XCC_PERR(c->log, CTX, "cannot unpause '%s'", s->d->name);
        return -1;
    }
    s->paused_by_us = false;
    return 0;
}

static bool stop_requested(const xcc_checkpointer *c)
{
    return c->p.stop && *c->p.stop;
}

/* Sleeps until `until` (lib_now_ns clock) or a stop request. */
static void wait_until(const xcc_checkpointer *c, uint64_t until)
{
    for (;;) {
        uint64_t now = lib_now_ns(), step;
        struct timespec ts;

        if (now >= until || stop_requested(c))
            return;
        step = until - now;
        if (c->p.stop && step > STOP_POLL_NS)
            step = STOP_POLL_NS;
        ts.tv_sec = (time_t)(step / 1000000000ull);
        ts.tv_nsec = (long)(step % 1000000000ull);
        nanosleep(&ts, NULL);
    }
}

/* Rehashes the stale digest chunks and writes DIGEST. */
static int send_digest(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;
    uint64_t t0 = lib_now_ns();
    uint8_t whole[16];

    if (digest_chunks(s->d, s->mc, 0, s->chunk_stale, s->chunk_dig) < 0) {
        XCC_PERR(c->log, CTX, "computing the memory digest");
        return -1;
    }
    s->st.digest_ns += lib_now_ns() - t0;
    digest_whole(s->chunk_dig, s->nchunks, whole);
    return stream_write_digest(s->w, XCC_DIGEST_CHUNK, 0, whole, s->chunk_dig,
                               (uint32_t)s->nchunks);
}

static void set_all_dirty(xcc_saver *s)
{
    memset(s->dirty, 0xff, s->dirty_words * sizeof(uint64_t));
    if (s->nr_pfns % 64)
        s->dirty[s->dirty_words - 1] = (1ull << (s->nr_pfns % 64)) - 1;
}

/* The live phase, as a live save runs it, without the final pass. */
static int live_phase(xcc_checkpointer *c)
{
    xcc_saver *s = c->s;
    uint32_t passes;

    set_all_dirty(s);
    if (save_send_pass(s, false, false) < 0)
        return -1;
    for (passes = 1; passes < s->p.max_iters; passes++) {
        int64_t dirty;

        if (stop_requested(c))
            break;
        dirty = save_harvest(s, false);
        if (dirty < 0)
            return -1;
        if ((uint64_t)dirty <= s->p.target_dirty) {
            s->st.stop_reason = "converged";
            return 0;
        }
        if (s->pc)
            xcc_page_cache_next_generation(s->pc);
        if (save_send_pass(s, false, true) < 0)
            return -1;
    }
    s->st.stop_reason = "max-iters";
    return 0;
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

/* Pages sent by the pass just made (the iteration save_send_pass added). */
static uint64_t last_pass_pages(const xcc_saver *s)
{
    return s->st.nr_iters ? s->st.iters[s->st.nr_iters - 1].pages : 0;
}

/*
 * One checkpoint: the guest is paused on entry. Sends the pass, DIGEST,
 * the digest callback and CHECKPOINT.
 */
static int checkpoint_once(xcc_checkpointer *c, struct ckpt_entry *e,
                           uint64_t k, bool *buffered)
{
    xcc_saver *s = c->s;
    struct stream_writer *main_w = s->w;
    uint64_t bytes0 = stream_writer_bytes(s->w);
    uint8_t digest[16];
    int64_t n;
    int rc = -1;

    *buffered = false;
    /* The marker goes at once: the secondary must pause now. */
    if (c->p.colo && k > 1 && stream_write_dirty_pfn_list(s->w, NULL, 0) < 0)
        return -1;
    if (save_harvest(s, true) < 0)
        return -1;
    if (c->p.colo && k > 1) {
        n = take_secondary_list(c);
        if (n < 0)
            return -1;
        e->secondary_dirty = (uint64_t)n;
        c->secondary_total += (uint64_t)n;
    }
    if (s->pc)
        xcc_page_cache_next_generation(s->pc);
    for (size_t i = 0; i < s->dirty_words; i++)
        e->dirty += (uint64_t)__builtin_popcountll(s->dirty[i]);
    /* Small epochs are built in memory while the guest is paused and sent
     * once it runs again: the pause then costs a memory copy, not the
     * network (Remus's output buffering, applied to the stream). */
    if (c->mw && e->dirty <= BUFFER_MAX_PAGES) {
        stream_writer_mem_reset(c->mw, BUFFER_KEEP_BYTES);
        e->bytes = stream_writer_bytes(s->w) - bytes0;
        bytes0 = stream_writer_bytes(c->mw);
        s->w = c->mw;
        *buffered = true;
    }
    if (save_send_pass(s, true, true) < 0)
        goto out;
    e->pages = last_pass_pages(s);
    if (s->p.verify && send_digest(c) < 0)
        goto out;
    if (c->p.want_digest &&
        xcc_domain_digest(s->d, c->p.digest_flags, digest, NULL, 0) < 0) {
        XCC_PERR(c->log, CTX, "checkpoint %" PRIu64 ": digest of '%s'", k,
                 s->d->name);
        goto out;
    }
    if (c->p.on_checkpoint &&
        c->p.on_checkpoint(c->p.opaque, k, c->p.want_digest ? digest : NULL)) {
        XCC_ERR(c->log, CTX, "checkpoint %" PRIu64 ": stopped by the caller",
                k);
        errno = ECANCELED;
        goto out;
    }
    if (stream_write_checkpoint(s->w) < 0)
        goto out;
    e->bytes += stream_writer_bytes(s->w) - bytes0;
    if (!*buffered)
        e->t_sent = lib_now_ns();
    rc = 0;
out:
    s->w = main_w;
    return rc;
}

/* Sends the epoch buffer to the stream's fd, then empties it. */
static int flush_buffer(xcc_checkpointer *c, struct ckpt_entry *e)
{
    size_t len, off = 0;
    const uint8_t *buf = stream_writer_mem(c->mw, &len);

    while (off < len) {
        ssize_t n = write(c->s->fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = c->s->fd, .events = POLLOUT};
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
    e->t_sent = lib_now_ns();
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

    if (stream_write_dirty_pfn_list(s->w, NULL, 0) < 0)
        return -1;
    memset(s->dirty, 0, s->dirty_words * sizeof(uint64_t));
    int64_t n = take_secondary_list(c);
    if (n < 0)
        return -1;
    c->secondary_total += (uint64_t)n;
    if (s->pc)
        xcc_page_cache_next_generation(s->pc);
    if (save_send_pass(s, true, true) < 0)
        return -1;
    /* The primary did not change: the last DIGEST still holds, and lets
     * the secondary prove it is back on the checkpoint. */
    if (s->p.verify && send_digest(c) < 0)
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

    if (save_write_headers(s) < 0)
        return -1;
    if (c->p.back_fd >= 0) {
        if (pthread_create(&c->thr, NULL, back_thread, c)) {
            XCC_ERR(c->log, CTX, "cannot start the back channel's reader");
            errno = EAGAIN;
            return -1;
        }
        c->thr_started = true;
    }
    if (s->d->ops->logdirty_enable(s->d) < 0) {
        XCC_PERR(c->log, CTX, "cannot enable dirty logging on '%s'",
                 s->d->name);
        return -1;
    }
    s->logdirty_on = true;
    s->st.t_setup_done = lib_now_ns();
    if (live_phase(c) < 0)
        return -1;

    for (k = 1;; k++) {
        struct ckpt_entry *e;
        bool last, buffered;

        if (k > 1)
            wait_until(c, next_pause);
        e = new_entry(c);
        if (!e)
            return -1;
        if (pause_guest(c) < 0)
            return -1;
        e->t_pause = lib_now_ns();
        if (k == 1)
            s->st.t_pause = e->t_pause;
        if (checkpoint_once(c, e, k, &buffered) < 0)
            return -1;
        last = (c->p.count && k >= c->p.count) || stop_requested(c);
        if (last) {
            e->t_resume = lib_now_ns();
        } else {
            if (unpause_guest(c) < 0)
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
    s->st.stop_reason = stop_requested(c) ? "stopped" : "count";
    if (c->p.colo && colo_close(c) < 0)
        return -1;
    if (stream_write_end(s->w) < 0)
        return -1;
    s->st.t_end = lib_now_ns();
    wait_back_end(c);
    XCC_INFO(c->log, CTX, "%zu checkpoints of '%s', %zu acknowledged", c->n,
             s->d->name, c->nacks);
    return 0;
}

int xcc_checkpointer_run(xcc_checkpointer *c)
{
    xcc_saver *s;
    int rc, saved;

    if (!c) {
        errno = EINVAL;
        return -1;
    }
    s = c->s;
    if (s->ran) {
        XCC_ERR(c->log, CTX, "a checkpointer runs once");
        errno = EINVAL;
        return -1;
    }
    s->ran = true;
    s->st.t_start = lib_now_ns();
    s->st.status = "active";
    rc = run(c);
    saved = errno;
    stop_thread(c);
    if (s->logdirty_on) {
        s->d->ops->logdirty_disable(s->d);
        s->logdirty_on = false;
    }
    if (!s->st.t_end || rc < 0)
        s->st.t_end = lib_now_ns();
    s->st.transferred = stream_writer_bytes(s->w) + c->buffered_bytes;
    if (rc < 0) {
        s->st.status = "failed";
        if (s->paused_by_us)
            unpause_guest(c);
        errno = saved ? saved : EIO;
        return -1;
    }
    s->st.status = "completed";
    return 0;
}

/* ---- Figures ------------------------------------------------------------- */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n) (sorted in place); -1 when n == 0. */
static double percentile(double *v, size_t n, double pct)
{
    size_t rank;

    if (!n)
        return -1;
    qsort(v, n, sizeof(*v), cmp_dbl);
    rank = (size_t)(pct / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

/* Commit time of checkpoint i in ms, -1 when not acknowledged. */
static double commit_ms(const xcc_checkpointer *c, size_t i)
{
    if (i >= c->nacks || c->ack_ns[i] < c->ck[i].t_sent)
        return -1;
    return (double)(c->ack_ns[i] - c->ck[i].t_sent) / 1e6;
}

static double pause_ms(const struct ckpt_entry *e)
{
    return (double)(e->t_resume - e->t_pause) / 1e6;
}

void xcc_checkpointer_get_summary(const xcc_checkpointer *c,
                                  struct xcc_checkpoint_summary *o)
{
    xcc_checkpointer *m = (xcc_checkpointer *)c; /* for the mutex only */
    double *v = malloc((c->n ? c->n : 1) * sizeof(double));
    size_t nc = 0;
    double bytes = 0, pages = 0;

    memset(o, 0, sizeof(*o));
    o->checkpoints = c->n;
    o->secondary_dirty = c->secondary_total;
    o->commit_p50_ms = o->commit_p99_ms = o->commit_max_ms = -1;
    if (!v || !c->n) {
        free(v);
        return;
    }
    pthread_mutex_lock(&m->mu);
    o->acked = c->nacks < c->n ? c->nacks : c->n;
    for (size_t i = 0; i < c->n; i++) {
        double ms = commit_ms(c, i);
        if (ms >= 0)
            v[nc++] = ms;
    }
    pthread_mutex_unlock(&m->mu);
    if (nc) {
        o->commit_p50_ms = percentile(v, nc, 50);
        o->commit_p99_ms = percentile(v, nc, 99);
        o->commit_max_ms = v[nc - 1];
    }
    for (size_t i = 0; i < c->n; i++) {
        v[i] = pause_ms(&c->ck[i]);
        bytes += (double)c->ck[i].bytes;
        pages += (double)c->ck[i].pages;
    }
    o->pause_p50_ms = percentile(v, c->n, 50);
    o->pause_p99_ms = percentile(v, c->n, 99);
    o->pause_max_ms = v[c->n - 1];
    o->bytes_mean = bytes / (double)c->n;
    o->pages_mean = pages / (double)c->n;
    if (c->ck[c->n - 1].t_resume > c->ck[0].t_pause)
        o->per_second = (double)c->n /
                        ((double)(c->ck[c->n - 1].t_resume - c->ck[0].t_pause) /
                         1e9);
    free(v);
}

/* A growing string (the JSON), failed for good on ENOMEM. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_ms(struct sbuf *b, const char *key, double ms, bool comma)
{
    if (ms < 0)
        sb_printf(b, "\"%s\":null%s", key, comma ? "," : "");
    else
        sb_printf(b, "\"%s\":%.3f%s", key, ms, comma ? "," : "");
}

static void sb_pct(struct sbuf *b, const char *key, double *v, size_t n,
                   const char *unit_fmt)
{
    if (!n) {
        sb_printf(b, "\"%s\":null", key);
        return;
    }
    double p50 = percentile(v, n, 50), p99 = percentile(v, n, 99);
    sb_printf(b, "\"%s\":{\"p50\":", key);
    sb_printf(b, unit_fmt, p50);
    sb_printf(b, ",\"p99\":");
    sb_printf(b, unit_fmt, p99);
    sb_printf(b, ",\"max\":");
    sb_printf(b, unit_fmt, v[n - 1]);
    sb_printf(b, "}");
}

const char *xcc_checkpointer_stats_json(xcc_checkpointer *c)
{
    const char *base = xcc_saver_stats_json(c->s);
    struct xcc_checkpoint_summary sum;
    struct sbuf b = {0};
    double *v;
    size_t cut, nc = 0;

    if (!base)
        return NULL;
    cut = strlen(base);
    while (cut && base[cut - 1] != '}')
        cut--;
    if (!cut) {
        errno = EINVAL;
        return NULL;
    }
    v = malloc((c->n ? c->n : 1) * sizeof(double));
    if (!v)
        return NULL;
    xcc_checkpointer_get_summary(c, &sum);
    sb_printf(&b, "%.*s,\"checkpoint\":{", (int)(cut - 1), base);
    sb_printf(&b, "\"count\":%zu,\"interval-ms\":%" PRIu32 ",\"colo\":%s,"
              "\"back-channel\":%s,\"acknowledged\":%" PRIu64 ",",
              c->n, c->p.interval_ms, c->p.colo ? "true" : "false",
              c->p.back_fd >= 0 ? "true" : "false", sum.acked);
    sb_printf(&b, "\"checkpoints-per-second\":%.2f,", sum.per_second);
    sb_printf(&b, "\"secondary-dirty-pages\":%" PRIu64 ",",
              sum.secondary_dirty);
    for (size_t i = 0; i < c->n; i++)
        v[i] = pause_ms(&c->ck[i]);
    sb_pct(&b, "pause-ms", v, c->n, "%.3f");
    sb_printf(&b, ",");
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n; i++) {
        double ms = commit_ms(c, i);
        if (ms >= 0)
            v[nc++] = ms;
    }
    sb_pct(&b, "commit-ms", v, nc, "%.3f");
    sb_printf(&b, ",");
    for (size_t i = 0; i < c->n; i++)
        v[i] = (double)c->ck[i].bytes;
    sb_pct(&b, "bytes", v, c->n, "%.0f");
    sb_printf(&b, ",");
    for (size_t i = 0; i < c->n; i++)
        v[i] = (double)c->ck[i].pages;
    sb_pct(&b, "pages", v, c->n, "%.0f");
    sb_printf(&b, ",\"checkpoints\":[");
    for (size_t i = 0; i < c->n; i++) {
        const struct ckpt_entry *e = &c->ck[i];
        sb_printf(&b, "%s{\"k\":%zu,\"pages\":%" PRIu64 ",\"bytes\":%" PRIu64
                  ",\"dirty\":%" PRIu64 ",\"secondary-dirty\":%" PRIu64 ",",
                  i ? "," : "", i + 1, e->pages, e->bytes, e->dirty,
                  e->secondary_dirty);
        sb_ms(&b, "at-ms", (double)(e->t_pause - c->ck[0].t_pause) / 1e6,
              true);
        sb_ms(&b, "pause-ms", pause_ms(e), true);
        sb_ms(&b, "commit-ms", commit_ms(c, i), false);
        sb_printf(&b, "}");
    }
    pthread_mutex_unlock(&c->mu);
    sb_printf(&b, "]}}\n");
    free(v);
    if (b.failed) {
        free(b.p);
        errno = ENOMEM;
        return NULL;
    }
    free(c->json);
    c->json = b.p;
    return c->json;
}
