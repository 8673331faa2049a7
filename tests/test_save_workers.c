/*
 * test_save_workers.c - the save loop's thread pool (save_workers.c) and
 * the sharded page cache it works on (page_cache.h): every task of a run
 * runs exactly once and its writes are visible after the run, tasks do run
 * side by side, the partition is a stable grouping, and a sharded cache
 * behaves exactly as independent caches, also when one thread per shard
 * drives it at once.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "page_cache.h"
#include "save_workers.h"
#include "xorshift.h"

#define PAGE 4096u
#define MAX_TASKS 64u

static void seed_rng(const char *test)
{
    const char *env = getenv("TEST_SEED");

    rng_state = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    if (!rng_state)
        rng_state = 1;
    printf("%s: seed %" PRIu64 " (TEST_SEED=%" PRIu64 " replays it)\n", test,
           rng_state, rng_state);
    fflush(stdout);
}

/* ---------------------------------------------------------------- the pool */

Test(save_workers, bad_counts)
{
    errno = 0;
    cr_expect_null(save_workers_new(1, NULL));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(save_workers_new(XCC_SAVE_MAX_THREADS + 1, NULL));
    cr_expect_eq(errno, EINVAL);
}

struct count_arg {
    unsigned runs[MAX_TASKS]; /* plain: each task is claimed once per run */
    uint64_t stamp[MAX_TASKS];
    uint64_t run;
};

static void count_task(void *p, unsigned task)
{
    struct count_arg *a = p;

    a->runs[task]++;
    a->stamp[task] = a->run;
}

Test(save_workers, every_task_once_and_visible)
{
    for (unsigned n = 2; n <= 8; n *= 2) {
        struct save_workers *w = save_workers_new(n, NULL);
        struct count_arg a;

        cr_assert_not_null(w, "pool of %u", n);
        cr_expect_eq(save_workers_count(w), n);
        for (unsigned r = 1; r <= 3000; r++) {
            unsigned ntasks = r % MAX_TASKS; /* 0 included */

            memset(&a, 0, sizeof(a));
            a.run = r;
            save_workers_run(w, count_task, &a, ntasks);
            for (unsigned t = 0; t < MAX_TASKS; t++) {
                unsigned want = t < ntasks;
                if (a.runs[t] != want || a.stamp[t] != (want ? r : 0))
                    cr_assert_fail(
                        "%u workers, run %u of %u tasks: task %u ran %u "
                        "times (stamp %" PRIu64 ")",
                        n, r, ntasks, t, a.runs[t], a.stamp[t]);
            }
        }
        save_workers_free(w);
    }
}

/* Task 0 waits for task 1 to start: only a second thread can run it, since
 * whoever holds task 0 is stuck in it. Proves the tasks of a run overlap. */
struct overlap_arg {
    atomic_int started1;
    atomic_int timed_out;
};

