/*
 * xen_records.c - encoders, decoders and the stream-order checker of the
 * x86 PV domain-state records and XL_CONFIG (see xen_records.h).
 *
 * The rules are libxenguest 4.17's restore checks (so that what passes
 * here passes there) plus the cross-record ones a memory stream makes
 * possible: a vCPU's cr3 must name a pfn the stream sent as a top-level
 * page table, and the P2M_FRAMES range must fit X86_PV_INFO's width and
 * GUEST_INFO's size.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "pfn_type.h"
#include "private.h"
#include "stream.h"
#include "xen_records.h"

static void st32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void st64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

/* A guest word (4 or 8 bytes) at p. */
static uint64_t ldw(const uint8_t *p, unsigned width)
{
    return width == 8 ? ld64(p) : ld32(p);
}

static void stw(uint8_t *p, unsigned width, uint64_t v)
{
    if (width == 8)
        st64(p, v);
    else
        st32(p, (uint32_t)v);
}

/* A check's message, kept in err: the caller prefixes the record and logs
 * it (stream_rec_fail). */
#define fail(err, errlen, ...)                                                 \
    lib_fail(NULL, NULL, (err), (errlen), XCC_EBADSTREAM, __VA_ARGS__)

void xrec_encode_pv_info(uint8_t out[XREC_PV_INFO_SIZE], uint8_t guest_width,
                         uint8_t pt_levels)
{
    memset(out, 0, XREC_PV_INFO_SIZE);
    out[0] = guest_width;
    out[1] = pt_levels;
}

void xrec_encode_vcpu_hdr(uint8_t out[XREC_VCPU_HDR_SIZE], uint32_t vcpu_id)
{
    st32(out, vcpu_id);
    st32(out + 4, 0);
}

void xrec_encode_p2m_hdr(uint8_t out[XREC_P2M_HDR_SIZE], uint32_t start_pfn,
                         uint32_t end_pfn)
{
    st32(out, start_pfn);
    st32(out + 4, end_pfn);
}

void xrec_encode_tsc_info(uint8_t out[XREC_TSC_INFO_SIZE], uint32_t mode,
                          uint32_t khz, uint64_t nsec, uint32_t incarnation)
{
    st32(out, mode);
    st32(out + 4, khz);
    st64(out + 8, nsec);
    st32(out + 16, incarnation);
    st32(out + 20, 0);
}

uint64_t xrec_p2m_frames(uint32_t start_pfn, uint32_t end_pfn,
                         unsigned guest_width)
{
    const uint32_t fpp = XREC_PAGE_SIZE / guest_width; /* entries per frame */

    return (uint64_t)(end_pfn / fpp) - start_pfn / fpp + 1;
}

/* The layout of a BASIC blob for a guest width. */
struct ctx_layout {
    size_t size, edx, gdt_frames, gdt_ents, ctrlreg;
};

static bool ctx_layout(unsigned width, struct ctx_layout *l)
{
    if (width == 8) {
        *l = (struct ctx_layout){XREC_CTX64_SIZE, XREC_CTX64_RDX,
                                 XREC_CTX64_GDT_FRAMES, XREC_CTX64_GDT_ENTS,
                                 XREC_CTX64_CTRLREG};
        return true;
    }
    if (width == 4) {
        *l = (struct ctx_layout){XREC_CTX32_SIZE, XREC_CTX32_EDX,
                                 XREC_CTX32_GDT_FRAMES, XREC_CTX32_GDT_ENTS,
                                 XREC_CTX32_CTRLREG};
        return true;
    }
    return false;
}

/* cr3 <-> frame, as Xen's xen_cr3_to_pfn / xen_pfn_to_cr3: a 32-bit
 * (PAE) guest folds the frame's top bits into the low 12. */
static uint64_t cr3_to_frame(uint64_t cr3, unsigned width)
{
    if (width == 8)
        return cr3 >> XREC_PAGE_SHIFT;
    return ((uint32_t)cr3 >> XREC_PAGE_SHIFT) | (uint32_t)(cr3 << 20);
}

