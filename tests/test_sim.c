/*
 * test_sim.c - the simulated guest: life cycle, bad input, the backend ops
 * (map, pfn types, populate), kernel dirty tracking in both modes, pause,
 * the ledger across SIGSTOP, restore copies and corruption, crash clean-up.
 *
 * Every test uses guest names with its pid and removes its guests (and
 * their processes) in its fini.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domain/sim.h"
#include "domain/sim_workload.h"
#include "test_hooks.h"

#define PAGE 4096u
#define MiB (1ull << 20)
/* Big enough for every workload area (ledger ends at 21 MiB). */
#define GUEST_MEM (32 * MiB)
#define GUEST_PFNS (GUEST_MEM / PAGE)

static char names[8][64];
static unsigned nnames;
static xcc_domain *doms[4];
static unsigned ndoms;

static const char *new_name(void)
{
    char *n = names[nnames++];

    snprintf(n, 64, "simtest-%d-%u", (int)getpid(), nnames);
    return n;
}

static void cleanup(void)
{
    for (unsigned i = 0; i < ndoms; i++)
        xcc_domain_close(doms[i]);
    ndoms = 0;
    for (unsigned i = 0; i < nnames; i++) {
        char dir[PATH_MAX];

        sim_path(dir, sizeof(dir), names[i], NULL);
        if (access(dir, F_OK) == 0)
            xcc_sim_stop(names[i], NULL);
    }
    nnames = 0;
}

static xcc_domain *open_dom(const char *name)
{
    char dname[96];
    xcc_domain *d;

    snprintf(dname, sizeof(dname), "sim:%s", name);
    d = xcc_domain_open(dname, NULL, 0);
    cr_assert_not_null(d, "open %s: %s", dname, strerror(errno));
    doms[ndoms++] = d;
    return d;
}

static bool dir_exists(const char *name)
{
    char dir[PATH_MAX];

    sim_path(dir, sizeof(dir), name, NULL);
    return access(dir, F_OK) == 0;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static struct xcc_sim_info info_of(const char *name)
{
    struct xcc_sim_info info;

    cr_assert_eq(xcc_sim_get_info(name, &info, NULL), 0, "info %s: %s", name,
                 strerror(errno));
    return info;
}

/* Waits until the guest has made n more workload passes. */
static void wait_ticks(const char *name, unsigned n)
{
    uint64_t start = info_of(name).ticks;

    for (int i = 0; i < 10000; i++) {
        if (info_of(name).ticks >= start + n)
            return;
        sleep_ms(1);
    }
    cr_assert_fail("guest %s made no progress", name);
}

static uint8_t *read_ram(const char *name, uint64_t mem)
{
    char path[PATH_MAX];
    uint8_t *buf = malloc(mem);
    int fd;

    cr_assert_not_null(buf);
    sim_path(path, sizeof(path), name, "ram");
    fd = open(path, O_RDONLY);
    cr_assert(fd >= 0, "open %s", path);
    cr_assert_eq(pread(fd, buf, mem, 0), (ssize_t)mem);
    close(fd);
    return buf;
}

static void write_ram(const char *name, const uint8_t *buf, uint64_t off,
                      uint64_t len)
{
    char path[PATH_MAX];
    int fd;

    sim_path(path, sizeof(path), name, "ram");
    fd = open(path, O_WRONLY);
    cr_assert(fd >= 0, "open %s", path);
    cr_assert_eq(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

/* Starts a guest; skips the test (cr_skip_test, reason printed) when `tracking` is
 * "pagemap" and the kernel lacks it. */
static bool start(const char *name, uint64_t mem, const char *wl,
                  const char *holes, const char *tracking)
{
    int rc = xcc_sim_start(name, mem, wl, 7, holes, tracking, NULL);

    if (rc < 0 && errno == ENOTSUP && tracking &&
        !strcmp(tracking, "pagemap")) {
        cr_skip_test("kernel lacks PAGEMAP_SCAN / async userfaultfd "
                     "write-protect (Linux 6.7)");
        return false;
    }
    cr_assert_eq(rc, 0, "start %s (%s): %s", name, wl, strerror(errno));
    return true;
}

/* perms ("r--s", "---p") of the mapping holding addr, from /proc/self/maps;
 * *lines receives how many mappings overlap [addr, addr + len). */
static void maps_of(const void *addr, size_t len, char perms[5],
                    unsigned *lines)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    uintptr_t a = (uintptr_t)addr;

    cr_assert_not_null(f);
    *lines = 0;
    perms[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char p[5];

        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) != 3)
            continue;
        if (hi > a && lo < a + len)
            (*lines)++;
        if (a >= lo && a < hi)
            memcpy(perms, p, 5);
    }
    fclose(f);
}

TestSuite(sim, .fini = cleanup, .timeout = 120);

/* ---- names and bad input ---- */

