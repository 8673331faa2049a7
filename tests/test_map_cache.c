/*
 * test_map_cache.c - the persistent map cache.
 *
 * Most tests run against the real sim backend (a RAM file in tmpfs, mapped
 * by the cache as a saver would). A few need what the sim cannot do: a hole
 * that fills while the cache holds its chunk, a pfn whose backing page
 * changes (ballooning), or a 1 TiB guest without the memory. Those use a
 * small memfd-backed backend defined here, behind the same ops table.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "domain/domain.h"
#include "domain/sim.h"
#include "test_hooks.h"

#define PAGE 4096u
#define MIB (1024ull * 1024)
#define GIB (1024 * MIB)
#define CHUNK_PFNS 1024u
#define BATCH 1024u

/* Map cache params with the size set, as xcc_map_cache_params_init does,
 * and the given fields (the others are 0, the defaults). */
#define MC_PARAMS(...)                                                         \
    ((struct xcc_map_cache_params){                                            \
        .size = sizeof(struct xcc_map_cache_params), __VA_ARGS__})

/* ---- a fake backend: memfd RAM, holes and a pfn -> frame table --------- */

struct fake {
    int fd;
    uint64_t nr_pfns;
    uint8_t *hole;      /* 1 = the pfn has no page */
    uint64_t *frame;    /* pfn -> page of the memfd */
    unsigned fail_left; /* next map calls that fail whole */
    int fail_errno;

    /* As a Xen backend re-reading a PV p2m: pfn_types compares frame[]
     * with the table it last saw and reports the pfns that moved. */
    uint64_t *seen_frame;
    unsigned maps, cleans;
    /* Moved at the first clean after a map: pfn move_pfn to frame
     * move_to, reported dirty as a guest's write would be. */
    uint64_t move_pfn, move_to;
    bool move_pending;
    bool report_in_map; /* map calls report moves too, as Xen's PV map
                           re-reads the p2m when a frame moved */
};

/* Reports each run of pfns whose frame changed since the last call. */
static void fake_report_moves(xcc_domain *d)
{
    struct fake *f = d->priv;

    for (uint64_t p = 0; p < f->nr_pfns;) {
        uint64_t q = p;

        while (q < f->nr_pfns && f->seen_frame[q] != f->frame[q]) {
            f->seen_frame[q] = f->frame[q];
            q++;
        }
        if (q > p)
            domain_mapping_changed(d, p, q - p, DOMAIN_CHANGE_FRAME);
        p = q + 1;
    }
}

static int fake_pfn_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                          size_t n)
{
    struct fake *f = d->priv;

    fake_report_moves(d);
    for (size_t i = 0; i < n; i++)
        types[i] = pfns[i] < f->nr_pfns && !f->hole[pfns[i]] ? XCC_PFN_NORMAL
                                                            : XCC_PFN_XTAB;
    return 0;
}

static int fake_noop(xcc_domain *d)
{
    return 0;
}

static int64_t fake_clean(xcc_domain *d, uint64_t *bitmap, bool final)
{
    struct fake *f = d->priv;

    f->cleans++;
    if (f->move_pending && f->maps) {
        f->move_pending = false;
        f->frame[f->move_pfn] = f->move_to;
        bitmap[f->move_pfn / 64] |= 1ull << (f->move_pfn % 64);
        return 1;
    }
    return 0;
}

static int fake_info(xcc_domain *d, struct xcc_domain_info *info)
{
    struct fake *f = d->priv;

    *info = (struct xcc_domain_info){.nr_pfns = f->nr_pfns,
                                     .page_size = PAGE,
                                     .stream_type = XCC_DHDR_TYPE_SIM};
    return 0;
}

static void fake_report_moves(xcc_domain *d);

static void *fake_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                      int *err, size_t n)
{
    struct fake *f = d->priv;
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    uint8_t *base;

    f->maps++;
    if (f->report_in_map && f->seen_frame)
        fake_report_moves(d);
    if (f->fail_left) {
        f->fail_left--;
        errno = f->fail_errno;
        return NULL;
    }
    base = mmap(NULL, n * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (pfns[i] >= f->nr_pfns || f->hole[pfns[i]]) {
            err[i] = -ENOENT;
            continue;
        }
        err[i] = 0;
        if (mmap(base + i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, f->fd,
                 (off_t)(f->frame[pfns[i]] * PAGE)) == MAP_FAILED) {
            munmap(base, n * PAGE);
            return NULL;
        }
    }
    return base;
}

static int fake_unmap(xcc_domain *d, void *addr, size_t n)
{
    return munmap(addr, n * PAGE);
}

static void fake_close(xcc_domain *d)
{
    struct fake *f = d->priv;

    close(f->fd);
    free(f->hole);
    free(f->frame);
    free(f->seen_frame);
    free(f);
}