static uint64_t frame_to_cr3(uint64_t frame, unsigned width)
{
    if (width == 8)
        return frame << XREC_PAGE_SHIFT;
    return (uint32_t)((frame << XREC_PAGE_SHIFT) | (frame >> 20));
}

int xrec_vcpu_basic_to_pfns(uint8_t *ctx, size_t len, unsigned guest_width,
                            unsigned pt_levels, uint32_t vcpu_id,
                            bool start_info, xrec_m2p_fn *m2p, void *opaque,
                            char *err, size_t errlen)
{
    struct ctx_layout l;
    uint64_t ents, frames, mfn, pfn;

    if (!ctx_layout(guest_width, &l) || len != l.size)
        return fail(err, errlen, "vCPU %" PRIu32 ": context of %zu bytes for "
                    "a %u-byte guest", vcpu_id, len, guest_width);
    /* vCPU 0 carries the start_info frame in edx on suspend. */
    if (vcpu_id == 0 && start_info) {
        mfn = ldw(ctx + l.edx, guest_width);
        pfn = m2p(opaque, mfn);
        if (pfn == UINT64_MAX)
            return fail(err, errlen, "vCPU 0: start_info frame %#" PRIx64
                        " (edx) is not the domain's", mfn);
        stw(ctx + l.edx, guest_width, pfn);
    }
    ents = ldw(ctx + l.gdt_ents, guest_width);
    if (ents > XREC_GDT_ENTRIES_MAX)
        return fail(err, errlen, "vCPU %" PRIu32 ": %" PRIu64 " GDT entries "
                    "(at most %u)", vcpu_id, ents, XREC_GDT_ENTRIES_MAX);
    frames = XCC_DIV_ROUND_UP(ents, XREC_GDT_ENTRIES_PER_FRAME);
    for (uint64_t i = 0; i < frames; i++) {
        uint8_t *slot = ctx + l.gdt_frames + i * guest_width;

        mfn = ldw(slot, guest_width);
        pfn = m2p(opaque, mfn);
        if (pfn == UINT64_MAX)
            return fail(err, errlen, "vCPU %" PRIu32 ": GDT frame %" PRIu64
                        " (%#" PRIx64 ") is not the domain's", vcpu_id, i,
                        mfn);
        stw(slot, guest_width, pfn);
    }
    mfn = cr3_to_frame(ldw(ctx + l.ctrlreg + 3 * guest_width, guest_width),
                       guest_width);
    pfn = m2p(opaque, mfn);
    if (pfn == UINT64_MAX)
        return fail(err, errlen, "vCPU %" PRIu32 ": cr3 frame %#" PRIx64
                    " is not the domain's", vcpu_id, mfn);
    stw(ctx + l.ctrlreg + 3 * guest_width, guest_width,
        frame_to_cr3(pfn, guest_width));
    /* 64-bit guests: cr1 holds the user page table (bit 0: valid). */
    if (pt_levels == 4 && guest_width == 8) {
        uint64_t cr1 = ld64(ctx + l.ctrlreg + 8);

        if (cr1) {
            mfn = cr1 >> XREC_PAGE_SHIFT;
            pfn = m2p(opaque, mfn);
            if (pfn == UINT64_MAX)
                return fail(err, errlen, "vCPU %" PRIu32 ": cr1 frame %#"
                            PRIx64 " is not the domain's", vcpu_id, mfn);
            st64(ctx + l.ctrlreg + 8, 1 | (pfn << XREC_PAGE_SHIFT));
        }
    }
    return 0;
}

