/*
 * test_xen_pt.c - page-table normalisation (xen_pt.c) on hand-built tables
 * and a hand-built m2p, and the Xen backend's mfn -> pfn lookup
 * (xen_m2p.c) on a hand-built M2P and p2m: no hypervisor needed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "domain/xen_priv.h"
#include "xen_dom_fake.h"
#include "xen_pt.h"

/* A guest of 16 pfns whose frames are 0x1000 + 3 * pfn (scattered). */
#define NR 16u
#define MFN(pfn) (0x1000ull + 3 * (pfn))

static int lookup(void *opaque, uint64_t mfn, uint64_t *pfn)
{
    (void)opaque;
    if (mfn < 0x1000 || (mfn - 0x1000) % 3 || (mfn - 0x1000) / 3 >= NR)
        return -1;
    *pfn = (mfn - 0x1000) / 3;
    return 0;
}

static const struct xen_pt_geom g64 = {.levels = 4};

static uint64_t pte(uint64_t frame, uint64_t flags)
{
    return frame << 12 | flags;
}

Test(xen_pt, l1_mfns_become_pfns_flags_kept)
{
    uint64_t page[512] = {0};
    struct xen_pt_fault f;

    /* Present entries with assorted flags, NX (bit 63) and software bits. */
    page[0] = pte(MFN(3), 0x067);
    page[1] = pte(MFN(15), 0x8000000000000025ull);
    page[7] = pte(MFN(0), 0x0E00 | 0x1);   /* software bits 9..11 */
    page[8] = 0xDEADBEEF000ull;            /* not present: left alone */
    page[511] = pte(MFN(9), 0x180 | 0x1);  /* PAT + global in an L1: no PSE */
    cr_assert_eq(xen_pt_normalise(page, 1, &g64, lookup, NULL, &f), 0);
    cr_expect_eq(page[0], pte(3, 0x067));
    cr_expect_eq(page[1], pte(15, 0x8000000000000025ull));
    cr_expect_eq(page[7], pte(0, 0x0E01));
    cr_expect_eq(page[8], 0xDEADBEEF000ull);
    cr_expect_eq(page[511], pte(9, 0x181));
    cr_expect_eq(xen_pt_check_normalised(page, 1, &g64, NR, &f), 0);
}

Test(xen_pt, l4_xen_slots_zeroed)
{
    uint64_t page[512] = {0};
    struct xen_pt_fault f;

    page[0] = pte(MFN(1), 0x67);
    /* Xen's slots hold mfns of Xen's own tables: never looked up. */
    for (unsigned i = XEN_PT_L4_XEN_FIRST; i <= XEN_PT_L4_XEN_LAST; i++)
        page[i] = pte(0xFFFFF0 + i, 0x63);
    page[255] = pte(MFN(2), 0x67);
    page[273] = pte(MFN(4), 0x67); /* Linux's direct map: the guest's */
    cr_assert_eq(xen_pt_normalise(page, 4, &g64, lookup, NULL, &f), 0);
    for (unsigned i = XEN_PT_L4_XEN_FIRST; i <= XEN_PT_L4_XEN_LAST; i++)
        cr_expect_eq(page[i], 0, "slot %u", i);
    cr_expect_eq(page[0], pte(1, 0x67));
    cr_expect_eq(page[255], pte(2, 0x67));
    cr_expect_eq(page[273], pte(4, 0x67));
    cr_expect_eq(xen_pt_check_normalised(page, 4, &g64, NR, &f), 0);

    /* The same slots are guest slots in an L3 or L2. */
    memset(page, 0, sizeof(page));
    page[260] = pte(MFN(5), 0x67);
    cr_assert_eq(xen_pt_normalise(page, 3, &g64, lookup, NULL, &f), 0);
    cr_expect_eq(page[260], pte(5, 0x67));
}

Test(xen_pt, unknown_mfn_is_eagain_naming_the_slot)
{
    uint64_t page[512] = {0};
    struct xen_pt_fault f;

    page[3] = pte(MFN(2), 0x67);
    page[42] = pte(MFN(2) + 1, 0x67); /* not a frame of the guest */
    errno = 0;
    cr_assert_eq(xen_pt_normalise(page, 2, &g64, lookup, NULL, &f), -1);
    cr_expect_eq(errno, EAGAIN);
    cr_expect_eq(f.slot, 42);
    cr_expect_eq(f.frame, MFN(2) + 1);
    cr_expect_eq(f.pte, pte(MFN(2) + 1, 0x67));
}