static const struct xcc_domain_ops fake_ops = {
    .kind = "fake",
    .info = fake_info,
    .pfn_types = fake_pfn_types,
    .logdirty_enable = fake_noop,
    .logdirty_disable = fake_noop,
    .logdirty_clean = fake_clean,
    .map = fake_map,
    .unmap = fake_unmap,
    .pause = fake_noop,
    .unpause = fake_noop,
    .close = fake_close,
};

/* A fake guest of nr_pfns pages; `ram` false: no memory behind it at all
 * (for table-size tests, which never map). */
static xcc_domain *fake_open(uint64_t nr_pfns, bool ram)
{
    xcc_domain *d = calloc(1, sizeof(*d));
    struct fake *f = calloc(1, sizeof(*f));

    cr_assert(d && f);
    f->nr_pfns = nr_pfns;
    f->fd = memfd_create("fake-guest", 0);
    cr_assert(f->fd >= 0);
    if (ram) {
        cr_assert(ftruncate(f->fd, (off_t)(nr_pfns * PAGE)) == 0);
        f->hole = calloc(nr_pfns, 1);
        f->frame = calloc(nr_pfns, sizeof(*f->frame));
        f->seen_frame = calloc(nr_pfns, sizeof(*f->seen_frame));
        cr_assert(f->hole && f->frame && f->seen_frame);
        for (uint64_t p = 0; p < nr_pfns; p++)
            f->frame[p] = f->seen_frame[p] = p;
    }
    d->ops = &fake_ops;
    d->priv = f;
    d->log = lib_default_logger();
    d->name = strdup("fake");
    fake_info(d, &d->info);
    return d;
}

/* ---- the sim guest each test uses -------------------------------------- */

static char guest_name[64];
static char guest_ram[128];
static bool guest_running;
static xcc_domain *dom;
static xcc_map_cache *mc;

static void guest_cleanup(void)
{
    xcc_map_cache_free(mc);
    mc = NULL;
    xcc_domain_close(dom);
    dom = NULL;
    if (guest_name[0]) {
        xcc_sim_stop(guest_name, NULL);
        guest_name[0] = '\0';
    }
}

/*
 * Creates a sim guest of mem bytes and opens it. holes: NULL for none,
 * else a list like "100-199,4096"; a guest with holes runs the idle
 * workload (holes belong to a started guest).
 */
static void guest_open(uint64_t mem, const char *holes)
{
    static unsigned seq;
    char dname[96];
    int rc;

    snprintf(guest_name, sizeof(guest_name), "mctest-%d-%u", (int)getpid(),
             seq++);
    snprintf(guest_ram, sizeof(guest_ram), "/dev/shm/xc-colo/%s/ram",
             guest_name);
    if (holes)
        rc = xcc_sim_start(guest_name, mem, "idle", 1, holes, NULL, NULL);
    else
        rc = xcc_sim_create(guest_name, mem, NULL);
    cr_assert_eq(rc, 0, "cannot make sim guest %s: %s", guest_name,
                 strerror(errno));
    guest_running = holes != NULL;
    snprintf(dname, sizeof(dname), "sim:%s", guest_name);
    dom = xcc_domain_open(dname, NULL, 0);
    cr_assert_not_null(dom, "cannot open %s: %s", dname, strerror(errno));
}

/* What the guest holds in word w of page pfn, as written by fill(). */
static uint64_t pattern(uint64_t pfn, unsigned w, uint64_t salt)
{
    return (pfn * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)w << 48) ^ salt;
}

/* Writes the pattern into words 0, 7 and 511 of pages [first, first+n) of
 * the RAM file, behind the cache's back. */
static void fill(uint64_t first, uint64_t n, uint64_t salt)
{
    int fd = open(guest_ram, O_RDWR);
    static uint8_t page[PAGE];

    cr_assert(fd >= 0, "open %s: %s", guest_ram, strerror(errno));
    for (uint64_t p = first; p < first + n; p++) {
        uint64_t *w = (uint64_t *)page;

        memset(page, (int)(p & 0xff), PAGE);
        w[0] = pattern(p, 0, salt);
        w[7] = pattern(p, 7, salt);
        w[511] = pattern(p, 511, salt);
        cr_assert_eq(pwrite(fd, page, PAGE, (off_t)(p * PAGE)), PAGE);
    }
    close(fd);
}

static void check_page(const uint8_t *page, uint64_t pfn, uint64_t salt)
{
    const uint64_t *w = (const uint64_t *)page;

    cr_assert_not_null(page, "pfn %#" PRIx64 " not mapped", pfn);
    cr_assert_eq(w[0], pattern(pfn, 0, salt), "pfn %#" PRIx64 " word 0", pfn);
    cr_assert_eq(w[7], pattern(pfn, 7, salt), "pfn %#" PRIx64, pfn);
    cr_assert_eq(w[511], pattern(pfn, 511, salt), "pfn %#" PRIx64, pfn);
    cr_assert_eq(page[100], (uint8_t)(pfn & 0xff), "pfn %#" PRIx64, pfn);
}

