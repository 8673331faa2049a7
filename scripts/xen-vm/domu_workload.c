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
 * It prints one line when both run, then stays quiet: console output would
 * keep the guest's console ring page changing after a save's final pass.
 *
 * Built static on the host: gcc -static -O2 -pthread.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096
#define HOT_PAGES 4096          /* the seed: calloc(4096, 4096) */
#define HOT_STRIDE (PAGE / 4)   /* the seed: 4 bytes per page per pass */
#define BG_PAGES 8192           /* 32 MiB of colder memory */
#define BG_PAGES_PER_TICK 40    /* ~400 pages/s at 10 ticks/s */
#define BG_TICK_NS 100000000L   /* 100 ms */
#define BG_BYTES_PER_PAGE 64    /* a partial rewrite, as most dirtying is */

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
    char *hot = calloc(HOT_PAGES, PAGE);
    uint8_t *bg = calloc(BG_PAGES, PAGE);
    pthread_t t1, t2;

    if (!hot || !bg) {
        puts("XCC_WORKLOAD out of memory");
        return 1;
    }
    /* Fault everything in now: no page-table churn once running. (No
     * mlockall: locking the threads' stacks too runs a small guest out of
     * memory, and init cannot be OOM-killed.) */
    memset(hot, 0, (size_t)HOT_PAGES * PAGE);
    memset(bg, 0x5a, (size_t)BG_PAGES * PAGE);
    if (pthread_create(&t1, NULL, hotpages, hot) ||
        pthread_create(&t2, NULL, background, bg)) {
        puts("XCC_WORKLOAD cannot start threads");
        return 1;
    }
    printf("XCC_WORKLOAD ready: hotpages %d pages, background %d pages\n",
           HOT_PAGES, BG_PAGES);
    fflush(stdout);
    pthread_join(t1, NULL);
    return 0;
}
