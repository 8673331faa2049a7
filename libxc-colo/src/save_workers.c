/*
 * save_workers.c - the save loop's thread pool (see save_workers.h).
 *
 * One mutex and two condition variables: `go` wakes the parked threads for
 * a run (a run counter tells a new run from a spurious wake-up), `done`
 * wakes the caller when the last of them has finished. A run costs two
 * wake-ups per thread; the save loop makes one run per resolved slice of up
 * to a batch (1024 pages by default), which takes a millisecond or more to
 * encode, so the hand-over stays a small fraction.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "save_workers.h"

#define CTX "save"

/* Per-worker figures on a cache line of their own: written by the worker on
 * every run, they would otherwise bounce between the cores. */
struct worker {
    _Alignas(64) struct save_workers *pool;
    unsigned k;
    pthread_t thread;
    uint64_t busy_ns;
};

struct save_workers {
    unsigned n;
    pthread_mutex_t lock;
    pthread_cond_t go;   /* a run began, or quit */
    pthread_cond_t done; /* the last pool thread finished its part */
    uint64_t run;        /* runs begun; a thread works once per value */
    unsigned pending;    /* pool threads still in the current run */
    bool quit;
    save_work_fn *fn;
    void *arg;
    unsigned started; /* threads running, for free after a failed new */
    struct worker *workers;
};

static void *worker_main(void *p)
{
    struct worker *me = p;
    struct save_workers *w = me->pool;
    uint64_t seen = 0;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->run == seen && !w->quit)
            pthread_cond_wait(&w->go, &w->lock);
        if (w->quit)
            break;
        seen = w->run;
        save_work_fn *fn = w->fn;
        void *arg = w->arg;
        pthread_mutex_unlock(&w->lock);

        uint64_t t0 = lib_now_ns();
        fn(arg, me->k);
        me->busy_ns += lib_now_ns() - t0;

        pthread_mutex_lock(&w->lock);
        if (--w->pending == 0)
            pthread_cond_signal(&w->done);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct save_workers *save_workers_new(unsigned n, xentoollog_logger *log)
{
    struct save_workers *w;
    sigset_t all, old;
    int rc = 0;

    if (n < 2 || n > XCC_SAVE_MAX_THREADS) {
        XCC_ERR(log, CTX, "%u encoding threads: expected 2..%u", n,
                XCC_SAVE_MAX_THREADS);
        errno = EINVAL;
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->n = n;
    w->workers = aligned_alloc(64, n * sizeof(*w->workers));
    if (!w->workers) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    memset(w->workers, 0, n * sizeof(*w->workers));
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->go, NULL);
    pthread_cond_init(&w->done, NULL);
    for (unsigned k = 0; k < n; k++) {
        w->workers[k].pool = w;
        w->workers[k].k = k;
    }

    /* The threads inherit the mask: every signal stays with the caller. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned k = 1; k < n && rc == 0; k++) {
        rc = pthread_create(&w->workers[k].thread, NULL, worker_main,
                            &w->workers[k]);
        if (rc == 0)
            w->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        errno = rc;
        XCC_PERR(log, CTX, "cannot start encoding thread %u of %u",
                 w->started + 1, n - 1);
        save_workers_free(w);
        errno = rc;
        return NULL;
    }
    return w;
}

void save_workers_free(struct save_workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->quit = true;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->lock);
    for (unsigned k = 1; k <= w->started; k++)
        pthread_join(w->workers[k].thread, NULL);
    pthread_cond_destroy(&w->go);
    pthread_cond_destroy(&w->done);
    pthread_mutex_destroy(&w->lock);
    free(w->workers);
    free(w);
}

unsigned save_workers_count(const struct save_workers *w)
{
    return w->n;
}

void save_workers_run(struct save_workers *w, save_work_fn *fn, void *arg)
{
    uint64_t t0;

    pthread_mutex_lock(&w->lock);
    w->fn = fn;
    w->arg = arg;
    w->pending = w->n - 1;
    w->run++;
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->lock);

    t0 = lib_now_ns();
    fn(arg, 0);
    w->workers[0].busy_ns += lib_now_ns() - t0;

    /* The mutex also orders the threads' writes before our reads. */
    pthread_mutex_lock(&w->lock);
    while (w->pending)
        pthread_cond_wait(&w->done, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

uint64_t save_workers_busy_ns(const struct save_workers *w, unsigned k)
{
    return k < w->n ? w->workers[k].busy_ns : 0;
}

void save_workers_partition(const uint8_t *key, size_t n, unsigned nbins,
                            uint32_t *order, size_t *start)
{
    memset(start, 0, (nbins + 1) * sizeof(*start));
    for (size_t i = 0; i < n; i++)
        start[key[i] + 1]++;
    for (unsigned b = 0; b < nbins; b++)
        start[b + 1] += start[b];
    /* start[b] is now where group b begins; fill, then shift back. */
    for (size_t i = 0; i < n; i++)
        order[start[key[i]]++] = (uint32_t)i;
    for (unsigned b = nbins; b > 0; b--)
        start[b] = start[b - 1];
    start[0] = 0;
}