/* Mappings of `path` (VMAs) this process holds, from /proc/self/maps. */
static unsigned count_vmas(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    unsigned n = 0;

    cr_assert_not_null(f);
    while (fgets(line, sizeof(line), f))
        if (strstr(line, path))
            n++;
    fclose(f);
    return n;
}

static struct xcc_map_cache_stats stats(void)
{
    struct xcc_map_cache_stats st;

    xcc_map_cache_get_stats(mc, &st);
    return st;
}

/* Looks up pfns[0..n) completely (several calls if the budget is small)
 * and checks every page against the pattern. */
static void lookup_check(const uint64_t *pfns, size_t n, uint64_t salt)
{
    uint8_t *pages[BATCH];
    int err[BATCH];

    cr_assert(n <= BATCH);
    while (n) {
        int64_t k = xcc_map_cache_lookup(mc, pfns, n, pages, err);

        cr_assert(k >= 1 && (size_t)k <= n, "lookup returned %" PRId64, k);
        for (int64_t i = 0; i < k; i++) {
            cr_assert_eq(err[i], 0, "pfn %#" PRIx64 " err %d", pfns[i], err[i]);
            check_page(pages[i], pfns[i], salt);
        }
        xcc_map_cache_release(mc);
        pfns += k;
        n -= (size_t)k;
    }
}

/* lookup_check() of the BATCH consecutive pfns from first. */
static void lookup_check_from(uint64_t first, uint64_t salt)
{
    uint64_t pfns[BATCH];

    for (unsigned i = 0; i < BATCH; i++)
        pfns[i] = first + i;
    lookup_check(pfns, BATCH, salt);
}

TestSuite(map_cache, .fini = guest_cleanup, .timeout = 120);

/* ---- tests ------------------------------------------------------------- */

Test(map_cache, right_bytes_sequential_and_scattered)
{
    const uint64_t nr = 64 * MIB / PAGE;
    uint64_t pfns[BATCH];
    struct xcc_map_cache_stats st;

    guest_open(64 * MIB, NULL);
    fill(0, nr, 1);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);

    for (uint64_t base = 0; base < nr; base += BATCH) {
        for (unsigned i = 0; i < BATCH; i++)
            pfns[i] = base + i;
        lookup_check(pfns, BATCH, 1);
    }
    st = stats();
    cr_assert_eq(st.chunks_mapped, nr / CHUNK_PFNS);
    cr_assert_eq(st.map_calls, nr / CHUNK_PFNS, "one map call per chunk");
    cr_assert_eq(st.misses, nr);
    cr_assert_eq(st.hits, 0);
    cr_assert_eq(st.per_batch, 0);

    /* A second pass in a scattered order: all hits, no new mappings. */
    for (uint64_t b = 0; b < nr / BATCH; b++) {
        for (unsigned i = 0; i < BATCH; i++)
            pfns[i] = (b * 7919 + i * 104729ull) % nr;
        lookup_check(pfns, BATCH, 1);
    }
    st = stats();
    cr_assert_eq(st.map_calls, nr / CHUNK_PFNS);
    cr_assert_eq(st.hits, nr);
    cr_assert_eq(st.evictions, 0);
    cr_assert_eq(st.resident_chunks, nr / CHUNK_PFNS);
    cr_assert_eq(count_vmas(guest_ram), nr / CHUNK_PFNS);
}

Test(map_cache, budget_of_two_chunks_on_1g_guest)
{
    const uint64_t nr = GIB / PAGE;
    struct xcc_map_cache_params p = MC_PARAMS(.max_mappings = 2);
    uint64_t pfns[BATCH];
    uint8_t *pages[BATCH];
    int err[BATCH];
    uint64_t done = 0, short_lookups = 0;

    guest_open(GIB, NULL);
    mc = xcc_map_cache_new(dom, &p);
    cr_assert_not_null(mc);
    cr_assert_eq(stats().max_mappings, 2);

    /* Batches that straddle 1, 2, 3 and 4 chunks, walking the whole guest
     * with a stride so each batch touches several chunks. */
    fill(0, nr / 64, 5); /* the first 16 MiB: checked byte for byte */
    for (uint64_t b = 0; b < 64; b++) {
        unsigned spread = 1 + (unsigned)(b % 4);
        size_t n = BATCH, i = 0;

        for (i = 0; i < n; i++)
            pfns[i] = ((b * 97 + (i % spread) * 4099) * CHUNK_PFNS + i) % nr;
        while (n) {
            int64_t k =
                xcc_map_cache_lookup(mc, pfns + (BATCH - n), n, pages, err);
            struct xcc_map_cache_stats st = stats();

            cr_assert(k >= 1 && (size_t)k <= n);
            if ((size_t)k < n)
                short_lookups++;
            cr_assert_leq(st.resident_chunks, 2);
            cr_assert_leq(st.max_resident, 2);
            cr_assert_leq(count_vmas(guest_ram), 2,
                          "more VMAs of the RAM file than the budget");
            for (int64_t j = 0; j < k; j++) {
                uint64_t pfn = pfns[BATCH - n + (size_t)j];

                cr_assert_eq(err[j], 0);
                cr_assert_not_null(pages[j]);
                if (pfn < nr / 64)
                    check_page(pages[j], pfn, 5);
                else
                    cr_assert_eq(pages[j][0], 0);
            }
            n -= (size_t)k;
            done += (uint64_t)k;
        }
    }
    cr_assert_eq(done, 64 * BATCH);
    cr_assert_gt(short_lookups, 0, "3- and 4-chunk batches must split");
    cr_assert_gt(stats().evictions, 0);
}