Test(sim, bad_names_rejected)
{
    const char *bad[] = {"",
                         ".",
                         "..",
                         "../escape",
                         "a/b",
                         "sp ace",
                         "x\n",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                         "aaaaaaaaaaaaaaa"}; /* 66 characters */

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        cr_expect_eq(xcc_sim_create(bad[i], 4 * MiB, NULL), -1, "'%s'", bad[i]);
        cr_expect_eq(errno, EINVAL, "'%s': errno %d", bad[i], errno);
        errno = 0;
        cr_expect_eq(
            xcc_sim_start(bad[i], 4 * MiB, "idle", 1, NULL, NULL, NULL), -1);
        cr_expect_eq(errno, EINVAL);
        cr_expect_eq(xcc_sim_stop(bad[i], NULL), -1);
    }
    cr_expect_eq(access(SIM_ROOT "/escape", F_OK), -1);
}

Test(sim, bad_input_leaves_nothing)
{
    const char *n = new_name();
    struct {
        uint64_t mem;
        const char *wl, *holes, *tracking;
    } cases[] = {
        {4096 * 3 + 1, "idle", NULL, NULL},     /* not a page multiple */
        {0, "idle", NULL, NULL},                /* empty */
        {8 * MiB, "nosuch", NULL, NULL},        /* unknown workload */
        {8 * MiB, "idle+", NULL, NULL},         /* empty part */
        {8 * MiB, "random", NULL, NULL},        /* rate missing */
        {8 * MiB, "random:0", NULL, NULL},      /* rate 0 */
        {8 * MiB, "random:10:1.5", NULL, NULL}, /* fraction > 1 */
        {8 * MiB, "hotpages:3", NULL, NULL},    /* no parameter */
        {16 * MiB, "ledger", NULL, NULL},       /* RAM too small */
        {32 * MiB, "ledger", "4400", NULL},     /* hole in the ledger */
        {8 * MiB, "idle", "5000-9000", NULL},   /* hole beyond RAM */
        {8 * MiB, "idle", "7-x", NULL},         /* malformed holes */
        {8 * MiB, "idle", NULL, "sometimes"},   /* tracking mode */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        errno = 0;
        cr_expect_eq(xcc_sim_start(n, cases[i].mem, cases[i].wl, 1,
                                   cases[i].holes, cases[i].tracking, NULL),
                     -1, "case %zu accepted", i);
        cr_expect_eq(errno, EINVAL, "case %zu: errno %d", i, errno);
        cr_expect(!dir_exists(n), "case %zu left %s behind", i, n);
    }
}

Test(sim, name_in_use)
{
    const char *n = new_name();

    cr_assert_eq(xcc_sim_create(n, 4 * MiB, NULL), 0);
    errno = 0;
    cr_expect_eq(xcc_sim_create(n, 4 * MiB, NULL), -1);
    cr_expect_eq(errno, EEXIST);
    errno = 0;
    cr_expect_eq(xcc_sim_start(n, 4 * MiB, "idle", 1, NULL, NULL, NULL), -1);
    cr_expect_eq(errno, EEXIST);
    cr_expect(dir_exists(n), "the existing guest must survive");
}

Test(sim, open_missing_is_enoent)
{
    errno = 0;
    cr_expect_null(xcc_domain_open("sim:simtest-no-such-guest", NULL, 0));
    cr_expect_eq(errno, ENOENT);
    errno = 0;
    cr_expect_eq(xcc_sim_stop("simtest-no-such-guest", NULL), -1);
    cr_expect_eq(errno, ENOENT);
    errno = 0;
    cr_expect_eq(xcc_sim_resume("simtest-no-such-guest", "idle", 1, NULL), -1);
    cr_expect_eq(errno, ENOENT);
}

/* ---- the backend ops ---- */

Test(sim, created_target_ops)
{
    const char *n = new_name();
    struct xcc_domain_info di;
    uint64_t pfns[3] = {0, 2047, 2048}, bm[32] = {0};
    uint8_t types[3];

    cr_assert_eq(xcc_sim_create(n, 8 * MiB, NULL), 0);
    xcc_domain *d = open_dom(n);
    cr_assert_eq(d->ops->info(d, &di), 0);
    cr_expect_eq(di.nr_pfns, 2048);
    cr_expect_eq(di.page_size, PAGE);
    cr_expect_eq(di.stream_type, XCC_DHDR_TYPE_SIM);
    cr_assert_eq(d->ops->pfn_types(d, pfns, types, 3), 0);
    cr_expect_eq(types[0], XCC_PFN_NORMAL);
    cr_expect_eq(types[1], XCC_PFN_NORMAL);
    cr_expect_eq(types[2], XCC_PFN_XTAB);
    cr_expect_eq(d->ops->populate(d, pfns, 2), 0);
    errno = 0;
    cr_expect_eq(d->ops->populate(d, pfns, 3), -1);
    cr_expect_eq(errno, EINVAL);
    /* no process: pause is a no-op, nothing is dirty */
    cr_expect_eq(d->ops->pause(d), 0);
    cr_expect_eq(d->ops->unpause(d), 0);
    cr_expect_eq(d->ops->logdirty_enable(d), 0);
    cr_expect_eq(d->ops->logdirty_clean(d, bm, false), 0);
    struct xcc_sim_info info = info_of(n);
    cr_expect_eq(info.state, XCC_SIM_NONE);
    errno = 0;
    cr_expect_eq(xcc_sim_pause(n, NULL), -1);
    cr_expect_eq(errno, ESRCH);
}