int xrec_decode_vcpu_basic(const uint8_t *blob, size_t len,
                           unsigned guest_width, unsigned pt_levels,
                           uint32_t vcpu_id, struct xrec_vcpu_basic *out,
                           char *err, size_t errlen)
{
    struct ctx_layout l;
    uint64_t ents;

    memset(out, 0, sizeof(*out));
    out->vcpu_id = vcpu_id;
    if (!ctx_layout(guest_width, &l))
        return fail(err, errlen, "guest width %u is neither 4 nor 8",
                    guest_width);
    if (len != l.size)
        return fail(err, errlen, "vCPU %" PRIu32 ": context of %zu bytes, "
                    "expected %zu for a %u-byte guest (X86_PV_INFO)",
                    vcpu_id, len, l.size, guest_width);
    ents = ldw(blob + l.gdt_ents, guest_width);
    if (ents > XREC_GDT_ENTRIES_MAX)
        return fail(err, errlen, "vCPU %" PRIu32 ": %" PRIu64 " GDT entries "
                    "(at most %u)", vcpu_id, ents, XREC_GDT_ENTRIES_MAX);
    out->gdt_ents = (uint32_t)ents;
    out->gdt_frames = (uint32_t)XCC_DIV_ROUND_UP(ents,
                                                 XREC_GDT_ENTRIES_PER_FRAME);
    for (uint32_t i = 0; i < out->gdt_frames; i++)
        out->gdt_pfn[i] = ldw(blob + l.gdt_frames + i * guest_width,
                              guest_width);
    out->cr3_pfn = cr3_to_frame(ldw(blob + l.ctrlreg + 3 * guest_width,
                                    guest_width), guest_width);
    if (pt_levels == 4 && guest_width == 8) {
        uint64_t cr1 = ld64(blob + l.ctrlreg + 8);

        out->has_cr1 = cr1 != 0;
        out->cr1_pfn = cr1 >> XREC_PAGE_SHIFT;
    }
    if (vcpu_id == 0)
        out->start_info_pfn = ldw(blob + l.edx, guest_width);
    return 0;
}

/* ---- The checker -------------------------------------------------------- */

void xrec_state_init(struct xrec_state *s, uint32_t dhdr_type,
                     uint64_t nr_pfns)
{
    memset(s, 0, sizeof(*s));
    s->dhdr_type = dhdr_type;
    s->nr_pfns = nr_pfns;
    s->max_vcpus = XREC_MAX_VCPUS;
}

void xrec_state_free(struct xrec_state *s)
{
    free(s->pt_keys);
    free(s->pt_types);
    s->pt_keys = NULL;
    s->pt_types = NULL;
    s->pt_cap = s->pt_used = 0;
}

bool xrec_checked(uint32_t type)
{
    switch (type) {
    case STREAM_REC_X86_PV_INFO:
    case STREAM_REC_X86_PV_P2M_FRAMES:
    case STREAM_REC_X86_PV_VCPU_BASIC:
    case STREAM_REC_X86_PV_VCPU_EXTENDED:
    case STREAM_REC_X86_PV_VCPU_XSAVE:
    case STREAM_REC_X86_PV_VCPU_MSRS:
    case STREAM_REC_SHARED_INFO:
    case STREAM_REC_X86_TSC_INFO:
    case STREAM_REC_X86_CPUID_POLICY:
    case STREAM_REC_X86_MSR_POLICY:
    case XREC_XL_CONFIG:
        return true;
    default:
        return false;
    }
}

static size_t pt_slot(const struct xrec_state *s, uint64_t pfn)
{
    /* Fibonacci hashing: pfns of page tables cluster. */
    size_t i = (size_t)((pfn * 0x9E3779B97F4A7C15ull) >> 20) & (s->pt_cap - 1);

    while (s->pt_keys[i] && s->pt_keys[i] != pfn + 1)
        i = (i + 1) & (s->pt_cap - 1);
    return i;
}

static bool pt_grow(struct xrec_state *s)
{
    size_t ncap = s->pt_cap ? 2 * s->pt_cap : 1024;
    uint64_t *keys = calloc(ncap, sizeof(*keys));
    uint8_t *types = calloc(ncap, 1);
    struct xrec_state n = {.pt_keys = keys, .pt_types = types, .pt_cap = ncap};

    if (!keys || !types) {
        free(keys);
        free(types);
        return false;
    }
    for (size_t i = 0; i < s->pt_cap; i++) {
        if (!s->pt_keys[i])
            continue;
        size_t j = pt_slot(&n, s->pt_keys[i] - 1);
        keys[j] = s->pt_keys[i];
        types[j] = s->pt_types[i];
    }
    free(s->pt_keys);
    free(s->pt_types);
    s->pt_keys = keys;
    s->pt_types = types;
    s->pt_cap = ncap;
    return true;
}