Test(map_cache, lru_keeps_the_recently_used_chunk)
{
    struct xcc_map_cache_params p = MC_PARAMS(.max_mappings = 2);
    uint64_t a = 0, b = CHUNK_PFNS, c = 2 * CHUNK_PFNS;
    struct xcc_map_cache_stats st;

    guest_open(16 * MIB, NULL);
    fill(0, 3 * CHUNK_PFNS, 9);
    mc = xcc_map_cache_new(dom, &p);
    cr_assert_not_null(mc);
    lookup_check(&a, 1, 9);
    lookup_check(&b, 1, 9);
    lookup_check(&a, 1, 9); /* a is now the most recent */
    lookup_check(&c, 1, 9); /* evicts b, not a */
    st = stats();
    cr_assert_eq(st.evictions, 1);
    lookup_check(&a, 1, 9);
    cr_assert_eq(stats().chunks_mapped, 3, "a stayed mapped");
    lookup_check(&b, 1, 9);
    cr_assert_eq(stats().chunks_mapped, 4, "b had been evicted");
}

Test(map_cache, byte_budget)
{
    struct xcc_map_cache_params p = MC_PARAMS(.max_bytes = 3 * CHUNK_PFNS * PAGE);
    uint64_t pfns[BATCH];

    guest_open(64 * MIB, NULL);
    fill(0, 16 * CHUNK_PFNS, 3);
    mc = xcc_map_cache_new(dom, &p);
    cr_assert_not_null(mc);
    cr_assert_eq(stats().max_mappings, 3);
    for (unsigned b = 0; b < 16; b++) {
        for (unsigned i = 0; i < BATCH; i++)
            pfns[i] = (b * CHUNK_PFNS + i * 5) % (16 * CHUNK_PFNS);
        lookup_check(pfns, BATCH, 3);
        cr_assert_leq(stats().resident_bytes, p.max_bytes);
        cr_assert_leq(count_vmas(guest_ram), 3);
    }
    xcc_map_cache_free(mc);

    /* A byte budget below one chunk shrinks the chunks to fit. */
    p.max_bytes = 100 * PAGE;
    mc = xcc_map_cache_new(dom, &p);
    cr_assert_not_null(mc);
    cr_assert_eq(stats().chunk_pfns, 64);
    lookup_check_from(0, 3);
    cr_assert_leq(stats().resident_bytes, 100 * PAGE);
}

Test(map_cache, holes_report_per_page_errors)
{
    uint64_t pfns[3 * BATCH];
    uint8_t *pages[3 * BATCH];
    int err[3 * BATCH];
    int64_t k;
    struct xcc_map_cache_stats st;

    guest_open(32 * MIB, "100-199,4096");
    fill(0, 5 * BATCH, 4);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    for (unsigned i = 0; i < 3 * BATCH; i++)
        pfns[i] = 2048 + i; /* chunks 2..4; the hole 4096 is in chunk 4 */
    for (unsigned i = 0; i < 200; i++)
        pfns[i] = i; /* chunk 0 with the hole 100..199 */

    for (int pass = 0; pass < 2; pass++) {
        k = xcc_map_cache_lookup(mc, pfns, 3 * BATCH, pages, err);
        cr_assert_eq(k, 3 * BATCH);
        for (unsigned i = 0; i < 3 * BATCH; i++) {
            bool hole = (pfns[i] >= 100 && pfns[i] <= 199) || pfns[i] == 4096;

            if (hole) {
                cr_assert_eq(err[i], -ENOENT, "pfn %" PRIu64 " err %d", pfns[i],
                             err[i]);
                cr_assert_null(pages[i]);
            } else {
                cr_assert_eq(err[i], 0, "pfn %" PRIu64, pfns[i]);
                check_page(pages[i], pfns[i], 4);
            }
        }
    }
    st = stats();
    /* Two chunks with holes, each with its error bitmap; the holes are
     * retried (the chunk mapped again) on the second pass. */
    cr_assert_eq(st.page_errors, 2 * (100 + 1));
    cr_assert_eq(st.remaps, 2);
    cr_assert_eq(st.table_bytes, (32 * MIB / PAGE / CHUNK_PFNS) * 40 +
                                     2 * (8 + CHUNK_PFNS / 8));
}

Test(map_cache, out_of_range_pfn)
{
    uint64_t pfns[2] = {5, 16 * MIB / PAGE};
    uint8_t *pages[2];
    int err[2];

    guest_open(16 * MIB, NULL);
    fill(5, 1, 2);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    check_page(pages[0], 5, 2);
    cr_assert_null(pages[1]);
    cr_assert_eq(err[1], -EINVAL);
}