static void overlap_task(void *p, unsigned task)
{
    struct overlap_arg *a = p;

    if (task == 1) {
        atomic_store(&a->started1, 1);
        return;
    }
    /* 60 s: a loaded machine may be slow to schedule the other thread. */
    for (unsigned i = 0; i < 60000 && !atomic_load(&a->started1); i++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    if (!atomic_load(&a->started1))
        atomic_store(&a->timed_out, 1);
}

static void spin_task(void *p, unsigned task)
{
    volatile uint64_t *sink = p;

    for (unsigned i = 0; i < 20000; i++)
        *sink += i ^ task;
}

Test(save_workers, tasks_overlap_and_time_counts, .timeout = 120)
{
    struct save_workers *w = save_workers_new(2, NULL);
    struct overlap_arg a;
    volatile uint64_t sink = 0;
    uint64_t busy = 0;

    cr_assert_not_null(w);
    for (unsigned r = 0; r < 5; r++) {
        atomic_init(&a.started1, 0);
        atomic_init(&a.timed_out, 0);
        save_workers_run(w, overlap_task, &a, 2);
        cr_assert_eq(atomic_load(&a.timed_out), 0,
                     "task 1 never ran beside task 0");
    }
    /* Both workers ran a task (one of the pair each): both were busy. */
    save_workers_run(w, spin_task, (void *)&sink, 8);
    for (unsigned k = 0; k < 2; k++)
        busy += save_workers_busy_ns(w, k);
    cr_expect_gt(busy, 0);
    cr_expect_eq(save_workers_busy_ns(w, 2), 0, "no worker 2");
    save_workers_free(w);
}

/* Task 1 outlasts the caller's spin: the caller must sleep, and the thread
 * that finishes the run's last task must wake it. A lost wake-up hangs
 * here until the timeout fails the test. */
static void sleepy_task(void *p, unsigned task)
{
    (void)p;
    if (task == 1)
        nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
}

Test(save_workers, caller_sleeps_and_is_woken, .timeout = 60)
{
    for (unsigned n = 2; n <= 4; n += 2) {
        struct save_workers *w = save_workers_new(n, NULL);

        cr_assert_not_null(w);
        for (unsigned r = 0; r < 200; r++)
            save_workers_run(w, sleepy_task, NULL, 2 + r % 3);
        save_workers_free(w);
    }
}

Test(save_workers, partition_is_a_stable_grouping)
{
    enum { N = 5000 };
    static uint8_t key[N];
    static uint32_t order[N];
    size_t start[MAX_TASKS + 1];
    static uint8_t seen[N];

    seed_rng("partition");
    for (unsigned round = 0; round < 50; round++) {
        unsigned nbins = 1 + (unsigned)(rnd() % MAX_TASKS);
        size_t n = (size_t)(rnd() % N);

        for (size_t i = 0; i < n; i++)
            key[i] = (uint8_t)(rnd() % nbins);
        save_workers_partition(key, n, nbins, order, start);
        memset(seen, 0, sizeof(seen));
        cr_assert_eq(start[0], 0);
        cr_assert_eq(start[nbins], n);
        for (unsigned b = 0; b < nbins; b++) {
            cr_assert_leq(start[b], start[b + 1]);
            for (size_t j = start[b]; j < start[b + 1]; j++) {
                cr_assert_lt(order[j], n);
                cr_assert_eq(key[order[j]], b, "item %u in group %u", order[j],
                             b);
                cr_assert(!seen[order[j]], "item %u twice", order[j]);
                seen[order[j]] = 1;
                if (j > start[b])
                    cr_assert_lt(order[j - 1], order[j], "not stable");
            }
        }
    }
}

/* ------------------------------------------------------ the sharded cache */

Test(page_cache_shards, arguments)
{
    xcc_page_cache *c;

    cr_expect_eq(page_cache_max_shards(3 * PAGE, PAGE, 8), 3);
    cr_expect_eq(page_cache_max_shards(64 * PAGE, PAGE, 8), 8);
    cr_expect_eq(page_cache_max_shards(1u << 30, PAGE, 1000),
                 PAGE_CACHE_MAX_SHARDS);
    errno = 0;
    cr_expect_null(page_cache_new_sharded(3 * PAGE, PAGE, 4));
    cr_expect_eq(errno, EINVAL);
    errno = 0;
    cr_expect_null(page_cache_new_sharded(1u << 20, PAGE, 0));
    cr_expect_eq(errno, EINVAL);

    c = page_cache_new_sharded(1u << 20, PAGE, 1);
    cr_assert_not_null(c);
    cr_expect_eq(page_cache_nshards(c), 1);
    cr_expect_eq(page_cache_shard(c, 0), c);
    cr_expect_eq(page_cache_shard_of(c, 12345), 0);
    cr_expect_not_null(xcc_page_cache_stage(c));
    xcc_page_cache_free(c);

    c = page_cache_new_sharded(1u << 20, PAGE, 4);
    cr_assert_not_null(c);
    cr_expect_eq(page_cache_nshards(c), 4);
    cr_expect_null(page_cache_shard(c, 4));
    /* No pfn to route a stage by: refused on the handle, fine per shard. */
    errno = 0;
    cr_expect_null(xcc_page_cache_stage(c));
    cr_expect_eq(errno, EINVAL);
    cr_expect_not_null(xcc_page_cache_stage(page_cache_shard(c, 3)));
    struct xcc_page_cache_stats st;
    xcc_page_cache_get_stats(c, &st);
    cr_expect_eq(st.capacity_pages, 256);
    cr_expect_eq(st.budget_bytes, 1u << 20);
    xcc_page_cache_free(c);
}

Test(page_cache_shards, shards_share_contiguous_pfns_evenly)
{
    xcc_page_cache *c = page_cache_new_sharded(64 * PAGE, PAGE, 4);
    unsigned count[4] = {0};

    cr_assert_not_null(c);
    for (uint64_t pfn = 0; pfn < 65536; pfn++) {
        unsigned k = page_cache_shard_of(c, pfn);
        cr_assert_lt(k, 4);
        cr_assert_eq(k, page_cache_shard_of(c, pfn), "not stable");
        count[k]++;
    }
    for (unsigned k = 0; k < 4; k++)
        cr_expect(count[k] > 16384 * 95 / 100 && count[k] < 16384 * 105 / 100,
                  "shard %u holds %u of 65536 pfns", k, count[k]);
    xcc_page_cache_free(c);
}

static void fill(uint8_t *p, uint64_t pfn, uint64_t version)
{
    memset(p, (int)(version * 7 + pfn) & 0xff, PAGE);
    memcpy(p, &pfn, sizeof(pfn));
    memcpy(p + 8, &version, sizeof(version));
}

/* One step of a random workload on a cache: what it saw, for comparison. */
static int step(xcc_page_cache *c, uint64_t pfn, unsigned op, uint64_t version,
                uint8_t *scratch)
{
    const uint8_t *hit;

    switch (op) {
    case 0: /* lookup */
        hit = xcc_page_cache_lookup(c, pfn);
        return hit ? 1 + (int)(hit[8] & 0x3f) : 0;
    case 1: /* drop */
        xcc_page_cache_drop(c, pfn);
        return 0;
    default: /* store */
        fill(scratch, pfn, version);
        return xcc_page_cache_insert(c, pfn, scratch);
    }
}

Test(page_cache_shards, a_sharded_cache_is_independent_caches)
{
    enum { SHARDS = 3, SLOTS = 40, OPS = 60000, PFNS = 400 };
    xcc_page_cache *c =
        page_cache_new_sharded(SHARDS * SLOTS * PAGE, PAGE, SHARDS);
    xcc_page_cache *alone[SHARDS];
    static uint8_t scratch[PAGE];

    seed_rng("independent");
    cr_assert_not_null(c);
    for (unsigned k = 0; k < SHARDS; k++) {
        alone[k] = xcc_page_cache_new(SLOTS * PAGE, PAGE);
        cr_assert_not_null(alone[k]);
    }
    for (unsigned i = 0; i < OPS; i++) {
        uint64_t pfn = rnd() % PFNS;
        unsigned op = (unsigned)(rnd() % 3);
        unsigned k = page_cache_shard_of(c, pfn);

        if (i % 500 == 499) {
            xcc_page_cache_next_generation(c);
            for (unsigned j = 0; j < SHARDS; j++)
                xcc_page_cache_next_generation(alone[j]);
        }
        int a = step(c, pfn, op, i, scratch);
        int b = step(alone[k], pfn, op, i, scratch);
        cr_assert_eq(a, b, "op %u (%u on pfn %" PRIu64 ", shard %u)", i, op,
                     pfn, k);
    }
    struct xcc_page_cache_stats whole, part, sum = {0};
    xcc_page_cache_get_stats(c, &whole);
    for (unsigned k = 0; k < SHARDS; k++) {
        xcc_page_cache_get_stats(alone[k], &part);
        sum.hits += part.hits;
        sum.misses += part.misses;
        sum.inserts += part.inserts;
        sum.declined += part.declined;
        sum.evictions += part.evictions;
        sum.entries += part.entries;
        xcc_page_cache_free(alone[k]);
    }
    cr_expect_eq(whole.hits, sum.hits);
    cr_expect_eq(whole.misses, sum.misses);
    cr_expect_eq(whole.inserts, sum.inserts);
    cr_expect_eq(whole.declined, sum.declined);
    cr_expect_eq(whole.evictions, sum.evictions);
    cr_expect_eq(whole.entries, sum.entries);
    cr_expect_gt(whole.evictions, 0, "the workload never filled a shard");
    xcc_page_cache_free(c);
}

/*
 * One thread per shard, all at once, each running the save loop's
 * stage / lookup / commit sequence on its own pfns and checking that every
 * hit returns exactly the bytes last committed for that pfn. Run under
 * ThreadSanitizer, this is also the proof that shards share no state.
 */
enum { PAR_SHARDS = 4, PAR_PFNS = 2000, PAR_ROUNDS = 30 };

struct par_arg {
    xcc_page_cache *c;
    uint32_t version[PAR_PFNS]; /* last committed, 0: none */
    unsigned bad[PAR_SHARDS];
    unsigned hits[PAR_SHARDS];
    unsigned round;
};

static void par_task(void *p, unsigned k)
{
    struct par_arg *a = p;
    xcc_page_cache *shard = page_cache_shard(a->c, k);

    for (uint64_t pfn = 0; pfn < PAR_PFNS; pfn++) {
        if (page_cache_shard_of(a->c, pfn) != k)
            continue;
        /* Each round rewrites two pfns out of three, as a hot set would. */
        if ((pfn + a->round) % 3 == 0)
            continue;
        uint8_t *buf = xcc_page_cache_stage(shard);
        uint32_t v = a->round * PAR_PFNS + (uint32_t)pfn + 1;
        fill(buf, pfn, v);
        const uint8_t *old = xcc_page_cache_lookup(shard, pfn);
        if (old) {
            uint8_t want[PAGE];
            fill(want, pfn, a->version[pfn]);
            if (!a->version[pfn] || memcmp(old, want, PAGE))
                a->bad[k]++;
            a->hits[k]++;
        }
        a->version[pfn] = xcc_page_cache_commit(shard, pfn) ? v : 0;
    }
}

Test(page_cache_shards, one_thread_per_shard)
{
    struct save_workers *w = save_workers_new(PAR_SHARDS, NULL);
    struct par_arg *a = calloc(1, sizeof(*a));
    unsigned hits = 0;

    cr_assert_not_null(w);
    cr_assert_not_null(a);
    /* 200 slots a shard for ~500 pfns: evictions and declines happen. */
    a->c = page_cache_new_sharded(PAR_SHARDS * 200 * PAGE, PAGE, PAR_SHARDS);
    cr_assert_not_null(a->c);
    for (a->round = 0; a->round < PAR_ROUNDS; a->round++) {
        xcc_page_cache_next_generation(a->c);
        save_workers_run(w, par_task, a, PAR_SHARDS);
    }
    for (unsigned k = 0; k < PAR_SHARDS; k++) {
        cr_expect_eq(a->bad[k], 0, "shard %u returned wrong bytes %u times", k,
                     a->bad[k]);
        hits += a->hits[k];
    }
    cr_expect_gt(hits, 0);
    struct xcc_page_cache_stats st;
    xcc_page_cache_get_stats(a->c, &st);
    cr_expect_eq(st.hits, hits);
    cr_expect_leq(st.entries, st.capacity_pages);
    xcc_page_cache_free(a->c);
    free(a);
    save_workers_free(w);
}
