/*
 * test_xen_state.c - the PV domain-state records (xen_records.c) against
 * hand-built vCPU contexts, p2m ranges and page types: mfn -> pfn
 * normalisation of a vCPU context, and the checker inspect and restore
 * run (vCPU ids, cr3 typed L4, P2M_FRAMES against X86_PV_INFO, XL_CONFIG).
 * The gathering from Xen (domain/xen_state.c) runs in make xen-test.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "xen_records.h"

/* A fake machine: mfn = pfn + MFN_BASE for pfns below NR_PFNS. */
#define NR_PFNS 64u
#define MFN_BASE 0x10000u

static uint64_t fake_m2p(void *opaque, uint64_t mfn)
{
    (void)opaque;
    if (mfn < MFN_BASE || mfn >= MFN_BASE + NR_PFNS)
        return UINT64_MAX;
    return mfn - MFN_BASE;
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8); /* x86: little-endian, as the stream */
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A 64-bit vCPU context as xc_vcpu_getcontext returns it (mfns). */
static void build_ctx64(uint8_t *ctx, uint64_t cr3_mfn, uint64_t cr1_mfn,
                        uint64_t gdt_ents, uint64_t gdt_mfn, uint64_t si_mfn)
{
    memset(ctx, 0xA5, XREC_CTX64_SIZE); /* registers nobody converts */
    put64(ctx + XREC_CTX64_RDX, si_mfn);
    put64(ctx + XREC_CTX64_GDT_ENTS, gdt_ents);
    put64(ctx + XREC_CTX64_GDT_FRAMES, gdt_mfn);
    put64(ctx + XREC_CTX64_CTRLREG + 8, cr1_mfn ? 1 | (cr1_mfn << 12) : 0);
    put64(ctx + XREC_CTX64_CTRLREG + 24, cr3_mfn << 12);
}