Test(sim, map_run_is_one_vma_and_reads_the_file)
{
    const char *n = new_name();
    uint8_t page[PAGE];
    uint64_t pfns[10];
    int err[10];
    char perms[5];
    unsigned lines;

    cr_assert_eq(xcc_sim_create(n, 8 * MiB, NULL), 0);
    for (uint64_t p = 100; p < 110; p++) {
        memset(page, (int)p, PAGE);
        write_ram(n, page, p * PAGE, PAGE);
    }
    xcc_domain *d = open_dom(n);
    for (int i = 0; i < 10; i++)
        pfns[i] = 100 + i;
    uint8_t *m = d->ops->map(d, false, pfns, err, 10);
    cr_assert_not_null(m);
    maps_of(m, 10 * PAGE, perms, &lines);
    cr_expect_eq(lines, 1, "a contiguous run must be one VMA, got %u", lines);
    cr_expect_str_eq(perms, "r--s");
    for (int i = 0; i < 10; i++) {
        cr_expect_eq(err[i], 0);
        cr_expect_eq(m[i * PAGE + 17], (uint8_t)(100 + i));
    }
    cr_expect_eq(d->ops->unmap(d, m, 10), 0);

    /* writable: writes land in the RAM file */
    m = d->ops->map(d, true, pfns, err, 1);
    cr_assert_not_null(m);
    m[5] = 0xEE;
    d->ops->unmap(d, m, 1);
    uint8_t *ram = read_ram(n, 8 * MiB);
    cr_expect_eq(ram[100 * PAGE + 5], 0xEE);
    free(ram);
}

Test(sim, map_scattered_with_holes)
{
    const char *n = new_name();
    uint64_t pfns[7] = {3, 5, 7, 100, 101, 50, 1ull << 40};
    int err[7];
    uint8_t types[7];
    char perms[5];
    unsigned lines;

    start(n, 8 * MiB, "idle", "5,7-8", NULL);
    xcc_domain *d = open_dom(n);
    uint8_t *ram = read_ram(n, 8 * MiB);
    cr_assert_eq(d->ops->pfn_types(d, pfns, types, 7), 0);
    cr_expect_eq(types[0], XCC_PFN_NORMAL);
    cr_expect_eq(types[1], XCC_PFN_XTAB);
    cr_expect_eq(types[2], XCC_PFN_XTAB);
    cr_expect_eq(types[6], XCC_PFN_XTAB);

    uint8_t *m = d->ops->map(d, false, pfns, err, 7);
    cr_assert_not_null(m);
    int want[7] = {0, -ENOENT, -ENOENT, 0, 0, 0, -EINVAL};
    for (int i = 0; i < 7; i++) {
        cr_expect_eq(err[i], want[i], "err[%d] = %d", i, err[i]);
        if (!want[i])
            cr_expect_eq(memcmp(m + i * PAGE, ram + pfns[i] * PAGE, PAGE), 0,
                         "slot %d holds the wrong page", i);
    }
    maps_of(m + 1 * PAGE, PAGE, perms, &lines);
    cr_expect_str_eq(perms, "---p", "a hole's slot must be inaccessible");
    maps_of(m + 6 * PAGE, PAGE, perms, &lines);
    cr_expect_str_eq(perms, "---p");
    d->ops->unmap(d, m, 7);

    /* holes stay zero */
    for (uint64_t p = 5; p <= 8; p++)
        for (unsigned b = 0; b < PAGE && p != 6; b++)
            cr_assert_eq(ram[p * PAGE + b], 0, "hole %lu is not zero",
                         (unsigned long)p);
    /* the fill is non-trivial, with some zero pages kept */
    unsigned zero = 0;
    for (uint64_t p = 0; p < 2048; p++) {
        bool z = true;
        for (unsigned b = 0; b < PAGE && z; b++)
            z = ram[p * PAGE + b] == 0;
        zero += z;
    }
    cr_expect(zero > 4 + 20 && zero < 2048 / 4, "%u zero pages", zero);
    free(ram);
}

Test(sim, map_failure_hook)
{
    const char *n = new_name();
    uint64_t pfn = 1;
    int err;

    cr_assert_eq(xcc_sim_create(n, 4 * MiB, NULL), 0);
    xcc_domain *d = open_dom(n);
    sim_test_fail_maps(d, 2, ENOMEM);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        cr_expect_null(d->ops->map(d, false, &pfn, &err, 1));
        cr_expect_eq(errno, ENOMEM);
    }
    void *m = d->ops->map(d, false, &pfn, &err, 1);
    cr_expect_not_null(m);
    d->ops->unmap(d, m, 1);
}

