/*
 * save_workers.c - the save loop's thread pool (see save_workers.h).
 *
 * Tasks are handed out by one atomic word (below) and counted back in
 * another. Between runs the threads spin briefly, then sleep on a
 * condition variable: `go` wakes them for a run (a run counter tells a new
 * run from a spurious wake-up), `done` wakes the caller when the last task
 * has returned, if it had to sleep. The save loop makes one run per
 * resolved slice of up to a batch (1024 pages by default), a millisecond or
 * less of encoding; since the caller claims tasks too, a thread that wakes
 * late costs nothing but its own share of the parallelism.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "save_workers.h"

#define CTX "save"

/*
 * The claim word: the run's number (bits 32..63), its task count (16..31)
 * and the next task nobody has claimed (0..15). A worker claims a task
 * with one compare-and-swap of the whole word, so a thread that wakes late
 * and still holds an old run's word can never take a task of the next run:
 * its swap fails, and an old run's word has no task left (next == count).
 */
#define CLAIM_WORD(run, ntasks, next)                                          \
    (((uint64_t)(run) << 32) | ((uint64_t)(ntasks) << 16) | (uint64_t)(next))
#define CLAIM_NTASKS(c) ((unsigned)((c) >> 16) & 0xffffu)
#define CLAIM_NEXT(c) ((unsigned)(c)&0xffffu)

/* Per-worker figures on a cache line of their own: written by the worker on
 * every task, they would otherwise bounce between the cores. */
struct worker {
    _Alignas(64) struct save_workers *pool;
    pthread_t thread;
    uint64_t busy_ns;
};

struct save_workers {
    unsigned n;
    _Atomic uint64_t claim;
    _Atomic unsigned finished; /* tasks of the current run that returned */
    /* Set by the caller before it publishes the run's claim word; read by
     * a worker only after a claim of that run succeeded. */
    save_work_fn *fn;
    void *arg;

    pthread_mutex_t lock;
    pthread_cond_t go;   /* a run began, or quit */
    pthread_cond_t done; /* the run's last task finished */
    uint32_t run;        /* runs begun (also in the claim word) */
    bool quit;
    unsigned started; /* threads running, for free after a failed new */
    struct worker *workers;
};

/*
 * How long a thread spins before it sleeps, waiting for the next run (a
 * pool thread) or for the run's last task (the caller). Runs follow each
 * other within microseconds while a pass goes on, and on a busy machine a
 * sleeping thread can wait milliseconds for its wake-up to be scheduled:
 * that latency, not the work, decided the speed of small runs. Bounded, so
 * an idle pool costs nothing.
 */
#define SPIN_NS 50000u
/*
 * Pauses between two looks at the clock while spinning. A spinning thread
 * shares its core's pipeline with the thread that does the work when the
 * two CPUs are siblings (as a 2-vCPU VM's often are): a clock read on
 * every turn took a third of a 2-thread save's samples under perf and slowed
 * the worker beside it. A pause is about 30 ns, so 32 of them keep the
 * bound within a microsecond.
 */
#define SPIN_PAUSES 32u

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    for (unsigned i = 0; i < SPIN_PAUSES; i++)
        __builtin_ia32_pause();
#endif
}

/* The run number in the claim word. */
static uint32_t claim_run(struct save_workers *w)
{
    return (uint32_t)(atomic_load_explicit(&w->claim, memory_order_acquire) >>
                      32);
}

/* Claims and runs tasks of the current run until none is left; returns
 * how many this worker ran (and the run's task count in *ntasks). */
static unsigned work(struct save_workers *w, struct worker *me,
                     unsigned *ntasks)
{
    uint64_t c = atomic_load_explicit(&w->claim, memory_order_acquire);
    unsigned ran = 0;

    *ntasks = CLAIM_NTASKS(c);
    while (CLAIM_NEXT(c) < CLAIM_NTASKS(c)) {
        if (!atomic_compare_exchange_weak_explicit(&w->claim, &c, c + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* c now holds the word as it is */
        *ntasks = CLAIM_NTASKS(c);
        uint64_t t0 = lib_now_ns();
        w->fn(w->arg, CLAIM_NEXT(c));
        me->busy_ns += lib_now_ns() - t0;
        ran++;
        c = atomic_load_explicit(&w->claim, memory_order_acquire);
    }
    return ran;
}

/* Counts a worker's finished tasks; the one that completes the run wakes
 * the caller, in case it sleeps. */
static void count_finished(struct save_workers *w, unsigned ran,
                           unsigned ntasks)
{
    if (!ran)
        return;
    if (atomic_fetch_add_explicit(&w->finished, ran, memory_order_acq_rel) +
            ran ==
        ntasks) {
        pthread_mutex_lock(&w->lock);
        pthread_cond_signal(&w->done);
        pthread_mutex_unlock(&w->lock);
    }
}

static void *worker_main(void *p)
{
    struct worker *me = p;
    struct save_workers *w = me->pool;
    uint32_t seen = 0;
    unsigned ntasks;

    for (;;) {
        const uint64_t t0 = lib_now_ns();
        uint32_t run;

        while ((run = claim_run(w)) == seen && lib_now_ns() - t0 < SPIN_NS)
            cpu_relax();
        if (run == seen) {
            pthread_mutex_lock(&w->lock);
            while (w->run == seen && !w->quit)
                pthread_cond_wait(&w->go, &w->lock);
            bool quit = w->quit;
            run = w->run;
            pthread_mutex_unlock(&w->lock);
            if (quit)
                break;
        }
        seen = run;
        unsigned ran = work(w, me, &ntasks); /* sets ntasks: not inline */
        count_finished(w, ran, ntasks);
    }
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
    for (unsigned k = 0; k < n; k++)
        w->workers[k].pool = w;

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

void save_workers_run(struct save_workers *w, save_work_fn *fn, void *arg,
                      unsigned ntasks)
{
    unsigned ran, n;
    uint64_t t0;

    if (!ntasks)
        return;
    pthread_mutex_lock(&w->lock);
    w->fn = fn;
    w->arg = arg;
    atomic_store_explicit(&w->finished, 0, memory_order_relaxed);
    w->run++;
    atomic_store_explicit(&w->claim, CLAIM_WORD(w->run, ntasks, 0),
                          memory_order_release);
    pthread_cond_broadcast(&w->go);
    pthread_mutex_unlock(&w->lock);

    ran = work(w, &w->workers[0], &n);
    if (ran)
        atomic_fetch_add_explicit(&w->finished, ran, memory_order_acq_rel);

    /* The acquire pairs with the tasks' release: their writes are ours. */
    t0 = lib_now_ns();
    while (atomic_load_explicit(&w->finished, memory_order_acquire) < ntasks &&
           lib_now_ns() - t0 < SPIN_NS)
        cpu_relax();
    if (atomic_load_explicit(&w->finished, memory_order_acquire) < ntasks) {
        pthread_mutex_lock(&w->lock);
        while (atomic_load_explicit(&w->finished, memory_order_acquire) <
               ntasks)
            pthread_cond_wait(&w->done, &w->lock);
        pthread_mutex_unlock(&w->lock);
    }
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
