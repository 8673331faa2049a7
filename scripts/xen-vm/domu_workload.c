/*
 * domu_workload.c - the PV domU's memory-writing workload, run as its init.
 *
 * Two writers in one process, so that once it has started nothing forks and
 * the guest's page-table pages stay put (they hold machine frame numbers and
 * are left out of the digests the harness compares):
 *  - hotpages: the seed program of the XBZRLE cache-miss patch. 4096 pages
 *    (16 MiB); each pass increments 4 bytes in every page, one every 1 KiB.
 *  - background: a steady trickle of page writes over a wider area, so that
 *    every save iteration also finds cold pages to send.
 *  - heartbeat: a page that dom0 reads (see below) to measure how long the
 *    guest stopped, the same way for every toolstack: every ~1 ms it reads
 *    CLOCK_BOOTTIME (which, unlike CLOCK_MONOTONIC, also counts the time a
 *    cooperative suspend such as xl migrate's or xl remus's keeps the guest
 *    frozen) and records each gap longer than HB_GAP_NS in a ring.
 *  - ledger and selfcheck: the ledger appends a record every LEDGER_TICK_NS
 *    (its index and a hash of it) to a ring of LEDGER_PAGES pages; the
 *    self-check re-reads, every CHECK_TICK_NS, the ledger's records, every
 *    hot and idle page's mark and every idle page's bytes, and counts its
 *    passes and the faults found in the heartbeat page. A restored guest
 *    whose memory is not what it wrote shows failures; one that does not
 *    run shows no new passes.
 * Two ranges let dom0 check log-dirty against known behaviour: every hot
 * page carries HOT_MAGIC at byte 16 (the increments never touch it), and
 * IDLE_PAGES pages carrying IDLE_MAGIC are written once at start and never
 * again.
 * It prints its start-up lines (with the heartbeat page's pfn) when all
 * run, then stays quiet: console output would keep the guest's console ring
 * page changing after a save's final pass.
 *
 * Reading the heartbeat from dom0: the console line
 *   XCC_HEARTBEAT pfn 0xN
 * names the page's pfn (from /proc/self/pagemap; the page is locked, and a
 * migration keeps pfns). The page is a struct heartbeat: HB_MAGIC, then
 * little-endian u64 seq, now_ns, start_ns, gap_threshold_ns, ngaps,
 * max_gap_ns, and HB_RING {end_ns, gap_ns} pairs (gap k at k % HB_RING).
 * `xen-ops-test --heartbeat DOMID PFN [SINCE_NS]` prints it.
 *
 * Built static on the host: gcc -static -O2 -pthread.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "heartbeat.h"

#define PAGE 4096
#define HOT_PAGES 4096          /* the seed: calloc(4096, 4096) */
#define HOT_STRIDE (PAGE / 4)   /* the seed: 4 bytes per page per pass */
#define BG_PAGES 8192           /* 32 MiB of colder memory */
#define BG_PAGES_PER_TICK 40    /* ~400 pages/s at 10 ticks/s */
#define BG_TICK_NS 100000000L   /* 100 ms */
#define BG_BYTES_PER_PAGE 64    /* a partial rewrite, as most dirtying is */
#define IDLE_PAGES 1024         /* 4 MiB written once, never again */
#define HB_TICK_NS 1000000L     /* 1 ms */
#define LEDGER_PAGES 64         /* 256 KiB: 16384 records */
#define LEDGER_TICK_NS 5000000L /* 5 ms: the ring wraps in ~80 s */
#define CHECK_TICK_NS 200000000L /* 200 ms */

struct ledger_record {
    uint64_t index;
    uint64_t hash;
};
#define LEDGER_CAP (LEDGER_PAGES * PAGE / sizeof(struct ledger_record))

static struct heartbeat hb __attribute__((aligned(PAGE)));

