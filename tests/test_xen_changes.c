/*
 * test_xen_changes.c - the Xen backend's mapping-change reports, which need
 * no hypervisor: a type answer that differs from the last one for a pfn is
 * reported to the domain's consumers (the map cache), and a pfn whose frame
 * changed is reported dirty at the next clean. The hypercalls around them
 * run in make xen-test.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "domain/xen_priv.h"
#include "xen_dom_fake.h"

#define NR 256u

static xcc_domain dom;
static struct xen_dom x;

static void setup(void)
{
    xen_dom_fake_init(&dom, &x, NR);
}

static void teardown(void)
{
    free(x.last_class);
    free(x.moved);
    pthread_mutex_destroy(&x.p2m_lock);
}

TestSuite(xen_changes, .init = setup, .fini = teardown, .timeout = 30);

struct seen {
    unsigned n;
    struct domain_change c[8];
};

static void collect(void *opaque, uint64_t first, uint64_t count,
                    enum domain_change_kind kind)
{
    struct seen *s = opaque;

    cr_assert_lt(s->n, 8);
    s->c[s->n++] = (struct domain_change){first, count, kind};
}

/* Answers types for pfns [first, first + n), all `type`. */
static void answer(uint64_t first, size_t n, uint8_t type)
{
    uint64_t pfns[NR];
    uint8_t types[NR];

    for (size_t i = 0; i < n; i++) {
        pfns[i] = first + i;
        types[i] = type;
    }
    xen_note_type_changes(&x, pfns, types, n);
}

Test(xen_changes, first_answers_are_only_recorded)
{
    uint64_t seen = 0;
    struct seen s = {0};

    answer(0, NR, XCC_PFN_NORMAL);
    answer(0, 8, XCC_PFN_NORMAL);
    cr_expect_eq(domain_mapping_changes(&dom, &seen, collect, &s), 0);
}

Test(xen_changes, balloon_out_and_in_are_frame_changes)
{
    uint64_t seen = 0;
    struct seen s = {0};

    answer(0, NR, XCC_PFN_NORMAL);
    answer(100, 10, XCC_PFN_XTAB); /* ballooned out */
    answer(100, 10, XCC_PFN_NORMAL); /* and in again */
    cr_assert_eq(domain_mapping_changes(&dom, &seen, collect, &s), 2);
    for (unsigned i = 0; i < 2; i++) {
        cr_expect_eq(s.c[i].first, 100);
        cr_expect_eq(s.c[i].count, 10, "one report per run");
        cr_expect_eq(s.c[i].kind, DOMAIN_CHANGE_FRAME);
    }
    /* ...and reported dirty at the next clean. */
    cr_assert_not_null(x.moved);
    for (uint64_t p = 0; p < NR; p++)
        cr_expect_eq(!!(x.moved[p / 64] & (1ull << (p % 64))),
                     p >= 100 && p < 110, "pfn %lu", (unsigned long)p);
}

Test(xen_changes, page_table_freed_is_a_writability_change)
{
    uint64_t seen = 0;
    struct seen s = {0};
    uint64_t pfns[3] = {7, 8, 40};
    uint8_t before[3] = {XCC_PFN_L1TAB, XCC_PFN_L2TAB, XCC_PFN_NORMAL};
    uint8_t after[3] = {XCC_PFN_NORMAL, XCC_PFN_NORMAL, XCC_PFN_L1TAB};

    xen_note_type_changes(&x, pfns, before, 3);
    xen_note_type_changes(&x, pfns, after, 3);
    cr_assert_eq(domain_mapping_changes(&dom, &seen, collect, &s), 2);
    cr_expect_eq(s.c[0].first, 7);
    cr_expect_eq(s.c[0].count, 2);
    cr_expect_eq(s.c[0].kind, DOMAIN_CHANGE_WRITABLE);
    cr_expect_eq(s.c[1].first, 40);
    cr_expect_eq(s.c[1].count, 1);
    cr_expect_eq(s.c[1].kind, DOMAIN_CHANGE_WRITABLE);
    /* The frames did not move: nothing to report dirty. */
    for (uint64_t w = 0; w < x.moved_n; w++)
        cr_expect_eq(x.moved[w], 0);
}

Test(xen_changes, a_run_splits_where_the_change_differs)
{
    uint64_t seen = 0;
    struct seen s = {0};
    uint64_t pfns[4] = {20, 21, 22, 23};
    uint8_t before[4] = {XCC_PFN_NORMAL, XCC_PFN_NORMAL, XCC_PFN_L1TAB,
                         XCC_PFN_NORMAL};
    uint8_t after[4] = {XCC_PFN_XTAB, XCC_PFN_BROKEN, XCC_PFN_NORMAL,
                        XCC_PFN_NORMAL};

    xen_note_type_changes(&x, pfns, before, 4);
    xen_note_type_changes(&x, pfns, after, 4);
    cr_assert_eq(domain_mapping_changes(&dom, &seen, collect, &s), 2);
    cr_expect_eq(s.c[0].first, 20);
    cr_expect_eq(s.c[0].count, 2);
    cr_expect_eq(s.c[0].kind, DOMAIN_CHANGE_FRAME);
    cr_expect_eq(s.c[1].first, 22);
    cr_expect_eq(s.c[1].count, 1);
    cr_expect_eq(s.c[1].kind, DOMAIN_CHANGE_WRITABLE);
}

Test(xen_changes, guest_growth_extends_the_tracking)
{
    uint64_t seen = 0;
    struct seen s = {0};

    answer(0, NR, XCC_PFN_NORMAL);
    x.nr_pfns = 2 * NR; /* an HVM guest whose highest gfn grew */
    answer(NR, NR, XCC_PFN_XTAB);
    answer(NR, 4, XCC_PFN_NORMAL);
    cr_assert_eq(domain_mapping_changes(&dom, &seen, collect, &s), 1);
    cr_expect_eq(s.c[0].first, NR);
    cr_expect_eq(s.c[0].count, 4);
}