/* L3 or L4, pinned or not (the types are 4 bits wide). */
static bool is_toplevel(unsigned type)
{
    unsigned base = type & ~XREC_TYPE_PIN;

    return base == XREC_TYPE_L3 || base == XREC_TYPE_L4;
}

void xrec_note_page(struct xrec_state *s, uint64_t pfn, unsigned type)
{
    bool top = is_toplevel(type);

    if (!top && !s->pt_used)
        return;
    if (top && !s->pt_overflow &&
        (s->pt_used + 1) * 2 > s->pt_cap) { /* load factor 1/2 */
        if (s->pt_used >= XREC_TOPLEVEL_MAX || !pt_grow(s)) {
            s->pt_overflow = true;
            return;
        }
    }
    if (!s->pt_cap)
        return;
    size_t i = pt_slot(s, pfn);
    if (s->pt_keys[i]) {
        s->pt_types[i] = (uint8_t)type;
    } else if (top && !s->pt_overflow) {
        s->pt_keys[i] = pfn + 1;
        s->pt_types[i] = (uint8_t)type;
        s->pt_used++;
    }
}

/* The last type pfn had in PAGE_DATA, when it was ever a top-level table;
 * -1 when it never was. */
static int pt_lookup(const struct xrec_state *s, uint64_t pfn)
{
    if (!s->pt_cap)
        return -1;
    size_t i = pt_slot(s, pfn);
    return s->pt_keys[i] ? s->pt_types[i] : -1;
}

static const char *type_desc(int type)
{
    if (type < 0)
        return "never sent as a page table";
    return stream_pfn_type_name((unsigned)type);
}

/* Fields for inspect, built as the checks go. */
struct fields {
    json_object *o;
};

static void f_u64(struct fields *f, const char *key, uint64_t v)
{
    if (f->o)
        json_object_object_add(f->o, key, json_object_new_uint64(v));
}

static void f_str(struct fields *f, const char *key, const char *v)
{
    if (f->o)
        json_object_object_add(f->o, key, json_object_new_string(v));
}

/*
 * "frame_pfns": the p2m frames' pfns as "A-B,C,..." in record order (runs
 * of consecutive pfns, rising or falling, as ranges from the first to the
 * last): the pages a restore into a new domain
 * rewrites with its own frames, in the form `digest --exclude-pfns` takes.
 */
static void f_frame_ranges(struct fields *f, const uint8_t *list,
                           uint64_t frames)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);

    if (!out)
        return;
    out[0] = '\0';
    for (uint64_t i = 0; i < frames;) {
        uint64_t a = ld64(list + 8 * i), b = a, j = i + 1;
        char piece[48];
        int n;

        /* Linux allocates its p2m frames top down: falling runs too. */
        if (j < frames && a && ld64(list + 8 * j) == a - 1)
            while (j < frames && b && ld64(list + 8 * j) == b - 1) {
                b--;
                j++;
            }
        else
            while (j < frames && ld64(list + 8 * j) == b + 1) {
                b++;
                j++;
            }
        n = a == b ? snprintf(piece, sizeof(piece), "%s%#" PRIx64,
                              len ? "," : "", a)
                   : snprintf(piece, sizeof(piece), "%s%#" PRIx64 "-%#" PRIx64,
                              len ? "," : "", a, b);
        if (len + (size_t)n + 1 > cap) {
            char *bigger = realloc(out, cap * 2 + (size_t)n);

            if (!bigger) {
                free(out);
                return;
            }
            out = bigger;
            cap = cap * 2 + (size_t)n;
        }
        memcpy(out + len, piece, (size_t)n + 1);
        len += (size_t)n;
        i = j;
    }
    f_str(f, "frame_pfns", out);
    free(out);
}

static int need_pv(const struct xrec_state *s, char *err, size_t errlen)
{
    if (s->dhdr_type != XCC_DHDR_TYPE_X86_PV)
        return fail(err, errlen, "an x86 PV record in a stream whose domain "
                    "header says type 0x%" PRIx32, s->dhdr_type);
    if (!s->pv_info_seen)
        return fail(err, errlen, "comes before X86_PV_INFO");
    return 0;
}