Test(xen_state, basic_context_frames_become_pfns)
{
    uint8_t ctx[XREC_CTX64_SIZE];
    struct xrec_vcpu_basic vb;
    char err[256] = "";

    build_ctx64(ctx, MFN_BASE + 10, MFN_BASE + 11, 500, MFN_BASE + 6,
                MFN_BASE + 7);
    cr_assert_eq(xrec_vcpu_basic_to_pfns(ctx, sizeof(ctx), 8, 4, 0, true,
                                         fake_m2p, NULL, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(xrec_decode_vcpu_basic(ctx, sizeof(ctx), 8, 4, 0, &vb, err,
                                        sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(vb.cr3_pfn, 10);
    cr_expect(vb.has_cr1);
    cr_expect_eq(vb.cr1_pfn, 11);
    /* cr1 keeps its valid bit, as libxenguest writes it. */
    cr_expect_eq(get64(ctx + XREC_CTX64_CTRLREG + 8), 1 | (11u << 12));
    cr_expect_eq(vb.gdt_ents, 500);
    cr_expect_eq(vb.gdt_frames, 1); /* 500 entries: 1 frame of 512 */
    cr_expect_eq(vb.gdt_pfn[0], 6);
    /* The second slot is beyond the GDT in use: left as it was. */
    cr_expect_eq(get64(ctx + XREC_CTX64_GDT_FRAMES + 8), 0xA5A5A5A5A5A5A5A5ull);
    cr_expect_eq(vb.start_info_pfn, 7);
    /* Untouched registers stay as they were. */
    cr_expect_eq(ctx[0], 0xA5);
    cr_expect_eq(ctx[XREC_CTX64_RDX + 8], 0xA5);
}

Test(xen_state, second_gdt_frame_unknown_is_named)
{
    uint8_t ctx[XREC_CTX64_SIZE];
    char err[256] = "";

    /* 600 entries use two frames; the second slot holds 0xA5.. (not ours). */
    build_ctx64(ctx, MFN_BASE + 10, 0, 600, MFN_BASE + 6, MFN_BASE + 7);
    cr_assert_eq(xrec_vcpu_basic_to_pfns(ctx, sizeof(ctx), 8, 4, 1, true,
                                         fake_m2p, NULL, err, sizeof(err)),
                 -1);
    cr_expect(strstr(err, "GDT frame 1"), "%s", err);
}

Test(xen_state, unknown_cr3_frame_is_refused)
{
    uint8_t ctx[XREC_CTX64_SIZE];
    char err[256] = "";

    build_ctx64(ctx, 0x5, 0, 0, 0, MFN_BASE + 7);
    cr_assert_eq(xrec_vcpu_basic_to_pfns(ctx, sizeof(ctx), 8, 4, 0, true,
                                         fake_m2p, NULL, err, sizeof(err)),
                 -1);
    cr_expect(strstr(err, "cr3 frame 0x5"), "%s", err);
}

Test(xen_state, paused_guest_edx_left_alone)
{
    uint8_t ctx[XREC_CTX64_SIZE];
    char err[256] = "";

    /* Not suspended: edx is no start_info frame and is not converted. */
    build_ctx64(ctx, MFN_BASE + 10, 0, 0, 0, 0x1234);
    cr_assert_eq(xrec_vcpu_basic_to_pfns(ctx, sizeof(ctx), 8, 4, 0, false,
                                         fake_m2p, NULL, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(get64(ctx + XREC_CTX64_RDX), 0x1234);
}

Test(xen_state, pae_cr3_folds_high_bits)
{
    uint8_t ctx[XREC_CTX32_SIZE];
    struct xrec_vcpu_basic vb;
    char err[256] = "";
    /* A 32-bit PAE guest's cr3 holds frame bits 20.. in its low 12 bits. */
    const uint32_t cr3_mfn = MFN_BASE + 12;
    uint32_t cr3 = (uint32_t)(cr3_mfn << 12) | (cr3_mfn >> 20);

    memset(ctx, 0, sizeof(ctx));
    memcpy(ctx + XREC_CTX32_CTRLREG + 12, &cr3, 4);
    uint32_t si = MFN_BASE + 3;
    memcpy(ctx + XREC_CTX32_EDX, &si, 4);
    cr_assert_eq(xrec_vcpu_basic_to_pfns(ctx, sizeof(ctx), 4, 3, 0, true,
                                         fake_m2p, NULL, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(xrec_decode_vcpu_basic(ctx, sizeof(ctx), 4, 3, 0, &vb, err,
                                        sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(vb.cr3_pfn, 12);
    cr_expect_eq(vb.start_info_pfn, 3);
    cr_expect(!vb.has_cr1);
}

/* ---- The checker -------------------------------------------------------- */

static struct xrec_state st;
static char err[400];

static int check(uint32_t type, const void *body, uint32_t len, char **fields)
{
    err[0] = 0;
    return xrec_check(&st, type, body, len, err, sizeof(err), fields);
}

static void pv_info(uint8_t w, uint8_t l)
{
    uint8_t b[XREC_PV_INFO_SIZE];

    xrec_encode_pv_info(b, w, l);
    cr_assert_eq(check(STREAM_REC_X86_PV_INFO, b, sizeof(b), NULL), 0, "%s",
                 err);
}

static int vcpu_basic(uint32_t id, uint64_t cr3_pfn, char **fields)
{
    uint8_t b[XREC_VCPU_HDR_SIZE + XREC_CTX64_SIZE];

    xrec_encode_vcpu_hdr(b, id);
    build_ctx64(b + XREC_VCPU_HDR_SIZE, cr3_pfn, 0, 0, 0, 0);
    return check(STREAM_REC_X86_PV_VCPU_BASIC, b, sizeof(b), fields);
}

static void setup(void)
{
    xrec_state_init(&st, XCC_DHDR_TYPE_X86_PV, NR_PFNS);
}

static void teardown(void)
{
    xrec_state_free(&st);
}

TestSuite(xen_check, .init = setup, .fini = teardown);

Test(xen_check, cr3_typed_l4_passes_and_is_decoded)
{
    char *f = NULL;

    pv_info(8, 4);
    xrec_note_page(&st, 10, XREC_TYPE_L4 | XREC_TYPE_PIN);
    cr_assert_eq(vcpu_basic(1, 10, &f), 0, "%s", err);
    cr_assert_not_null(f);
    cr_expect(strstr(f, "\"vcpu\":1"), "%s", f);
    cr_expect(strstr(f, "\"cr3_pfn\":10"), "%s", f);
    free(f);
}

Test(xen_check, cr3_not_l4_is_refused)
{
    pv_info(8, 4);
    xrec_note_page(&st, 10, 0x1); /* an L1 table */
    xrec_note_page(&st, 12, XREC_TYPE_L4);
    cr_assert_eq(vcpu_basic(0, 10, NULL), -1);
    cr_expect(strstr(err, "cr3 pfn 0xa is not typed L4"), "%s", err);
    cr_expect(strstr(err, "never sent as a page table"), "%s", err);
}

Test(xen_check, cr3_retyped_since_is_refused)
{
    pv_info(8, 4);
    xrec_note_page(&st, 10, XREC_TYPE_L4);
    xrec_note_page(&st, 10, 0x0); /* sent again later as a normal page */
    cr_assert_eq(vcpu_basic(0, 10, NULL), -1);
    cr_expect(strstr(err, "not typed L4"), "%s", err);
    cr_expect(strstr(err, "(normal"), "%s", err);
}

Test(xen_check, cr3_beyond_guest_is_refused)
{
    pv_info(8, 4);
    cr_assert_eq(vcpu_basic(0, NR_PFNS, NULL), -1);
    cr_expect(strstr(err, "beyond the guest's 64 pfns"), "%s", err);
}

Test(xen_check, vcpu_beyond_config_is_refused)
{
    const char *cfg = "{\"c_info\":{\"type\":\"pv\",\"name\":\"guest1\"},"
                      "\"b_info\":{\"max_vcpus\":2,\"max_memkb\":262144}}";
    char *f = NULL;

    cr_assert_eq(check(XREC_XL_CONFIG, cfg, (uint32_t)strlen(cfg), &f), 0,
                 "%s", err);
    cr_expect(strstr(f, "\"name\":\"guest1\""), "%s", f);
    cr_expect(strstr(f, "\"max_memkb\":262144"), "%s", f);
    free(f);
    pv_info(8, 4);
    xrec_note_page(&st, 10, XREC_TYPE_L4);
    cr_assert_eq(vcpu_basic(1, 10, NULL), 0, "%s", err);
    cr_assert_eq(vcpu_basic(2, 10, NULL), -1);
    cr_expect(strstr(err, "vCPU 2, but the domain has 2 (XL_CONFIG"), "%s",
              err);
}

Test(xen_check, vcpu_beyond_xen_limit_without_config)
{
    uint8_t b[XREC_VCPU_HDR_SIZE + 16];

    pv_info(8, 4);
    memset(b, 0, sizeof(b));
    xrec_encode_vcpu_hdr(b, XREC_MAX_VCPUS);
    cr_assert_eq(check(STREAM_REC_X86_PV_VCPU_MSRS, b, sizeof(b), NULL), -1);
    cr_expect(strstr(err, "Xen's limit"), "%s", err);
    xrec_encode_vcpu_hdr(b, XREC_MAX_VCPUS - 1);
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_MSRS, b, sizeof(b), NULL), 0,
                 "%s", err);
}

Test(xen_check, vcpu_blob_sizes)
{
    uint8_t b[XREC_VCPU_HDR_SIZE + XREC_EXTENDED_MAX + 8];

    pv_info(8, 4);
    memset(b, 0, sizeof(b));
    xrec_encode_vcpu_hdr(b, 0);
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_EXTENDED, b,
                       XREC_VCPU_HDR_SIZE + XREC_EXTENDED_MAX, NULL), 0);
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_EXTENDED, b, sizeof(b), NULL),
                 -1);
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_XSAVE, b,
                       XREC_VCPU_HDR_SIZE + 8, NULL), -1);
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_MSRS, b,
                       XREC_VCPU_HDR_SIZE + 24, NULL), -1);
    cr_expect(strstr(err, "not a multiple of 16"), "%s", err);
    /* An empty blob is tolerated, as by libxenguest. */
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_BASIC, b, XREC_VCPU_HDR_SIZE,
                       NULL), 0);
    /* A BASIC context of the 32-bit size in a 64-bit stream. */
    cr_expect_eq(check(STREAM_REC_X86_PV_VCPU_BASIC, b,
                       XREC_VCPU_HDR_SIZE + 16, NULL), -1);
    cr_expect(strstr(err, "expected 5168"), "%s", err);
}