/* ---- dirty tracking ---- */

/*
 * The guest runs between a paused clean and a paused final clean, with live
 * cleans in between (as a precopy does). Every page whose bytes changed
 * must be in the union of the cleans.
 */
/* Runs of set bits in bm: the regions a PAGEMAP_SCAN had to return. */
static uint64_t runs_of(const uint64_t *bm, uint64_t nr)
{
    uint64_t runs = 0;

    for (uint64_t p = 0; p < nr; p++)
        runs += sim_bit(bm, p) && (p == 0 || !sim_bit(bm, p - 1));
    return runs;
}

static void no_false_negatives(const char *tracking, uint64_t mem,
                               const char *workload, uint64_t *max_runs)
{
    const char *n = new_name();
    const uint64_t nr = mem / PAGE;
    uint64_t words = (nr + 63) / 64;
    uint64_t *uni = calloc(words, 8), *bm = calloc(words, 8);
    uint64_t changed = 0, reported = 0, missed = 0;

    *max_runs = 0;
    if (!start(n, mem, workload, NULL, tracking))
        return;
    cr_assert_str_eq(info_of(n).tracking, tracking);
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_logdirty_enable(d), 0);
    for (int round = 0; round < 3; round++) {
        cr_assert_eq(xcc_domain_pause(d), 0);
        cr_assert_geq(xcc_sim_logdirty_clean(d, bm), 0);
        uint8_t *before = read_ram(n, mem);
        memset(uni, 0, words * 8);
        cr_assert_eq(xcc_domain_unpause(d), 0);
        for (int live = 0; live < 5; live++) {
            wait_ticks(n, 3);
            memset(bm, 0, words * 8);
            cr_assert_geq(xcc_sim_logdirty_clean(d, bm), 0);
            for (uint64_t w = 0; w < words; w++)
                uni[w] |= bm[w];
            if (runs_of(bm, nr) > *max_runs)
                *max_runs = runs_of(bm, nr);
        }
        wait_ticks(n, 2);
        cr_assert_eq(xcc_domain_pause(d), 0);
        memset(bm, 0, words * 8);
        cr_assert_geq(xcc_sim_logdirty_clean(d, bm), 0);
        for (uint64_t w = 0; w < words; w++)
            uni[w] |= bm[w];
        uint8_t *after = read_ram(n, mem);
        for (uint64_t p = 0; p < nr; p++) {
            bool ch = memcmp(before + p * PAGE, after + p * PAGE, PAGE) != 0;
            bool rep = sim_bit(uni, p);

            changed += ch;
            reported += rep;
            if (ch && !rep) {
                missed++;
                cr_expect(rep, "%s: pfn %lu changed but was not reported",
                          tracking, (unsigned long)p);
            }
        }
        free(before);
        free(after);
        cr_assert_eq(xcc_domain_unpause(d), 0);
    }
    fprintf(stderr,
            "dirty tracking %s: %lu pages changed, %lu reported "
            "(over-reporting %.1f%%), %lu missed\n",
            tracking, (unsigned long)changed, (unsigned long)reported,
            changed ? 100.0 * (double)(reported - changed) / (double)changed
                    : 0.0,
            (unsigned long)missed);
    cr_expect_eq(missed, 0);
    cr_expect_gt(changed, 3 * 1000, "the workload hardly ran");
    free(uni);
    free(bm);
}

#define MIXED "hotpages+sparse64+ledger+random:20000:0.02"

Test(sim, dirty_pagemap_no_false_negatives)
{
    uint64_t runs;

    no_false_negatives("pagemap", GUEST_MEM, MIXED, &runs);
}

Test(sim, dirty_bitmap_no_false_negatives)
{
    uint64_t runs;

    no_false_negatives("bitmap", GUEST_MEM, MIXED, &runs);
}

/* Scattered writes: a clean returns more regions than one PAGEMAP_SCAN
 * vector holds (4096), so the walk must resume at walk_end. */
Test(sim, dirty_pagemap_many_regions, .timeout = 300)
{
    uint64_t runs;

    no_false_negatives("pagemap", 128 * MiB, "random:2000000:0.001", &runs);
    if (runs)
        cr_expect_gt(runs, 4096, "only %lu regions in a clean",
                     (unsigned long)runs);
}

/* An idle guest writes nothing, so a clean reports nothing: the tracking is
 * not simply "everything". */
static void idle_reports_nothing(const char *tracking)
{
    const char *n = new_name();
    uint64_t bm[(8 * MiB / PAGE) / 64];

    if (!start(n, 8 * MiB, "idle", NULL, tracking))
        return;
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_logdirty_enable(d), 0);
    wait_ticks(n, 1); /* it ran a workload pass since the enable */
    memset(bm, 0, sizeof(bm));
    cr_expect_eq(xcc_sim_logdirty_clean(d, bm), 0);
}

Test(sim, idle_pagemap_reports_nothing)
{
    idle_reports_nothing("pagemap");
}