static int check_pv_info(struct xrec_state *s, const uint8_t *b, uint32_t len,
                         struct fields *f, char *err, size_t errlen)
{
    if (s->dhdr_type != XCC_DHDR_TYPE_X86_PV)
        return fail(err, errlen, "an x86 PV record in a stream whose domain "
                    "header says type 0x%" PRIx32, s->dhdr_type);
    if (s->pv_info_seen)
        return fail(err, errlen, "a second X86_PV_INFO");
    if (len != XREC_PV_INFO_SIZE)
        return fail(err, errlen, "body of %" PRIu32 " bytes, expected %u",
                    len, XREC_PV_INFO_SIZE);
    /* Xen's valid combinations: 64-bit with 4 levels, 32-bit PAE with 3. */
    if (!((b[0] == 8 && b[1] == 4) || (b[0] == 4 && b[1] == 3)))
        return fail(err, errlen, "guest width %u with %u page-table levels "
                    "(expected 8/4 or 4/3)", b[0], b[1]);
    s->pv_info_seen = true;
    s->guest_width = b[0];
    s->pt_levels = b[1];
    f_u64(f, "guest_width", b[0]);
    f_u64(f, "pt_levels", b[1]);
    return 0;
}

static int check_p2m_frames(struct xrec_state *s, const uint8_t *b,
                            uint32_t len, struct fields *f, char *err,
                            size_t errlen)
{
    uint32_t start, end;
    uint64_t frames;

    if (need_pv(s, err, errlen))
        return -1;
    if (s->p2m_seen)
        return fail(err, errlen, "a second X86_PV_P2M_FRAMES");
    if (len < XREC_P2M_HDR_SIZE)
        return fail(err, errlen, "body of %" PRIu32 " bytes: shorter than "
                    "its %u-byte header", len, XREC_P2M_HDR_SIZE);
    start = ld32(b);
    end = ld32(b + 4);
    if (start > end)
        return fail(err, errlen, "start pfn %#" PRIx32 " is above end pfn %#"
                    PRIx32, start, end);
    frames = xrec_p2m_frames(start, end, s->guest_width);
    if (len != XREC_P2M_HDR_SIZE + 8 * frames)
        return fail(err, errlen, "pfns %#" PRIx32 "..%#" PRIx32 " need %"
                    PRIu64 " p2m frames of %u entries (X86_PV_INFO: %u-byte "
                    "guest), but the body holds %" PRIu32 " bytes, not %"
                    PRIu64, start, end, frames,
                    XREC_PAGE_SIZE / s->guest_width, s->guest_width, len,
                    XREC_P2M_HDR_SIZE + 8 * frames);
    if (s->nr_pfns && end >= s->nr_pfns)
        return fail(err, errlen, "end pfn %#" PRIx32 " is beyond the guest's "
                    "%" PRIu64 " pfns (GUEST_INFO)", end, s->nr_pfns);
    for (uint64_t i = 0; i < frames; i++) {
        uint64_t pfn = ld64(b + XREC_P2M_HDR_SIZE + 8 * i);
        uint64_t bound = s->nr_pfns ? s->nr_pfns : (uint64_t)end + 1;

        if (pfn >= bound)
            return fail(err, errlen, "p2m frame %" PRIu64 " at pfn %#" PRIx64
                        ", beyond the guest's %" PRIu64 " pfns", i, pfn,
                        bound);
    }
    s->p2m_seen = true;
    s->p2m_start = start;
    s->p2m_end = end;
    f_u64(f, "start_pfn", start);
    f_u64(f, "end_pfn", end);
    f_u64(f, "frames", frames);
    if (frames) {
        f_u64(f, "first_frame_pfn", ld64(b + XREC_P2M_HDR_SIZE));
        f_u64(f, "last_frame_pfn",
              ld64(b + XREC_P2M_HDR_SIZE + 8 * (frames - 1)));
        if (f->o)
            f_frame_ranges(f, b + XREC_P2M_HDR_SIZE, frames);
    }
    return 0;
}

/* A pfn a vCPU names: within the guest, and (tables) sent with the type
 * expected. */