static int p2m(uint32_t start, uint32_t end, uint32_t frames,
               uint64_t first_pfn, char **fields)
{
    size_t len = XREC_P2M_HDR_SIZE + 8 * (size_t)frames;
    uint8_t *b = calloc(1, len);
    int rc;

    xrec_encode_p2m_hdr(b, start, end);
    for (uint32_t i = 0; i < frames; i++)
        put64(b + XREC_P2M_HDR_SIZE + 8 * i, first_pfn + i);
    rc = check(STREAM_REC_X86_PV_P2M_FRAMES, b, (uint32_t)len, fields);
    free(b);
    return rc;
}

Test(xen_check, p2m_frames_match_width)
{
    char *f = NULL;

    st.nr_pfns = 0; /* a stock stream: no GUEST_INFO */
    pv_info(8, 4);
    /* 64-bit: 512 entries per frame, pfns 0..1023 need 2 frames. */
    cr_assert_eq(p2m(0, 1023, 2, 40, &f), 0, "%s", err);
    cr_expect(strstr(f, "\"frames\":2"), "%s", f);
    cr_expect(strstr(f, "\"end_pfn\":1023"), "%s", f);
    free(f);
}

/* frame_pfns lists the frames in record order, runs as ranges, rising or
 * falling (Linux allocates its p2m frames top down). */