Test(map_cache, invalidate_then_remap_sees_new_content)
{
    uint64_t pfns[BATCH];
    struct xcc_map_cache_stats st;

    guest_open(16 * MIB, NULL);
    fill(0, 4 * CHUNK_PFNS, 6);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    for (unsigned c = 0; c < 4; c++)
        lookup_check_from(c * CHUNK_PFNS, 6);
    cr_assert_eq(count_vmas(guest_ram), 4);

    /* pfns 1500..2100 span chunks 1 and 2. */
    xcc_map_cache_invalidate(mc, 1500, 601);
    st = stats();
    cr_assert_eq(st.invalidations, 2);
    cr_assert_eq(st.resident_chunks, 2);
    cr_assert_eq(count_vmas(guest_ram), 2);

    fill(CHUNK_PFNS, 2 * CHUNK_PFNS, 7);
    for (unsigned i = 0; i < BATCH; i++)
        pfns[i] = CHUNK_PFNS + i * 2;
    lookup_check(pfns, BATCH, 7);
    st = stats();
    cr_assert_eq(st.chunks_mapped, 6, "both chunks mapped again");
    /* Untouched chunks stayed; ranges past the end are harmless. */
    lookup_check((uint64_t[]){0}, 1, 6);
    cr_assert_eq(stats().chunks_mapped, 6);
    xcc_map_cache_invalidate(mc, 3 * CHUNK_PFNS, UINT64_MAX);
    xcc_map_cache_invalidate(mc, UINT64_MAX - 1, 100);
    cr_assert_eq(stats().resident_chunks, 3, "chunks 0, 1 and 2 remain");
    cr_assert_eq(count_vmas(guest_ram), 3);
}

Test(map_cache, enomem_evicts_and_retries)
{
    struct xcc_map_cache_stats st;

    guest_open(64 * MIB, NULL);
    fill(0, 10 * CHUNK_PFNS, 8);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    for (unsigned c = 0; c < 8; c++)
        lookup_check_from(c * CHUNK_PFNS, 8);
    cr_assert_eq(stats().resident_chunks, 8);

    sim_test_fail_maps(dom, 1, ENOMEM);
    lookup_check_from(8 * CHUNK_PFNS, 8);
    st = stats();
    cr_assert_eq(st.enomem_retries, 1);
    cr_assert_eq(st.map_errors, 1);
    cr_assert_geq(st.evictions, 4, "at least half of 8 resident chunks");
    cr_assert_leq(st.resident_chunks, 5);
    cr_assert_eq(count_vmas(guest_ram), st.resident_chunks);
}

Test(map_cache, enomem_twice_is_an_error)
{
    uint64_t pfns[BATCH];
    uint8_t *pages[BATCH];
    int err[BATCH];
    struct xcc_map_cache_stats st;

    guest_open(16 * MIB, NULL);
    fill(0, 2 * CHUNK_PFNS, 8);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    lookup_check_from(0, 8);

    sim_test_fail_maps(dom, 2, ENOMEM);
    for (unsigned i = 0; i < BATCH; i++)
        pfns[i] = CHUNK_PFNS + i;
    errno = 0;
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, BATCH, pages, err), -1);
    cr_assert_eq(errno, ENOMEM);
    st = stats();
    cr_assert_eq(st.map_errors, 2);
    cr_assert_eq(st.enomem_retries, 1);

    /* Another failure is not retried; then the cache works again. */
    sim_test_fail_maps(dom, 1, EIO);
    errno = 0;
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, BATCH, pages, err), -1);
    cr_assert_eq(errno, EIO);
    cr_assert_eq(stats().enomem_retries, 1);
    lookup_check(pfns, BATCH, 8);
}

Test(map_cache, per_batch_maps_and_unmaps_each_batch)
{
    struct xcc_map_cache_params p = MC_PARAMS(.per_batch = 1);
    uint64_t pfns[BATCH];
    struct xcc_map_cache_stats st;

    guest_open(16 * MIB, NULL);
    fill(0, 4 * CHUNK_PFNS, 11);
    mc = xcc_map_cache_new(dom, &p);
    cr_assert_not_null(mc);
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned b = 0; b < 4; b++) {
            uint8_t *pages[BATCH];
            int err[BATCH];

            for (unsigned i = 0; i < BATCH; i++)
                pfns[i] = (b + i * 3) % (4 * CHUNK_PFNS);
            cr_assert_eq(xcc_map_cache_lookup(mc, pfns, BATCH, pages, err),
                         BATCH, "per-batch mode resolves the whole batch");
            for (unsigned i = 0; i < BATCH; i++)
                check_page(pages[i], pfns[i], 11);
            cr_assert_geq(count_vmas(guest_ram), 1);
            xcc_map_cache_release(mc);
            cr_assert_eq(count_vmas(guest_ram), 0);
        }
    }
    st = stats();
    cr_assert_eq(st.per_batch, 1);
    cr_assert_eq(st.map_calls, 8);
    cr_assert_eq(st.unmap_calls, 8);
    cr_assert_eq(st.pages_mapped, 8 * BATCH);
    cr_assert_eq(st.misses, 8 * BATCH);
    cr_assert_eq(st.hits, 0);
    cr_assert_eq(st.chunks_mapped, 0);
    cr_assert_eq(st.resident_chunks, 0);
}