static int check_vcpu_pfn(const struct xrec_state *s, uint32_t vcpu,
                          const char *what, uint64_t pfn, char *err,
                          size_t errlen)
{
    if (s->nr_pfns && pfn >= s->nr_pfns)
        return fail(err, errlen, "vCPU %" PRIu32 ": %s pfn %#" PRIx64
                    " is beyond the guest's %" PRIu64 " pfns", vcpu, what,
                    pfn, s->nr_pfns);
    if (pfn >= STREAM_PFN_LIMIT)
        return fail(err, errlen, "vCPU %" PRIu32 ": %s pfn %#" PRIx64
                    " is not a pfn", vcpu, what, pfn);
    return 0;
}

static int check_table_pfn(const struct xrec_state *s, uint32_t vcpu,
                           const char *what, uint64_t pfn, char *err,
                           size_t errlen)
{
    const unsigned want = s->pt_levels == 4 ? XREC_TYPE_L4 : XREC_TYPE_L3;
    int t;

    if (check_vcpu_pfn(s, vcpu, what, pfn, err, errlen))
        return -1;
    if (s->pt_overflow)
        return 0; /* too many tables to track: not checked */
    t = pt_lookup(s, pfn);
    if (t < 0 || ((unsigned)t & ~XREC_TYPE_PIN) != want)
        return fail(err, errlen, "vCPU %" PRIu32 ": %s pfn %#" PRIx64
                    " is not typed L%u in the stream's PAGE_DATA (%s)", vcpu,
                    what, pfn, want, type_desc(t));
    return 0;
}

static int check_vcpu(struct xrec_state *s, uint32_t type, const uint8_t *b,
                      uint32_t len, struct fields *f, char *err,
                      size_t errlen)
{
    uint32_t vcpu;
    uint32_t blob;

    if (need_pv(s, err, errlen))
        return -1;
    if (len < XREC_VCPU_HDR_SIZE)
        return fail(err, errlen, "body of %" PRIu32 " bytes: shorter than "
                    "its %u-byte header", len, XREC_VCPU_HDR_SIZE);
    vcpu = ld32(b);
    blob = len - XREC_VCPU_HDR_SIZE;
    if (vcpu >= s->max_vcpus)
        return fail(err, errlen, "vCPU %" PRIu32 ", but the domain has %"
                    PRIu32 " (%s)", vcpu, s->max_vcpus,
                    s->config_seen ? "XL_CONFIG max_vcpus"
                                   : "Xen's limit for PV domains");
    f_u64(f, "vcpu", vcpu);
    f_u64(f, "bytes", blob);
    b += XREC_VCPU_HDR_SIZE;
    if (blob == 0) /* Xen's restore tolerates empty ones: so do we */
        return 0;

    switch (type) {
    case STREAM_REC_X86_PV_VCPU_BASIC: {
        struct xrec_vcpu_basic vb;

        if (xrec_decode_vcpu_basic(b, blob, s->guest_width, s->pt_levels,
                                   vcpu, &vb, err, errlen))
            return -1;
        if (check_table_pfn(s, vcpu, "cr3", vb.cr3_pfn, err, errlen))
            return -1;
        if (vb.has_cr1 &&
            check_table_pfn(s, vcpu, "cr1", vb.cr1_pfn, err, errlen))
            return -1;
        for (uint32_t i = 0; i < vb.gdt_frames; i++)
            if (check_vcpu_pfn(s, vcpu, "GDT frame", vb.gdt_pfn[i], err,
                               errlen))
                return -1;
        if (vcpu == 0 && check_vcpu_pfn(s, vcpu, "start_info",
                                        vb.start_info_pfn, err, errlen))
            return -1;
        s->vcpu_basic_records++;
        f_u64(f, "cr3_pfn", vb.cr3_pfn);
        if (vb.has_cr1)
            f_u64(f, "cr1_pfn", vb.cr1_pfn);
        f_u64(f, "gdt_ents", vb.gdt_ents);
        if (vcpu == 0)
            f_u64(f, "start_info_pfn", vb.start_info_pfn);
        break;
    }
    case STREAM_REC_X86_PV_VCPU_EXTENDED:
        if (blob > XREC_EXTENDED_MAX)
            return fail(err, errlen, "vCPU %" PRIu32 ": %" PRIu32 " bytes of "
                        "extended context (at most %u)", vcpu, blob,
                        XREC_EXTENDED_MAX);
        break;
    case STREAM_REC_X86_PV_VCPU_XSAVE:
        if (blob < XREC_XSAVE_MIN)
            return fail(err, errlen, "vCPU %" PRIu32 ": %" PRIu32 " bytes of "
                        "xsave state (at least %u: xcr0, xcr0_accum)", vcpu,
                        blob, XREC_XSAVE_MIN);
        f_u64(f, "xcr0", ld64(b));
        f_u64(f, "xcr0_accum", ld64(b + 8));
        break;
    case STREAM_REC_X86_PV_VCPU_MSRS:
        if (blob % XREC_VCPU_MSR_SIZE)
            return fail(err, errlen, "vCPU %" PRIu32 ": %" PRIu32 " bytes of "
                        "MSRs, not a multiple of %u", vcpu, blob,
                        XREC_VCPU_MSR_SIZE);
        f_u64(f, "msrs", blob / XREC_VCPU_MSR_SIZE);
        break;
    }
    return 0;
}