Test(xen_check, p2m_frame_pfns_as_ranges)
{
    size_t len = XREC_P2M_HDR_SIZE + 8 * 6;
    const uint64_t frames[6] = {0xaaa, 0xaa9, 0xaa8, 0x10, 0x11, 0x30};
    uint8_t *b = calloc(1, len);
    char *f = NULL;

    st.nr_pfns = 0;
    pv_info(8, 4);
    xrec_encode_p2m_hdr(b, 0, 6 * 512 - 1);
    for (int i = 0; i < 6; i++)
        put64(b + XREC_P2M_HDR_SIZE + 8 * i, frames[i]);
    cr_assert_eq(check(STREAM_REC_X86_PV_P2M_FRAMES, b, (uint32_t)len, &f), 0,
                 "%s", err);
    cr_expect(strstr(f, "\"frame_pfns\":\"0xaaa-0xaa8,0x10-0x11,0x30\""),
              "%s", f);
    free(f);
    free(b);
}

Test(xen_check, p2m_frames_disagreeing_with_pv_info)
{
    st.nr_pfns = 0;
    pv_info(4, 3);
    /* 32-bit: 1024 entries per frame: pfns 0..1023 need 1, not 2. */
    cr_assert_eq(p2m(0, 1023, 2, 40, NULL), -1);
    cr_expect(strstr(err, "X86_PV_INFO: 4-byte guest"), "%s", err);
}

Test(xen_check, p2m_beyond_guest_info)
{
    pv_info(8, 4);
    cr_assert_eq(p2m(0, NR_PFNS, 1, 1, NULL), -1);
    cr_expect(strstr(err, "GUEST_INFO"), "%s", err);
    cr_assert_eq(p2m(0, NR_PFNS - 1, 1, NR_PFNS, NULL), -1);
    cr_expect(strstr(err, "p2m frame 0 at pfn 0x40"), "%s", err);
}