static uint64_t boottime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *heartbeat(void *arg)
{
    struct timespec tick = {0, HB_TICK_NS};
    uint64_t last = boottime_ns();

    (void)arg;
    for (;;) {
        nanosleep(&tick, NULL);
        uint64_t now = boottime_ns(), gap = now - last;

        if (gap > HB_GAP_NS) {
            hb.gaps[hb.ngaps % HB_RING].end_ns = now;
            hb.gaps[hb.ngaps % HB_RING].gap_ns = gap;
            __atomic_store_n(&hb.ngaps, hb.ngaps + 1, __ATOMIC_RELEASE);
            if (gap > hb.max_gap_ns)
                hb.max_gap_ns = gap;
        }
        hb.now_ns = now;
        __atomic_store_n(&hb.seq, hb.seq + 1, __ATOMIC_RELEASE);
        last = now;
    }
    return NULL;
}

static uint64_t ledger_hash(uint64_t x)
{
    x ^= 0x58434c4544474552ull; /* splitmix64's finaliser on a salted index */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void *ledger(void *arg)
{
    struct ledger_record *ring = arg;
    struct timespec tick = {0, LEDGER_TICK_NS};

    for (uint64_t r = 0;; r++) {
        ring[r % LEDGER_CAP].index = r;
        ring[r % LEDGER_CAP].hash = ledger_hash(r);
        __atomic_store_n(&hb.ledger, r + 1, __ATOMIC_RELEASE);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

struct check_args {
    const struct ledger_record *ring;
    const char *hot;
    const uint8_t *idle;
};

/* Faults in one pass: ledger records, page marks, idle page bytes. */
static uint64_t check_once(const struct check_args *a)
{
    uint64_t bad = 0, n = __atomic_load_n(&hb.ledger, __ATOMIC_ACQUIRE);

    for (uint64_t r = n > LEDGER_CAP ? n - LEDGER_CAP : 0; r < n; r++) {
        const struct ledger_record *e = &a->ring[r % LEDGER_CAP];
        if (e->index == r && e->hash == ledger_hash(r))
            continue;
        /* Record r + LEDGER_CAP takes r's slot once the ledger holds
         * r + LEDGER_CAP records: a mismatch then (we may have been
         * preempted for a while) is that write, not a fault. */
        if (r + LEDGER_CAP <= __atomic_load_n(&hb.ledger, __ATOMIC_ACQUIRE) + 1)
            continue;
        bad++;
    }
    for (uint64_t i = 0; i < HOT_PAGES; i++) {
        const char *m = a->hot + i * PAGE + MARK_OFFSET;
        bad += memcmp(m, HOT_MAGIC, 8) || memcmp(m + 8, &i, 8);
    }
    for (uint64_t i = 0; i < IDLE_PAGES; i++) {
        const uint8_t *pg = a->idle + i * PAGE;
        bool ok = !memcmp(pg + MARK_OFFSET, IDLE_MAGIC, 8) &&
                  !memcmp(pg + MARK_OFFSET + 8, &i, 8);
        for (size_t b = 0; ok && b < PAGE; b++)
            ok = (b >= MARK_OFFSET && b < MARK_OFFSET + 16) || pg[b] == 0xc3;
        bad += !ok;
    }
    return bad;
}

static void *selfcheck(void *arg)
{
    struct timespec tick = {0, CHECK_TICK_NS};

    for (;;) {
        uint64_t bad = check_once(arg);

        if (bad && !hb.check_failures)
            printf("XCC_SELFCHECK FAIL %llu faults\n", (unsigned long long)bad);
        hb.check_failures += bad;
        __atomic_store_n(&hb.checks, hb.checks + 1, __ATOMIC_RELEASE);
        nanosleep(&tick, NULL);
    }
    return NULL;
}

static void *alloc_pages(size_t n)
{
    void *p = mmap(NULL, n * PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* The pseudo-physical frame behind addr, from /proc/self/pagemap. */
static uint64_t pfn_of(const void *addr)
{
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);

    if (fd < 0)
        return 0;
    if (pread(fd, &e, 8, (off_t)((uintptr_t)addr / PAGE * 8)) != 8)
        e = 0;
    close(fd);
    return (e >> 63) ? (e & ((1ull << 55) - 1)) : 0;
}

static void *hotpages(void *arg)
{
    volatile char *buf = arg;

    for (;;)
        for (long i = 0; i < (long)HOT_PAGES * 4; i++)
            buf[i * HOT_STRIDE]++;
    return NULL;
}

static void *background(void *arg)
{
    uint8_t *buf = arg;
    uint64_t x = 0x9e3779b97f4a7c15ull; /* xorshift state */
    struct timespec tick = {0, BG_TICK_NS};

    for (;;) {
        for (int i = 0; i < BG_PAGES_PER_TICK; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t page = x % BG_PAGES, off = (x >> 32) % (PAGE - BG_BYTES_PER_PAGE);
            memset(buf + page * PAGE + off, (int)(x >> 56), BG_BYTES_PER_PAGE);
        }
        nanosleep(&tick, NULL);
    }
    return NULL;
}

int main(void)
{
    /* Page-aligned (calloc's would start 16 bytes into a page), so that
     * the marks sit at MARK_OFFSET of each page. */
    char *hot = alloc_pages(HOT_PAGES);
    uint8_t *bg = alloc_pages(BG_PAGES);
    uint8_t *idle = alloc_pages(IDLE_PAGES);
    struct ledger_record *ring = alloc_pages(LEDGER_PAGES);
    static struct check_args ca;
    pthread_t t1, t2, t3, t4, t5;

    if (!hot || !bg || !idle || !ring) {
        puts("XCC_WORKLOAD out of memory");
        return 1;
    }
    /* Fault everything in now: no page-table churn once running. (No
     * mlockall: locking the threads' stacks too runs a small guest out of
     * memory, and init cannot be OOM-killed.) */
    memset(hot, 0, (size_t)HOT_PAGES * PAGE);
    memset(bg, 0x5a, (size_t)BG_PAGES * PAGE);
    memset(ring, 0xff, (size_t)LEDGER_PAGES * PAGE);
    for (uint64_t i = 0; i < HOT_PAGES; i++) {
        memcpy(hot + i * PAGE + MARK_OFFSET, HOT_MAGIC, 8);
        memcpy(hot + i * PAGE + MARK_OFFSET + 8, &i, 8);
    }
    for (uint64_t i = 0; i < IDLE_PAGES; i++) {
        memset(idle + i * PAGE, 0xc3, PAGE);
        memcpy(idle + i * PAGE + MARK_OFFSET, IDLE_MAGIC, 8);
        memcpy(idle + i * PAGE + MARK_OFFSET + 8, &i, 8);
    }
    memcpy(hb.magic, HB_MAGIC, sizeof(hb.magic));
    hb.gap_threshold_ns = HB_GAP_NS;
    hb.start_ns = hb.now_ns = boottime_ns();
    if (mlock(&hb, sizeof(hb)) < 0)
        puts("XCC_WORKLOAD cannot lock the heartbeat page");
    if (pthread_create(&t1, NULL, hotpages, hot) ||
        pthread_create(&t2, NULL, background, bg) ||
        pthread_create(&t3, NULL, heartbeat, NULL)) {
        puts("XCC_WORKLOAD cannot start threads");
        return 1;
    }
    ca = (struct check_args){.ring = ring, .hot = hot, .idle = idle};
    if (pthread_create(&t4, NULL, ledger, ring) ||
        pthread_create(&t5, NULL, selfcheck, &ca)) {
        puts("XCC_WORKLOAD cannot start threads");
        return 1;
    }
    printf("XCC_HEARTBEAT pfn %#llx\n", (unsigned long long)pfn_of(&hb));
    printf("XCC_WORKLOAD ready: hotpages %d pages, background %d pages, "
           "idle %d pages\n", HOT_PAGES, BG_PAGES, IDLE_PAGES);
    fflush(stdout);
    pthread_join(t1, NULL);
    return 0;
}