Test(map_cache, writable_writes_land_in_ram_file)
{
    for (int per_batch = 0; per_batch < 2; per_batch++) {
        struct xcc_map_cache_params p = MC_PARAMS(.writable = 1, .per_batch = per_batch);
        uint64_t pfns[BATCH];
        uint8_t *pages[BATCH];
        int err[BATCH], fd;
        uint64_t word;

        guest_open(16 * MIB, NULL);
        mc = xcc_map_cache_new(dom, &p);
        cr_assert_not_null(mc);
        for (unsigned i = 0; i < BATCH; i++)
            pfns[i] = 17 + i * 3;
        cr_assert_eq(xcc_map_cache_lookup(mc, pfns, BATCH, pages, err), BATCH);
        for (unsigned i = 0; i < BATCH; i++) {
            cr_assert_eq(err[i], 0);
            memset(pages[i], 0x5a, PAGE);
            memcpy(pages[i] + 8, &pfns[i], sizeof(pfns[i]));
        }
        xcc_map_cache_release(mc);
        xcc_map_cache_free(mc);
        mc = NULL;

        fd = open(guest_ram, O_RDONLY);
        cr_assert(fd >= 0);
        for (unsigned i = 0; i < BATCH; i++) {
            cr_assert_eq(pread(fd, &word, 8, (off_t)(pfns[i] * PAGE + 8)), 8);
            cr_assert_eq(word, pfns[i]);
            cr_assert_eq(pread(fd, &word, 8, (off_t)(pfns[i] * PAGE)), 8);
            cr_assert_eq(word, 0x5a5a5a5a5a5a5a5aull);
        }
        cr_assert_eq(pread(fd, &word, 8, 18 * PAGE), 8);
        cr_assert_eq(word, 0, "a page not written stays zero");
        close(fd);
        guest_cleanup();
    }
}

Test(map_cache, read_only_mapping_is_read_only)
{
    uint64_t pfn = 3;
    uint8_t *page;
    int err;

    guest_open(16 * MIB, NULL);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    /* The saver's mapping must not be writable: a stray write would
     * corrupt the guest. */
    {
        FILE *f = fopen("/proc/self/maps", "r");
        char line[512];
        bool found = false;

        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f)) {
            unsigned long lo, hi;
            char perms[5];

            if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
                (unsigned long)page >= lo && (unsigned long)page < hi) {
                found = true;
                cr_assert_eq(perms[1], '-', "mapped writable: %s", line);
            }
        }
        fclose(f);
        cr_assert(found);
    }
}

Test(map_cache, bookkeeping_under_64_bytes_per_4mib)
{
    struct xcc_map_cache_stats st;

    guest_open(GIB, NULL);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    st = stats();
    cr_assert_lt(st.table_bytes, 64 * (GIB / (4 * MIB)),
                 "%" PRIu64 " bytes of table for 1 GiB", st.table_bytes);
    guest_cleanup();

    /* A 1 TiB guest (no memory behind it: the table is all we look at). */
    dom = fake_open((1ull << 40) / PAGE, false);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    st = stats();
    cr_assert_lt(st.table_bytes, 64 * ((1ull << 40) / (4 * MIB)),
                 "%" PRIu64 " bytes of table for 1 TiB", st.table_bytes);
}

Test(map_cache, default_budget_is_a_quarter_of_max_map_count)
{
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    unsigned long long max = 0;

    if (!f || fscanf(f, "%llu", &max) != 1)
        cr_skip_test("cannot read /proc/sys/vm/max_map_count");
    fclose(f);
    dom = fake_open((1ull << 40) / PAGE, false);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(stats().max_mappings, max / 4);
    cr_assert_eq(stats().chunk_pfns, CHUNK_PFNS);
}

Test(map_cache, bad_parameters)
{
    struct xcc_map_cache_params p = MC_PARAMS(.chunk_pfns = 1000);

    dom = fake_open(1024, true);
    errno = 0;
    cr_assert_null(xcc_map_cache_new(dom, &p));
    cr_assert_eq(errno, EINVAL);
    p = MC_PARAMS(.max_bytes = 100);
    errno = 0;
    cr_assert_null(xcc_map_cache_new(dom, &p));
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_null(xcc_map_cache_new(NULL, NULL));
    cr_assert_eq(errno, EINVAL);
}

/* ---- fake-backend tests: what the sim cannot stage --------------------- */