Test(sim, idle_bitmap_reports_nothing)
{
    idle_reports_nothing("bitmap");
}

/* A process that appears under an open domain (resume of a restore target)
 * is picked up from meta.json, and its writes are tracked. */
Test(sim, resumed_process_is_tracked)
{
    const char *n = new_name();
    uint64_t words = (GUEST_PFNS + 63) / 64, *bm = calloc(words, 8);

    cr_assert_eq(xcc_sim_create(n, GUEST_MEM, NULL), 0);
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_logdirty_enable(d), 0);
    cr_assert_eq(xcc_sim_logdirty_clean(d, bm), 0);
    cr_assert_eq(xcc_sim_resume(n, "hotpages", 1, NULL), 0);
    wait_ticks(n, 3);
    cr_assert_eq(xcc_domain_pause(d), 0);
    cr_expect_eq(info_of(n).state, XCC_SIM_PAUSED);
    int64_t got = xcc_sim_logdirty_clean(d, bm);
    cr_expect_geq(got, 4096);
    for (uint64_t p = 0; p < 4096; p++)
        cr_expect(sim_bit(bm, p), "hotpages pfn %lu not reported",
                  (unsigned long)p);
    free(bm);
}

/* A guest killed between cleans: its last writes are unknown, so the next
 * clean reports every page, then nothing. */
Test(sim, crash_reports_all_then_cleans_up)
{
    const char *n = new_name();
    uint64_t words = (8 * MiB / PAGE + 63) / 64, *bm = calloc(words, 8);
    struct xcc_sim_info info;

    if (!start(n, 8 * MiB, "random:1000", NULL, "pagemap"))
        return;
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_logdirty_enable(d), 0);
    info = info_of(n);
    cr_assert_eq(info.state, XCC_SIM_RUNNING);
    cr_assert_eq(kill((pid_t)info.pid, SIGKILL), 0);
    for (int i = 0; i < 5000 && info_of(n).state != XCC_SIM_DEAD; i++)
        sleep_ms(1);
    cr_expect_eq(info_of(n).state, XCC_SIM_DEAD);
    cr_expect_eq(xcc_sim_logdirty_clean(d, bm), (int64_t)(8 * MiB / PAGE));
    memset(bm, 0, words * 8);
    cr_expect_eq(xcc_sim_logdirty_clean(d, bm), 0);
    errno = 0;
    cr_expect_eq(xcc_sim_pause(n, NULL), -1);
    cr_expect_eq(errno, ESRCH);
    cr_expect_eq(xcc_domain_pause(d), 0, "no process: pause is a no-op");
    cr_expect_eq(xcc_sim_stop(n, NULL), 0);
    cr_expect(!dir_exists(n));
    cr_expect(!sim_proc_alive(sim_proc_state((pid_t)info.pid, 0)));
    free(bm);
}

Test(sim, stop_leaves_nothing)
{
    const char *n = new_name();
    struct xcc_sim_info info;

    start(n, GUEST_MEM, "hotpages", NULL, NULL);
    info = info_of(n);
    cr_assert_gt(info.pid, 0);
    cr_assert_eq(xcc_sim_pause(n, NULL), 0); /* stop works on paused ones */
    cr_assert_eq(xcc_sim_stop(n, NULL), 0);
    cr_expect(!dir_exists(n));
    cr_expect(!sim_proc_alive(sim_proc_state((pid_t)info.pid, 0)),
              "guest process %ld still there", (long)info.pid);
}

/* ---- pause ---- */

static void digest_of(xcc_domain *d, uint8_t out[16])
{
    cr_assert_geq(xcc_domain_digest(d, 0, out, NULL, 0), 0);
}

Test(sim, pause_stops_writes)
{
    const char *n = new_name();
    uint8_t a[16], b[16], c[16];

    start(n, GUEST_MEM, "hotpages+random:5000", NULL, NULL);
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_pause(n, NULL), 0);
    cr_expect_eq(info_of(n).state, XCC_SIM_PAUSED);
    digest_of(d, a);
    sleep_ms(200);
    digest_of(d, b);
    cr_expect_eq(memcmp(a, b, 16), 0, "RAM changed while paused");
    cr_assert_eq(xcc_sim_unpause(n, NULL), 0);
    cr_expect_eq(info_of(n).state, XCC_SIM_RUNNING);
    wait_ticks(n, 2);
    digest_of(d, c);
    cr_expect_neq(memcmp(a, c, 16), 0, "RAM did not change after unpause");
}

/*
 * XCC_DIGEST_EXCLUDE_LISTED: the listed pfns hash as zero pages. The
 * digest with pages 3 and 100..102 listed equals the plain digest once
 * those pages are zeroed, and differs from it before.
 */