static const char *tsc_mode_name(uint32_t mode)
{
    static const char *const names[] = {"default", "always_emulate",
                                        "never_emulate"};

    return mode <= XREC_TSC_MODE_MAX ? names[mode] : "unknown";
}

static int check_tsc(struct xrec_state *s, const uint8_t *b, uint32_t len,
                     struct fields *f, char *err, size_t errlen)
{
    uint32_t mode;

    if (len != XREC_TSC_INFO_SIZE)
        return fail(err, errlen, "body of %" PRIu32 " bytes, expected %u",
                    len, XREC_TSC_INFO_SIZE);
    mode = ld32(b);
    if (mode > XREC_TSC_MODE_MAX)
        return fail(err, errlen, "TSC mode %" PRIu32 " (Xen 4.17 knows 0..%u)",
                    mode, XREC_TSC_MODE_MAX);
    f_u64(f, "tsc_mode", mode);
    f_str(f, "tsc_mode_name", tsc_mode_name(mode));
    f_u64(f, "khz", ld32(b + 4));
    f_u64(f, "nsec", ld64(b + 8));
    f_u64(f, "incarnation", ld32(b + 16));
    return 0;
}

static int check_shared_info(struct xrec_state *s, const uint8_t *b,
                             uint32_t len, struct fields *f, char *err,
                             size_t errlen)
{
    if (need_pv(s, err, errlen))
        return -1;
    if (len != XREC_PAGE_SIZE)
        return fail(err, errlen, "body of %" PRIu32 " bytes, expected one "
                    "page (%u)", len, XREC_PAGE_SIZE);
    f_u64(f, "max_pfn", s->guest_width == 8
                            ? ld64(b + XREC_SHINFO64_MAX_PFN)
                            : ld32(b + XREC_SHINFO32_MAX_PFN));
    return 0;
}

static int check_policy(uint32_t len, uint32_t entry, struct fields *f,
                        const char *key, char *err, size_t errlen)
{
    if (len == 0 || len % entry)
        return fail(err, errlen, "body of %" PRIu32 " bytes: not a non-zero "
                    "multiple of the %" PRIu32 "-byte entry", len, entry);
    f_u64(f, key, len / entry);
    return 0;
}

/* "a.b" of a JSON object, or NULL. */
static json_object *path2(json_object *root, const char *a, const char *b)
{
    json_object *x, *y;

    if (!json_object_object_get_ex(root, a, &x) ||
        !json_object_is_type(x, json_type_object) ||
        !json_object_object_get_ex(x, b, &y))
        return NULL;
    return y;
}

static int check_config(struct xrec_state *s, const uint8_t *b, uint32_t len,
                        struct fields *f, char *err, size_t errlen)
{
    struct json_tokener *tok;
    json_object *root, *name, *vcpus, *mem;
    int rc = -1;