Test(map_cache, failed_page_is_picked_up_when_it_maps_later)
{
    struct fake *f;
    uint64_t pfns[4] = {4, 5, 6, 2000};
    uint8_t *pages[4];
    int err[4];
    struct xcc_map_cache_stats st;

    dom = fake_open(4096, true);
    f = dom->priv;
    f->hole[5] = 1;
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 4, pages, err), 4);
    cr_assert_eq(err[1], -ENOENT);
    cr_assert_null(pages[1]);
    cr_assert_eq(err[0], 0);

    /* Lookups that do not touch the failed page do not remap. */
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 1, pages, err), 1);
    cr_assert_eq(stats().remaps, 0);

    f->hole[5] = 0; /* ballooned back in */
    cr_assert_eq(pwrite(f->fd, "now here", 8, 5 * PAGE), 8);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 4, pages, err), 4);
    cr_assert_eq(err[1], 0);
    cr_assert_not_null(pages[1]);
    cr_assert_eq(memcmp(pages[1], "now here", 8), 0);
    st = stats();
    cr_assert_eq(st.remaps, 1);
    cr_assert_eq(st.resident_chunks, 2);
    /* The error bitmap went away with the error. */
    cr_assert_eq(st.table_bytes, 4 * 40);
}

Test(map_cache, invalidate_follows_a_new_backing_page)
{
    struct fake *f;
    uint64_t pfn = 700;
    uint8_t *page;
    int err;

    dom = fake_open(2048, true);
    f = dom->priv;
    cr_assert_eq(pwrite(f->fd, "old page", 8, 700 * PAGE), 8);
    cr_assert_eq(pwrite(f->fd, "new page", 8, 1900 * PAGE), 8);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    cr_assert_eq(memcmp(page, "old page", 8), 0);

    f->frame[700] = 1900; /* the pfn now has another page behind it */
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    cr_assert_eq(memcmp(page, "old page", 8), 0, "cached until invalidated");
    xcc_map_cache_invalidate(mc, 700, 1);
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    cr_assert_eq(memcmp(page, "new page", 8), 0);
}

Test(map_cache, guest_that_grows_and_partial_last_chunk)
{
    struct fake *f;
    uint64_t pfns[2] = {1500, 1600};
    uint8_t *pages[2];
    int err[2];

    dom = fake_open(1536, true); /* 1.5 chunks */
    f = dom->priv;
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_assert_eq(err[0], 0);
    cr_assert_eq(err[1], -EINVAL);

    /* Restore populates more memory: the table follows. */
    f->hole = realloc(f->hole, 4096);
    f->frame = realloc(f->frame, 4096 * sizeof(*f->frame));
    memset(f->hole + 1536, 0, 4096 - 1536);
    f->seen_frame = realloc(f->seen_frame, 4096 * sizeof(*f->seen_frame));
    for (uint64_t p = 1536; p < 4096; p++)
        f->frame[p] = f->seen_frame[p] = p;
    cr_assert_eq(ftruncate(f->fd, 4096 * PAGE), 0);
    f->nr_pfns = 4096;
    cr_assert_eq(pwrite(f->fd, "grown", 5, 1600 * PAGE), 5);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_assert_eq(err[0], 0);
    cr_assert_eq(err[1], 0);
    cr_assert_eq(memcmp(pages[1], "grown", 5), 0);
}

/* ---- mapping changes the backend reports ------------------------------- */

/* Writes "frame N" (N = frame) at the start of frame N of the fake. */
static void label_frames(struct fake *f)
{
    char label[32];

    for (uint64_t fr = 0; fr < f->nr_pfns; fr++) {
        int len = snprintf(label, sizeof(label), "frame %" PRIu64, fr);
        cr_assert_eq(pwrite(f->fd, label, (size_t)len + 1, (off_t)(fr * PAGE)),
                     len + 1);
    }
}

Test(map_cache, reported_change_drops_the_stale_chunk)
{
    struct fake *f;
    uint64_t pfns[2] = {700, 5};
    uint8_t *pages[2];
    int err[2];
    uint8_t types[2];

    dom = fake_open(2048, true);
    f = dom->priv;
    label_frames(f);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_assert_str_eq((char *)pages[0], "frame 700");

    /* The pfn moves to another frame; the backend notices when asked for
     * types, as the save asks before each batch, and reports it. */
    f->frame[700] = 1900;
    cr_assert_eq(fake_pfn_types(dom, pfns, types, 2), 0);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_expect_str_eq((char *)pages[0], "frame 1900",
                     "the chunk was not dropped after the reported change");
    cr_expect_str_eq((char *)pages[1], "frame 5");
    cr_expect_eq(stats().invalidations, 1);

    /* A writability change leaves a read-only cache alone. */
    domain_mapping_changed(dom, 0, 2048, DOMAIN_CHANGE_WRITABLE);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_expect_eq(stats().invalidations, 1);
}