Test(xen_pt, superpages_refused_at_l2_l3)
{
    for (unsigned level = 2; level <= 3; level++) {
        uint64_t page[512] = {0};
        struct xen_pt_fault f;

        page[10] = pte(MFN(1), 0x67 | XEN_PTE_PSE);
        errno = 0;
        cr_assert_eq(xen_pt_normalise(page, level, &g64, lookup, NULL, &f), -1);
        cr_expect_eq(errno, E2BIG);
        cr_expect_eq(f.slot, 10);
        /* A PSE bit in a non-present entry is no mapping. */
        page[10] = XEN_PTE_PSE;
        cr_expect_eq(xen_pt_normalise(page, level, &g64, lookup, NULL, &f), 0);
    }
}

Test(xen_pt, bad_levels)
{
    uint64_t page[512] = {0};
    const struct xen_pt_geom g32 = {.levels = 3, .compat_m2p_mfn0 = 0x777};
    const struct xen_pt_geom bad = {.levels = 2};
    struct xen_pt_fault f;

    cr_expect_eq(xen_pt_normalise(page, 0, &g64, lookup, NULL, &f), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(xen_pt_normalise(page, 5, &g64, lookup, NULL, &f), -1);
    cr_expect_eq(xen_pt_normalise(page, 4, &g32, lookup, NULL, &f), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(xen_pt_normalise(page, 1, &bad, lookup, NULL, &f), -1);
    cr_expect_eq(xen_pt_levels_for_width(8), 4);
    cr_expect_eq(xen_pt_levels_for_width(4), 3);
    cr_expect_eq(xen_pt_levels_for_width(2), 0);
}

Test(xen_pt, pae_l3_and_l2_xen_slots)
{
    const struct xen_pt_geom g32 = {.levels = 3, .compat_m2p_mfn0 = 0x777};
    uint64_t page[512] = {0};
    struct xen_pt_fault f;

    /* L3: 4 guest slots, the rest Xen's. */
    for (unsigned i = 0; i < 4; i++)
        page[i] = pte(MFN(i), 0x1);
    page[4] = pte(0x999, 0x1);
    page[511] = pte(0x998, 0x1);
    cr_assert_eq(xen_pt_normalise(page, 3, &g32, lookup, NULL, &f), 0);
    for (unsigned i = 0; i < 4; i++)
        cr_expect_eq(page[i], pte(i, 0x1));
    cr_expect_eq(page[4], 0);
    cr_expect_eq(page[511], 0);

    /* L2 with the compat M2P mapped at slot 428: 428..511 are Xen's. */
    memset(page, 0, sizeof(page));
    page[427] = pte(MFN(7), 0x67);
    page[428] = pte(0x777, 0x63);
    page[500] = pte(0x5555, 0x63);
    cr_assert_eq(xen_pt_normalise(page, 2, &g32, lookup, NULL, &f), 0);
    cr_expect_eq(page[427], pte(7, 0x67));
    cr_expect_eq(page[428], 0);
    cr_expect_eq(page[500], 0);

    /* An ordinary L2: slot 428 is the guest's. */
    memset(page, 0, sizeof(page));
    page[428] = pte(MFN(8), 0x67);
    cr_assert_eq(xen_pt_normalise(page, 2, &g32, lookup, NULL, &f), 0);
    cr_expect_eq(page[428], pte(8, 0x67));
}

Test(xen_pt, check_catches_what_normalise_removes)
{
    uint64_t page[512] = {0};
    struct xen_pt_fault f;

    page[5] = pte(NR, 0x67); /* frame = nr_pfns: one too far */
    cr_expect_eq(xen_pt_check_normalised(page, 1, &g64, NR, &f), -1);
    cr_expect_eq(errno, ERANGE);
    cr_expect_eq(f.slot, 5);
    page[5] = pte(NR - 1, 0x67);
    cr_expect_eq(xen_pt_check_normalised(page, 1, &g64, NR, &f), 0);
    page[260] = pte(1, 0x63);
    cr_expect_eq(xen_pt_check_normalised(page, 4, &g64, NR, &f), -1);
    cr_expect_eq(errno, EEXIST);
    cr_expect_eq(f.slot, 260);
    cr_expect_eq(xen_pt_check_normalised(page, 3, &g64, NR, &f), 0);
    page[260] = pte(1, 0x63 | XEN_PTE_PSE);
    cr_expect_eq(xen_pt_check_normalised(page, 3, &g64, NR, &f), -1);
    cr_expect_eq(errno, E2BIG);
    cr_expect_str_eq(xen_pt_fault_name(E2BIG),
                     "is a superpage (PSE), which a PV guest cannot migrate");
}

/* ---- xen_mfn_to_pfn on a hand-built M2P and p2m ------------------------ */

static xcc_domain dom;
static struct xen_dom x;
static uint64_t p2m[NR];
static xen_pfn_t m2p[0x1100];

static void setup(void)
{
    xen_dom_fake_init(&dom, &x, NR);
    x.pv = true;
    x.guest_width = 8;
    for (unsigned i = 0; i < XCC_ARRAY_SIZE(m2p); i++)
        m2p[i] = ~(xen_pfn_t)0;
    for (unsigned p = 0; p < NR; p++) {
        p2m[p] = MFN(p);
        m2p[MFN(p)] = p;
    }
    x.p2m = p2m;
    /* A preset table: xen_m2p.c maps nothing. */
    x.m2p = m2p;
    x.m2p_entries = XCC_ARRAY_SIZE(m2p);
}

static void teardown(void)
{
    pthread_mutex_destroy(&x.p2m_lock);
}

Test(xen_m2p, lookup_checked_against_the_p2m, .init = setup, .fini = teardown)
{
    uint64_t pfn = 99;

    cr_assert_eq(xen_mfn_to_pfn(&x, MFN(5), &pfn), 0);
    cr_expect_eq(pfn, 5);
    /* Beyond the M2P, an invalid entry, beyond nr_pfns. */
    cr_expect_eq(xen_mfn_to_pfn(&x, 0x2000, &pfn), -1);
    cr_expect_eq(errno, ERANGE);
    cr_expect_eq(xen_mfn_to_pfn(&x, 0x10, &pfn), -1);
    m2p[0x10] = NR;
    cr_expect_eq(xen_mfn_to_pfn(&x, 0x10, &pfn), -1);
    /* The M2P names pfn 5, but the p2m maps pfn 5 elsewhere: moving. */
    m2p[0x20] = 5;
    cr_expect_eq(xen_mfn_to_pfn(&x, 0x20, &pfn), -1);
    cr_expect_eq(errno, ERANGE);
}

Test(xen_m2p, normalise_op_defers_then_fails_paused, .init = setup,
     .fini = teardown)
{
    uint64_t page[512] = {0};

    page[0] = pte(MFN(2), 0x67);
    page[1] = pte(MFN(3), 0x67);
    cr_assert_eq(xen_normalise_page(&x, 7, XCC_PFN_L1TAB | XCC_PFN_PINNED,
                                    page, false), 0);
    cr_expect_eq(page[0], pte(2, 0x67));
    cr_expect_eq(page[1], pte(3, 0x67));

    /* The guest moved pfn 3 to another frame; the table still names it. */
    memset(page, 0, sizeof(page));
    page[1] = pte(MFN(3), 0x67);
    p2m[3] = 0x10ff;
    errno = 0;
    cr_expect_eq(xen_normalise_page(&x, 7, XCC_PFN_L1TAB, page, false), -1);
    cr_expect_eq(errno, EAGAIN);
    page[1] = pte(MFN(3), 0x67);
    errno = 0;
    cr_expect_eq(xen_normalise_page(&x, 7, XCC_PFN_L1TAB, page, true), -1);
    cr_expect_neq(errno, EAGAIN);

    /*
     * A frame in no pfn of the guest (M2P invalid: Xen's shared_info or a
     * grant frame). Live: deferred. Paused and not suspended: the entry
     * is dropped, the rest normalised.
     */
    memset(page, 0, sizeof(page));
    page[0] = pte(MFN(2), 0x67);
    page[9] = pte(0x10f0, 0x8000000000000067ull);
    errno = 0;
    cr_expect_eq(xen_normalise_page(&x, 7, XCC_PFN_L1TAB, page, false), -1);
    cr_expect_eq(errno, EAGAIN);
    page[0] = pte(MFN(2), 0x67);
    page[9] = pte(0x10f0, 0x8000000000000067ull);
    cr_assert_eq(xen_normalise_page(&x, 7, XCC_PFN_L1TAB, page, true), 0);
    cr_expect_eq(page[0], pte(2, 0x67));
    cr_expect_eq(page[9], 0);

    /* Not a page table: refused (the saver never asks). */
    cr_expect_eq(xen_normalise_page(&x, 7, XCC_PFN_NORMAL, page, false), -1);
    cr_expect_eq(errno, EINVAL);
}
