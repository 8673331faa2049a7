/*
 * xen_records.h - the x86 PV domain-state records of the libxc migration
 * stream (Xen 4.17, docs/specs/libxc-migration-stream.pandoc), and the
 * project's XL_CONFIG record: layouts, encoders, decoders and the checker
 * that inspect and restore run over them.
 *
 * Pure: no Xen header, no I/O. Offsets into Xen's structures are named
 * here and checked against Xen's headers by domain/xen_state.c
 * (_Static_assert), the one file that fills them from a live domain.
 * libxc-colo/docs/stream-format.md, section "Xen domain state", gives the
 * rules the checker applies.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_XEN_RECORDS_H
#define XCC_XEN_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The project's record: the domain's libxl configuration as JSON. */
#define XREC_XL_CONFIG 0x58430006u

/* Xen's x86 page size: every PV record assumes it. */
#define XREC_PAGE_SIZE 4096u

/* ---- Record bodies (little-endian, as Xen writes them) ------------------- */

/* X86_PV_INFO: u8 guest_width, u8 pt_levels, u8 reserved[6]. */
#define XREC_PV_INFO_SIZE 8u
/* X86_PV_P2M_FRAMES: u32 start_pfn, u32 end_pfn (inclusive), then one u64
 * pfn per p2m frame covering start..end. */
#define XREC_P2M_HDR_SIZE 8u
/* X86_PV_VCPU_*: u32 vcpu_id, u32 reserved, then Xen's blob. */
#define XREC_VCPU_HDR_SIZE 8u
/* X86_TSC_INFO: u32 mode, u32 khz, u64 nsec, u32 incarnation, u32 res. */
#define XREC_TSC_INFO_SIZE 24u
/* X86_CPUID_POLICY entries (xen_cpuid_leaf_t) and X86_MSR_POLICY entries
 * (xen_msr_entry_t). */
#define XREC_CPUID_LEAF_SIZE 24u
#define XREC_MSR_ENTRY_SIZE 16u
/* X86_PV_VCPU_MSRS entries (xen_domctl_vcpu_msr_t: u32 index, u32 res,
 * u64 value). */
#define XREC_VCPU_MSR_SIZE 16u
/* Xen's restore refuses an EXTENDED blob longer than this, and an XSAVE
 * blob shorter than its two leading u64s (xcr0, xcr0_accum). */
#define XREC_EXTENDED_MAX 128u
#define XREC_XSAVE_MIN 16u

/* The vCPU ids an x86 PV domain can have: Xen 4.17's MAX_VIRT_CPUS (its
 * per-domain GDT/LDT area holds 8192 vCPUs). A stream without XL_CONFIG is
 * held to this; with one, to its b_info.max_vcpus. */
#define XREC_MAX_VCPUS 8192u

/* Distinct top-level page-table pfns the checker tracks: a real guest has
 * a few thousand; a stream claiming more is refused rather than letting it
 * grow the table without bound. */
#define XREC_TOPLEVEL_MAX (1u << 20)

/*
 * vcpu_guest_context_x86_64_t / _x86_32_t (xen/arch-x86/xen-x86_*.h), the
 * X86_PV_VCPU_BASIC blob: sizes and the offsets of the fields that hold
 * machine frames. xen_state.c asserts every one against Xen's header.
 */
#define XREC_CTX64_SIZE 5168u
#define XREC_CTX64_RDX 616u        /* user_regs.rdx: start_info (vCPU 0) */
#define XREC_CTX64_GDT_FRAMES 4832u /* unsigned long gdt_frames[16] */
#define XREC_CTX64_GDT_ENTS 4960u   /* unsigned long gdt_ents */
#define XREC_CTX64_CTRLREG 4984u    /* unsigned long ctrlreg[8] */
#define XREC_CTX32_SIZE 2800u
#define XREC_CTX32_EDX 524u
#define XREC_CTX32_GDT_FRAMES 2640u /* uint32_t gdt_frames[16] */
#define XREC_CTX32_GDT_ENTS 2704u
#define XREC_CTX32_CTRLREG 2716u
#define XREC_GDT_FRAMES 16u
/* Xen's FIRST_RESERVED_GDT_ENTRY: guest GDTs end below it; 512 entries of
 * 8 bytes per frame. */
#define XREC_GDT_ENTRIES_MAX 7168u
#define XREC_GDT_ENTRIES_PER_FRAME 512u
#define XREC_PAGE_SHIFT 12u

/* shared_info: arch.max_pfn (64-bit and 32-bit guests). */
#define XREC_SHINFO64_MAX_PFN 3088u
#define XREC_SHINFO32_MAX_PFN 2316u

/* Xen's TSC_MODE_* (asm/time.h). */
#define XREC_TSC_MODE_MAX 2u

/* PAGE_DATA types of page tables (Xen's XEN_DOMCTL_PFINFO_*, >> 28). */
#define XREC_TYPE_L3 0x3u
#define XREC_TYPE_L4 0x4u
#define XREC_TYPE_PIN 0x8u