Test(map_cache, many_changes_drop_everything)
{
    struct fake *f;
    uint64_t pfns[2] = {100, 1500};
    uint8_t *pages[2];
    int err[2];

    dom = fake_open(2048, true);
    f = dom->priv;
    label_frames(f);
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    /* More changes than the domain keeps, the one that matters first. */
    f->frame[1500] = 3;
    domain_mapping_changed(dom, 1500, 1, DOMAIN_CHANGE_FRAME);
    for (unsigned i = 0; i < DOMAIN_CHANGES_KEPT; i++)
        domain_mapping_changed(dom, 2047, 1, DOMAIN_CHANGE_FRAME);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_expect_str_eq((char *)pages[1], "frame 3");
    cr_expect_eq(stats().invalidations, 2, "both chunks dropped");
}

Test(map_cache, writable_cache_drops_on_writability_change)
{
    uint64_t pfn = 10;
    uint8_t *page;
    int err;

    dom = fake_open(2048, true);
    mc = xcc_map_cache_new(dom, &MC_PARAMS(.writable = 1));
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    domain_mapping_changed(dom, 10, 1, DOMAIN_CHANGE_WRITABLE);
    cr_assert_eq(xcc_map_cache_lookup(mc, &pfn, 1, &page, &err), 1);
    cr_expect_eq(stats().invalidations, 1);
    cr_expect_eq(stats().chunks_mapped, 2);
}

/*
 * A live save of a guest that moves a pfn to another frame between passes
 * (ballooning, a PV page exchange): the pass after the move must send the
 * new frame's bytes, not what the cached chunk still shows.
 */
Test(map_cache, live_save_sends_the_new_frame_after_a_move)
{
    struct fake *f;
    struct xcc_save_params p;
    struct xcc_restore_params rp;
    char target[64], tname[96], tram[128];
    uint8_t want[PAGE], got[PAGE];
    int sfd = memfd_create("stream", 0), tfd;

    dom = fake_open(2048, true);
    f = dom->priv;
    label_frames(f);
    f->move_pfn = 700;
    f->move_to = 1900;
    f->move_pending = true;
    cr_assert_eq(pread(f->fd, want, PAGE, 1900 * PAGE), PAGE);

    xcc_save_params_init(&p);
    p.live = 1;
    p.progress = 0;
    p.target_dirty = 0;
    xcc_saver *s = xcc_saver_new(dom, sfd, &p, NULL);
    cr_assert_not_null(s, "saver: %s", xcc_strerror(errno));
    cr_assert_eq(xcc_saver_run(s), 0, "save: %s", xcc_strerror(errno));
    cr_assert(!f->move_pending, "the pfn never moved (%u cleans)", f->cleans);
    xcc_saver_free(s);

    /* guest_name: the suite's fini removes the target. */
    snprintf(guest_name, sizeof(guest_name), "mctest-%d-move", (int)getpid());
    snprintf(target, sizeof(target), "%s", guest_name);
    snprintf(tname, sizeof(tname), "sim:%s", target);
    snprintf(tram, sizeof(tram), "/dev/shm/xc-colo/%s/ram", target);
    cr_assert_eq(xcc_sim_create(target, 2048 * PAGE, NULL), 0);
    xcc_domain *t = xcc_domain_open(tname, NULL, 0);
    cr_assert_not_null(t);
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    lseek(sfd, 0, SEEK_SET);
    xcc_restorer *r = xcc_restorer_new(sfd, &rp, NULL);
    cr_assert_not_null(r);
    cr_expect_eq(xcc_restorer_run(r, t), 0, "%s", xcc_restorer_error(r));
    xcc_restorer_free(r);
    xcc_domain_close(t);

    tfd = open(tram, O_RDONLY);
    cr_assert(tfd >= 0, "%s: %s", tram, strerror(errno));
    cr_assert_eq(pread(tfd, got, PAGE, 700 * PAGE), PAGE);
    close(tfd);
    close(sfd);
    cr_expect_str_eq((char *)got, (char *)want,
                     "pfn 700 was sent from the stale mapping");
    cr_expect_eq(memcmp(got, want, PAGE), 0);
}

Test(map_cache, change_seen_by_a_map_call_resolves_the_batch_again)
{
    struct fake *f;
    uint64_t pfns[2] = {5, 1500};
    uint8_t *pages[2];
    int err[2];

    dom = fake_open(2048, true);
    f = dom->priv;
    label_frames(f);
    f->report_in_map = true;
    mc = xcc_map_cache_new(dom, NULL);
    cr_assert_not_null(mc);
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 1, pages, err), 1);
    cr_assert_str_eq((char *)pages[0], "frame 5");

    /* pfn 5 moves; nobody asks for types. The map call for pfn 1500's
     * chunk notices, while pfn 5's chunk is already resolved. */
    f->frame[5] = 1900;
    cr_assert_eq(xcc_map_cache_lookup(mc, pfns, 2, pages, err), 2);
    cr_expect_str_eq((char *)pages[0], "frame 1900",
                     "a pointer into the stale chunk was handed out");
    cr_expect_str_eq((char *)pages[1], "frame 1500");
}