    if (s->config_seen)
        return fail(err, errlen, "a second XL_CONFIG");
    if (len == 0)
        return fail(err, errlen, "empty body: expected libxl's JSON");
    if (memchr(b, 0, len))
        return fail(err, errlen, "a NUL byte inside the JSON text");
    tok = json_tokener_new();
    if (!tok)
        return fail(err, errlen, "out of memory");
    root = json_tokener_parse_ex(tok, (const char *)b, (int)len);
    if (!root || json_tokener_get_parse_end(tok) != len) {
        fail(err, errlen, "not one JSON document (%s at byte %zu)",
             root ? "trailing bytes"
                  : json_tokener_error_desc(json_tokener_get_error(tok)),
             json_tokener_get_parse_end(tok));
        goto out;
    }
    if (!json_object_is_type(root, json_type_object)) {
        fail(err, errlen, "the JSON is not an object");
        goto out;
    }
    name = path2(root, "c_info", "name");
    if (!name || !json_object_is_type(name, json_type_string)) {
        fail(err, errlen, "no c_info.name string: not a libxl domain config");
        goto out;
    }
    snprintf(s->config_name, sizeof(s->config_name), "%s",
             json_object_get_string(name));
    vcpus = path2(root, "b_info", "max_vcpus");
    if (vcpus) {
        int64_t v = json_object_get_int64(vcpus);

        if (!json_object_is_type(vcpus, json_type_int) || v < 1 ||
            v > XREC_MAX_VCPUS) {
            fail(err, errlen, "b_info.max_vcpus is not a count from 1 to %u",
                 XREC_MAX_VCPUS);
            goto out;
        }
        s->max_vcpus = (uint32_t)v;
        f_u64(f, "max_vcpus", (uint64_t)v);
    }
    mem = path2(root, "b_info", "max_memkb");
    if (mem && json_object_is_type(mem, json_type_int) &&
        json_object_get_int64(mem) > 0) {
        s->config_memkb = (uint64_t)json_object_get_int64(mem);
        f_u64(f, "max_memkb", s->config_memkb);
    }
    mem = path2(root, "b_info", "target_memkb");
    if (mem && json_object_is_type(mem, json_type_int) &&
        json_object_get_int64(mem) > 0)
        f_u64(f, "target_memkb", (uint64_t)json_object_get_int64(mem));
    f_str(f, "name", s->config_name);
    s->config_seen = true;
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}

int xrec_check(struct xrec_state *s, uint32_t type, const uint8_t *body,
               uint32_t len, char *err, size_t errlen, char **fields)
{
    struct fields f = {fields ? json_object_new_object() : NULL};
    int rc;

    if (fields)
        *fields = NULL;
    switch (type) {
    case STREAM_REC_X86_PV_INFO:
        rc = check_pv_info(s, body, len, &f, err, errlen);
        break;
    case STREAM_REC_X86_PV_P2M_FRAMES:
        rc = check_p2m_frames(s, body, len, &f, err, errlen);
        break;
    case STREAM_REC_X86_PV_VCPU_BASIC:
    case STREAM_REC_X86_PV_VCPU_EXTENDED:
    case STREAM_REC_X86_PV_VCPU_XSAVE:
    case STREAM_REC_X86_PV_VCPU_MSRS:
        rc = check_vcpu(s, type, body, len, &f, err, errlen);
        break;
    case STREAM_REC_SHARED_INFO:
        rc = check_shared_info(s, body, len, &f, err, errlen);
        break;
    case STREAM_REC_X86_TSC_INFO:
        rc = check_tsc(s, body, len, &f, err, errlen);
        break;
    case STREAM_REC_X86_CPUID_POLICY:
        rc = check_policy(len, XREC_CPUID_LEAF_SIZE, &f, "leaves", err,
                          errlen);
        break;
    case STREAM_REC_X86_MSR_POLICY:
        rc = check_policy(len, XREC_MSR_ENTRY_SIZE, &f, "msrs", err, errlen);
        break;
    case XREC_XL_CONFIG:
        rc = check_config(s, body, len, &f, err, errlen);
        break;
    default:
        rc = 0;
        break;
    }
    if (rc == 0 && fields && f.o && json_object_object_length(f.o)) {
        const char *txt = json_object_to_json_string_ext(
            f.o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *fields = txt ? strdup(txt) : NULL;
    }
    json_object_put(f.o);
    return rc;
}