/* ---- Encoders ----------------------------------------------------------- */

void xrec_encode_pv_info(uint8_t out[XREC_PV_INFO_SIZE], uint8_t guest_width,
                         uint8_t pt_levels);
void xrec_encode_vcpu_hdr(uint8_t out[XREC_VCPU_HDR_SIZE], uint32_t vcpu_id);
void xrec_encode_p2m_hdr(uint8_t out[XREC_P2M_HDR_SIZE], uint32_t start_pfn,
                         uint32_t end_pfn);
void xrec_encode_tsc_info(uint8_t out[XREC_TSC_INFO_SIZE], uint32_t mode,
                          uint32_t khz, uint64_t nsec, uint32_t incarnation);

/* p2m frames a record covering pfns start..end needs (guest_width 4 or 8). */
uint64_t xrec_p2m_frames(uint32_t start_pfn, uint32_t end_pfn,
                         unsigned guest_width);

/*
 * Turns the machine frames of a vCPU context from xc_vcpu_getcontext (ctx,
 * len bytes, guest_width 4 or 8, pt_levels 3 or 4) into pfns, in place, as
 * libxenguest's saver does: start_info in edx (vCPU 0 of a suspended
 * guest: start_info set; otherwise edx is left alone), the GDT
 * frames in use, cr3, and for 64-bit guests cr1 (the user page table,
 * when set). m2p(opaque, mfn) gives the pfn, or UINT64_MAX for a frame the
 * domain does not own. Returns 0, or -1 with a message in err naming the
 * field (ERANGE-like faults: a bad gdt_ents, an unknown frame).
 */
typedef uint64_t xrec_m2p_fn(void *opaque, uint64_t mfn);
int xrec_vcpu_basic_to_pfns(uint8_t *ctx, size_t len, unsigned guest_width,
                            unsigned pt_levels, uint32_t vcpu_id,
                            bool start_info, xrec_m2p_fn *m2p, void *opaque,
                            char *err, size_t errlen);

/* ---- Decoders ----------------------------------------------------------- */

struct xrec_vcpu_basic {
    uint32_t vcpu_id;
    uint64_t cr3_pfn;
    uint64_t cr1_pfn;        /* valid when has_cr1 */
    bool has_cr1;
    uint64_t start_info_pfn; /* vCPU 0 only */
    uint32_t gdt_ents;
    uint32_t gdt_frames;     /* frames in use */
    uint64_t gdt_pfn[XREC_GDT_FRAMES];
};

/* Reads a BASIC blob (after the 8-byte header) of a guest_width guest.
 * Returns 0, or -1 with err (wrong size, gdt_ents out of range). */
int xrec_decode_vcpu_basic(const uint8_t *blob, size_t len,
                           unsigned guest_width, unsigned pt_levels,
                           uint32_t vcpu_id, struct xrec_vcpu_basic *out,
                           char *err, size_t errlen);

/* ---- The checker -------------------------------------------------------- */

/*
 * Stream-order state over the Xen domain-state records, for inspect and
 * restore: the PV facts seen so far (X86_PV_INFO, P2M_FRAMES, XL_CONFIG's
 * vCPU count and name) and the last page-table type each pfn had in
 * PAGE_DATA (only L3/L4 tables are remembered), so that a vCPU's cr3 can
 * be checked against it.
 */
struct xrec_state {
    uint32_t dhdr_type;   /* the stream's domain type */
    uint64_t nr_pfns;     /* pfn bound (GUEST_INFO), 0: unknown */
    bool pv_info_seen;
    uint8_t guest_width, pt_levels;
    bool p2m_seen;
    uint32_t p2m_start, p2m_end;
    uint32_t max_vcpus;   /* XREC_MAX_VCPUS, or XL_CONFIG's */
    bool config_seen;
    char config_name[128];
    uint64_t config_memkb;
    uint64_t vcpu_basic_records;

    /* pfn -> last page-table type, open addressing (key+1, 0 = empty). */
    uint64_t *pt_keys;
    uint8_t *pt_types;
    size_t pt_cap, pt_used;
    bool pt_overflow;
};

void xrec_state_init(struct xrec_state *s, uint32_t dhdr_type,
                     uint64_t nr_pfns);
void xrec_state_free(struct xrec_state *s);

/* True for the record types xrec_check() validates. */
bool xrec_checked(uint32_t type);

/*
 * A PAGE_DATA entry, in stream order: remembers pfn's type when it is a
 * top-level table (L3/L4, pinned or not) or when pfn was one before.
 */
void xrec_note_page(struct xrec_state *s, uint64_t pfn, unsigned type);

/*
 * Validates one record (type, body[0..len)) in stream order and updates s.
 * fields (may be NULL) receives a malloc'd JSON object of the decoded
 * fields, for inspect. Returns 0, or -1 with the fault in err (the caller
 * names the record and its offset).
 */
int xrec_check(struct xrec_state *s, uint32_t type, const uint8_t *body,
               uint32_t len, char *err, size_t errlen, char **fields);

#endif /* XCC_XEN_RECORDS_H */