Test(xen_check, order_and_domain_type)
{
    uint8_t b[XREC_PV_INFO_SIZE];

    /* Before X86_PV_INFO, nothing PV goes. */
    cr_assert_eq(p2m(0, 511, 1, 1, NULL), -1);
    cr_expect(strstr(err, "before X86_PV_INFO"), "%s", err);
    pv_info(8, 4);
    xrec_encode_pv_info(b, 8, 4);
    cr_expect_eq(check(STREAM_REC_X86_PV_INFO, b, sizeof(b), NULL), -1);
    cr_expect(strstr(err, "second"), "%s", err);

    xrec_state_free(&st);
    xrec_state_init(&st, XCC_DHDR_TYPE_X86_HVM, 0);
    cr_expect_eq(check(STREAM_REC_X86_PV_INFO, b, sizeof(b), NULL), -1);
    cr_expect(strstr(err, "domain header says type 0x2"), "%s", err);
    xrec_encode_pv_info(b, 8, 3);
    xrec_state_free(&st);
    xrec_state_init(&st, XCC_DHDR_TYPE_X86_PV, 0);
    cr_expect_eq(check(STREAM_REC_X86_PV_INFO, b, sizeof(b), NULL), -1);
    cr_expect(strstr(err, "8/4 or 4/3"), "%s", err);
}

Test(xen_check, tsc_shared_info_policies)
{
    uint8_t tsc[XREC_TSC_INFO_SIZE], si[XREC_PAGE_SIZE] = {0};
    char *f = NULL;

    pv_info(8, 4);
    xrec_encode_tsc_info(tsc, 2, 2400000, 987654321, 3);
    cr_assert_eq(check(STREAM_REC_X86_TSC_INFO, tsc, sizeof(tsc), &f), 0);
    cr_expect(strstr(f, "\"tsc_mode_name\":\"never_emulate\""), "%s", f);
    cr_expect(strstr(f, "\"khz\":2400000"), "%s", f);
    free(f);
    xrec_encode_tsc_info(tsc, 7, 1, 1, 1);
    cr_expect_eq(check(STREAM_REC_X86_TSC_INFO, tsc, sizeof(tsc), NULL), -1);
    cr_expect_eq(check(STREAM_REC_X86_TSC_INFO, tsc, 16, NULL), -1);

    put64(si + XREC_SHINFO64_MAX_PFN, 0x8000);
    cr_assert_eq(check(STREAM_REC_SHARED_INFO, si, sizeof(si), &f), 0);
    cr_expect(strstr(f, "\"max_pfn\":32768"), "%s", f);
    free(f);
    cr_expect_eq(check(STREAM_REC_SHARED_INFO, si, 100, NULL), -1);

    cr_expect_eq(check(STREAM_REC_X86_CPUID_POLICY, si, 48, &f), 0);
    cr_expect(strstr(f, "\"leaves\":2"), "%s", f);
    free(f);
    cr_expect_eq(check(STREAM_REC_X86_CPUID_POLICY, si, 50, NULL), -1);
    cr_expect_eq(check(STREAM_REC_X86_MSR_POLICY, si, 0, NULL), -1);
}

Test(xen_check, config_must_be_libxl_json)
{
    const char *bad[] = {
        "{\"c_info\":{\"name\":\"x\"}} trailing",
        "[1,2]",
        "{\"b_info\":{\"max_vcpus\":1}}",
        "{\"c_info\":{\"name\":\"x\"},\"b_info\":{\"max_vcpus\":0}}",
        "{\"c_info\":{\"name\":\"x\"",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xrec_state_free(&st);
        xrec_state_init(&st, XCC_DHDR_TYPE_X86_PV, 0);
        cr_expect_eq(check(XREC_XL_CONFIG, bad[i], (uint32_t)strlen(bad[i]),
                           NULL),
                     -1, "accepted: %s", bad[i]);
    }
    cr_expect_eq(check(XREC_XL_CONFIG, "", 0, NULL), -1);
}

Test(xen_check, many_tables_are_tracked)
{
    /* Enough L4 pfns to grow the table several times; each one is found. */
    pv_info(8, 4);
    st.nr_pfns = 0;
    for (uint64_t p = 0; p < 20000; p++)
        xrec_note_page(&st, p * 7, XREC_TYPE_L4);
    for (uint64_t p = 0; p < 20000; p += 997)
        cr_assert_eq(vcpu_basic(0, p * 7, NULL), 0, "pfn %lu: %s",
                     (unsigned long)(p * 7), err);
    cr_expect_eq(vcpu_basic(0, 5, NULL), -1);
}