Test(sim, digest_leaves_listed_pages_out)
{
    const char *n = new_name();
    const uint64_t mem = 4 * MiB;
    const uint64_t listed[] = {102, 3, 100, 101, 3};
    uint8_t plain[16], excl[16], zeroed[16];
    uint8_t zero[PAGE] = {0}, page[PAGE];

    start(n, mem, "idle", NULL, NULL);
    xcc_domain *d = open_dom(n);
    cr_assert_eq(xcc_sim_pause(n, NULL), 0);
    for (uint64_t p = 0; p < mem / PAGE; p++) {
        memset(page, (int)(p % 251) + 1, sizeof(page));
        write_ram(n, page, p * PAGE, PAGE);
    }
    cr_assert_eq(xcc_domain_digest_exclude(d, listed, 5), 0);
    cr_assert_geq(xcc_domain_digest(d, 0, plain, NULL, 0), 0);
    cr_assert_geq(xcc_domain_digest(d, XCC_DIGEST_EXCLUDE_LISTED, excl, NULL, 0),
                  0);
    cr_assert_neq(memcmp(plain, excl, 16), 0, "listed pages were hashed");
    write_ram(n, zero, 3 * PAGE, PAGE);
    for (uint64_t p = 100; p <= 102; p++)
        write_ram(n, zero, p * PAGE, PAGE);
    cr_assert_geq(xcc_domain_digest(d, 0, zeroed, NULL, 0), 0);
    cr_assert_eq(memcmp(zeroed, excl, 16), 0,
                 "the digest without the listed pages is not that of the "
                 "guest with them zeroed");
    /* A pfn beyond the guest is refused; an empty list clears it. */
    const uint64_t beyond = mem / PAGE;
    cr_assert_eq(xcc_domain_digest_exclude(d, &beyond, 1), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(xcc_domain_digest_exclude(d, NULL, 0), 0);
    cr_assert_geq(xcc_domain_digest(d, XCC_DIGEST_EXCLUDE_LISTED, excl, NULL, 0),
                  0);
    cr_assert_eq(memcmp(zeroed, excl, 16), 0);
}

/*
 * count:N never returns a page to an earlier content: snapshots of RAM
 * taken at different tick counts all differ. (Its old 8-bit adders brought
 * every page back after 256 ticks, and such an epoch cost XBZRLE nothing.)
 * The snapshots span well over 256 ticks.
 */
Test(sim, count_pages_never_repeat)
{
    const char *n = new_name();
    const uint64_t mem = 4 * MiB;
    enum { SNAPS = 160 };
    uint64_t hash[SNAPS], ticks[SNAPS];

    start(n, mem, "count:8", NULL, NULL);
    for (unsigned i = 0; i < SNAPS; i++) {
        wait_ticks(n, 3);
        cr_assert_eq(xcc_sim_pause(n, NULL), 0);
        uint8_t *ram = read_ram(n, mem);

        ticks[i] = info_of(n).ticks;
        hash[i] = 1469598103934665603ull; /* FNV-1a */
        for (uint64_t b = 0; b < mem; b += 8) {
            uint64_t w;

            memcpy(&w, ram + b, 8);
            hash[i] = (hash[i] ^ w) * 1099511628211ull;
        }
        free(ram);
        cr_assert_eq(xcc_sim_unpause(n, NULL), 0);
    }
    cr_assert_gt(ticks[SNAPS - 1] - ticks[0], 256, "only %" PRIu64 " ticks",
                 ticks[SNAPS - 1] - ticks[0]);
    for (unsigned i = 0; i < SNAPS; i++)
        for (unsigned j = i + 1; j < SNAPS; j++)
            if (ticks[j] != ticks[i])
                cr_assert_neq(hash[i], hash[j],
                              "RAM at tick %" PRIu64 " equals RAM at tick %" PRIu64,
                              ticks[j], ticks[i]);
}

/* ---- ledger ---- */

static int verify(const char *name, char *report, size_t len)
{
    int rc = xcc_sim_verify(name, NULL, report, len);

    cr_assert_geq(rc, 0, "verify %s: %s", name, strerror(errno));
    return rc;
}

/* The ledger holds at every instant a SIGSTOP can catch, mid-update too. */
Test(sim, ledger_consistent_at_any_stop)
{
    const char *n = new_name();
    char report[4096];
    unsigned seed = 12345;

    start(n, GUEST_MEM, "ledger+hotpages", NULL, NULL);
    for (int i = 0; i < 40; i++) {
        struct timespec ts = {0, (long)(rand_r(&seed) % 3000000)};

        nanosleep(&ts, NULL);
        cr_assert_eq(xcc_sim_pause(n, NULL), 0);
        cr_expect_eq(verify(n, report, sizeof(report)), 0, "stop %d: %s", i,
                     report);
        cr_assert_eq(xcc_sim_unpause(n, NULL), 0);
    }
    /* verify pauses a running guest itself, and leaves it running */
    cr_expect_eq(verify(n, report, sizeof(report)), 0, "%s", report);
    cr_expect_eq(info_of(n).state, XCC_SIM_RUNNING);
}

Test(sim, ledger_absent_is_reported)
{
    const char *n = new_name();
    char report[512];

    cr_assert_eq(xcc_sim_create(n, GUEST_MEM, NULL), 0);
    cr_expect_eq(verify(n, report, sizeof(report)), 1);
    cr_expect(strstr(report, "no ledger"), "%s", report);
}

/* Copies src's paused RAM into a new target, as a restore would. */
static const char *restore_copy(const char *src, uint8_t **ram_out)
{
    const char *t = new_name();
    uint8_t *ram;

    cr_assert_eq(xcc_sim_pause(src, NULL), 0);
    ram = read_ram(src, GUEST_MEM);
    cr_assert_eq(xcc_sim_unpause(src, NULL), 0);
    cr_assert_eq(xcc_sim_create(t, GUEST_MEM, NULL), 0);
    write_ram(t, ram, 0, GUEST_MEM);
    if (ram_out)
        *ram_out = ram;
    else
        free(ram);
    return t;
}

Test(sim, restored_ram_resumes_and_verifies)
{
    const char *src = new_name();
    char report[4096];
    uint8_t page[PAGE];

    start(src, GUEST_MEM, "ledger+hotpages", NULL, NULL);
    wait_ticks(src, 5);
    const char *t = restore_copy(src, NULL);
    cr_expect_eq(verify(t, report, sizeof(report)), 0, "%s", report);
    cr_assert_eq(xcc_sim_resume(t, "ledger+hotpages", 3, NULL), 0);
    cr_expect_eq(info_of(t).state, XCC_SIM_RUNNING);
    wait_ticks(t, 50); /* 1600 more ledger updates on the copy */
    cr_expect_eq(verify(t, report, sizeof(report)), 0, "%s", report);

    /* damage one ledger page of the paused copy: verify names it */
    cr_assert_eq(xcc_sim_pause(t, NULL), 0);
    memset(page, 0x5A, PAGE);
    write_ram(t, page, (SIM_LEDGER_FIRST_PFN + 77) * PAGE, PAGE);
    cr_expect_eq(verify(t, report, sizeof(report)), 1);
    cr_expect(strstr(report, "page pfn 4429:"), "%s", report);
    cr_expect(strstr(report, "in 1 page(s)"), "only that page: %s", report);

    /* a broken ledger is not resumed */
    uint8_t *ram = read_ram(t, GUEST_MEM);
    const char *t2 = new_name();
    cr_assert_eq(xcc_sim_create(t2, GUEST_MEM, NULL), 0);
    write_ram(t2, ram, 0, GUEST_MEM);
    free(ram);
    errno = 0;
    cr_expect_eq(xcc_sim_resume(t2, "ledger", 1, NULL), -1);
    cr_expect_eq(errno, EBADMSG);
    cr_expect_eq(info_of(t2).state, XCC_SIM_NONE, "nothing left running");
}

/* One page from an older image among newer ones: its records are stale and
 * break their neighbours' checksums. */
Test(sim, stale_page_is_found)
{
    const char *src = new_name();
    char report[4096];
    uint8_t *old_ram, *new_ram;

    start(src, GUEST_MEM, "ledger", NULL, NULL);
    const char *t = restore_copy(src, &old_ram);
    wait_ticks(src, 40); /* > 1024 updates: every ledger page rewritten */
    cr_assert_eq(xcc_sim_pause(src, NULL), 0);
    new_ram = read_ram(src, GUEST_MEM);
    memcpy(new_ram + (SIM_LEDGER_FIRST_PFN + 500) * PAGE,
           old_ram + (SIM_LEDGER_FIRST_PFN + 500) * PAGE, PAGE);
    write_ram(t, new_ram, 0, GUEST_MEM);
    cr_expect_eq(verify(t, report, sizeof(report)), 1);
    cr_expect(strstr(report, "page pfn 4852:"), "%s", report);
    free(old_ram);
    free(new_ram);
}

/* ---- meta states ---- */

Test(sim, incomplete_and_list)
{
    const char *n = new_name();
    struct xcc_sim_info *list;
    size_t count;
    bool found = false;

    cr_assert_eq(xcc_sim_create(n, 4 * MiB, NULL), 0);
    cr_assert_eq(xcc_sim_set_incomplete(n, 1, NULL), 0);
    cr_expect_eq(info_of(n).state, XCC_SIM_INCOMPLETE);
    errno = 0;
    cr_expect_eq(xcc_sim_resume(n, "idle", 1, NULL), -1);
    cr_expect_eq(errno, EINVAL);
    cr_assert_eq(xcc_sim_list(&list, &count, NULL), 0);
    for (size_t i = 0; i < count; i++) {
        if (!strcmp(list[i].name, n)) {
            found = true;
            cr_expect_eq(list[i].state, XCC_SIM_INCOMPLETE);
            cr_expect_eq(list[i].mem_bytes, 4 * MiB);
        }
    }
    free(list);
    cr_expect(found);
    cr_assert_eq(xcc_sim_set_incomplete(n, 0, NULL), 0);
    cr_expect_eq(info_of(n).state, XCC_SIM_NONE);
    cr_expect_str_eq(xcc_sim_state_name(XCC_SIM_DEAD), "dead");
}

Test(sim, resume_refuses_a_running_guest)
{
    const char *n = new_name();

    start(n, 8 * MiB, "idle", NULL, NULL);
    errno = 0;
    cr_expect_eq(xcc_sim_resume(n, "idle", 1, NULL), -1);
    cr_expect_eq(errno, EBUSY);
    errno = 0;
    cr_expect_eq(xcc_sim_set_tracking(n, "bitmap", NULL), -1);
    cr_expect_eq(errno, EBUSY);
}

/* ---- meta.json (json-c) ---- */

static void write_meta(const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    sim_path(path, sizeof(path), name, "meta.json");
    f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

/* Every field survives a write and a read, at the ends of its range. */
Test(sim, meta_round_trip)
{
    const char *n = new_name();
    struct sim_meta m, back;

    cr_assert_eq(xcc_sim_create(n, 4 * MiB, NULL), 0);
    cr_assert_eq(sim_meta_read(n, &m, NULL), 0);
    m.seed = UINT64_MAX;
    m.pid_start = UINT64_MAX - 1;
    m.ram_addr = 0x7fffffffe000ull;
    snprintf(m.workload, sizeof(m.workload), "%s", "ledger+random:5:0.5");
    snprintf(m.holes, sizeof(m.holes), "%s", "1-2,\"quoted\\\"");
    m.incomplete = 1;
    cr_assert_eq(sim_meta_write(n, &m, NULL), 0);
    cr_assert_eq(sim_meta_read(n, &back, NULL), 0);
    cr_expect_eq(back.seed, UINT64_MAX);
    cr_expect_eq(back.pid_start, UINT64_MAX - 1);
    cr_expect_eq(back.ram_addr, 0x7fffffffe000ull);
    cr_expect_eq(back.mem_bytes, 4 * MiB);
    cr_expect_eq(back.page_size, PAGE);
    cr_expect_str_eq(back.workload, m.workload);
    cr_expect_str_eq(back.holes, m.holes);
    cr_expect_eq(back.incomplete, 1);
}

/* A malformed meta.json is refused (EINVAL), the guest lists as invalid,
 * and nothing crashes. */
Test(sim, meta_malformed_refused)
{
    const char *bad[] = {
        "",
        "{",
        "[1, 2]",
        "{\"mem_bytes\": 4194304}",                     /* no page size */
        "{\"mem_bytes\": \"4194304\", \"page_size\": 4096}", /* a string */
        "{\"mem_bytes\": 4194304, \"page_size\": 4096, \"pid\": -5}",
        "{\"mem_bytes\": 4194304, \"page_size\": 4096, \"seed\": 1.5}",
        "{\"mem_bytes\": 4194304, \"page_size\": 4096} trailing",
        "{\"mem_bytes\": 4194304, \"page_size\": 4096, \"tracking\": "
        "\"far-too-long-for-the-field\"}",
    };
    const char *n = new_name();
    struct sim_meta m;

    cr_assert_eq(xcc_sim_create(n, 4 * MiB, NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_meta(n, bad[i]);
        errno = 0;
        cr_expect_eq(sim_meta_read(n, &m, NULL), -1, "accepted '%s'", bad[i]);
        cr_expect_eq(errno, EINVAL, "'%s': errno %d", bad[i], errno);
        cr_expect_eq(info_of(n).state, XCC_SIM_INVALID, "'%s'", bad[i]);
    }
    /* unknown keys are ignored, missing ones are zero */
    write_meta(n, "{\"mem_bytes\": 4194304, \"page_size\": 4096, "
                  "\"future\": {\"x\": [1]}}");
    cr_expect_eq(sim_meta_read(n, &m, NULL), 0);
    cr_expect_eq(m.pid, 0);
    cr_expect_str_eq(m.workload, "");
}

/* The guest runs the helper executable (posix_spawn, then exec), not a
 * fork of the caller, and is not the caller's child. */
Test(sim, guest_is_the_helper_executable)
{
    const char *n = new_name();
    char path[64], exe[PATH_MAX];
    struct xcc_sim_info info;
    ssize_t len;
    unsigned ppid = 0;
    FILE *f;

    start(n, 8 * MiB, "idle", NULL, NULL);
    info = info_of(n);
    cr_assert_gt(info.pid, 0);
    snprintf(path, sizeof(path), "/proc/%d/exe", (int)info.pid);
    len = readlink(path, exe, sizeof(exe) - 1);
    cr_assert_gt(len, 0, "readlink %s: %s", path, strerror(errno));
    exe[len] = '\0';
    cr_expect(strstr(exe, "/libexec/xc-colo/" SIM_GUEST_HELPER) != NULL,
              "guest process runs %s", exe);
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)info.pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_eq(fscanf(f, "%*d (%*[^)]) %*c %u", &ppid), 1);
    fclose(f);
    cr_expect_neq(ppid, (unsigned)getpid(), "the guest is the caller's child");
}
