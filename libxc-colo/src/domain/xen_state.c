/*
 * xen_state.c - the domain-state records of a PV domain, gathered from Xen
 * for the saver (the state_records op), in libxenguest 4.17's format:
 *
 *   STATIC  X86_PV_INFO, X86_CPUID_POLICY, X86_MSR_POLICY
 *   START   X86_PV_P2M_FRAMES (the pfns of the guest's p2m pages)
 *   TAIL    X86_TSC_INFO, SHARED_INFO, and per online vCPU
 *           X86_PV_VCPU_BASIC (machine frames turned into pfns),
 *           X86_PV_VCPU_EXTENDED, X86_PV_VCPU_XSAVE, X86_PV_VCPU_MSRS
 *
 * EXTENDED, XSAVE, MSRS and the CPU policy have no libxenctrl wrapper in
 * 4.17: they are raw xc_domctl calls, whose structures belong to domctl
 * interface version 0x15 (XEN_DOMCTL_INTERFACE_VERSION of Xen 4.16-4.17;
 * Xen refuses a domctl of another version with EACCES). The build is tied
 * to it below; a newer Xen's headers need these calls re-checked.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "../stream.h"
#include "../xen_records.h"
#include "xen_priv.h"

/* After xenctrl.h (xen_priv.h): they use its integer types. */
#include <xen/foreign/x86_32.h>
#include <xen/foreign/x86_64.h>

_Static_assert(XEN_DOMCTL_INTERFACE_VERSION == 0x15,
               "xen_state.c's raw domctls (get_ext_vcpucontext, "
               "getvcpuextstate, get_vcpu_msrs, get_cpu_policy) are written "
               "for domctl interface 0x15 (Xen 4.17)");

/* The offsets xen_records.h names, against Xen's own structures. */
_Static_assert(sizeof(vcpu_guest_context_x86_64_t) == XREC_CTX64_SIZE, "ctx64");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, user_regs.rdx) ==
                   XREC_CTX64_RDX, "rdx");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, gdt_frames) ==
                   XREC_CTX64_GDT_FRAMES, "gdt64");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, gdt_ents) ==
                   XREC_CTX64_GDT_ENTS, "gdt_ents64");
_Static_assert(offsetof(vcpu_guest_context_x86_64_t, ctrlreg) ==
                   XREC_CTX64_CTRLREG, "ctrlreg64");
_Static_assert(sizeof(vcpu_guest_context_x86_32_t) == XREC_CTX32_SIZE, "ctx32");
_Static_assert(offsetof(vcpu_guest_context_x86_32_t, user_regs.edx) ==
                   XREC_CTX32_EDX, "edx");
_Static_assert(offsetof(vcpu_guest_context_x86_32_t, gdt_frames) ==
                   XREC_CTX32_GDT_FRAMES, "gdt32");
_Static_assert(offsetof(vcpu_guest_context_x86_32_t, gdt_ents) ==
                   XREC_CTX32_GDT_ENTS, "gdt_ents32");
_Static_assert(offsetof(vcpu_guest_context_x86_32_t, ctrlreg) ==
                   XREC_CTX32_CTRLREG, "ctrlreg32");
_Static_assert(offsetof(shared_info_x86_64_t, arch.max_pfn) ==
                   XREC_SHINFO64_MAX_PFN, "shinfo64");
_Static_assert(offsetof(shared_info_x86_32_t, arch.max_pfn) ==
                   XREC_SHINFO32_MAX_PFN, "shinfo32");
_Static_assert(sizeof(xen_cpuid_leaf_t) == XREC_CPUID_LEAF_SIZE, "leaf");
_Static_assert(sizeof(xen_msr_entry_t) == XREC_MSR_ENTRY_SIZE, "msr");
_Static_assert(sizeof(xen_domctl_vcpu_msr_t) == XREC_VCPU_MSR_SIZE, "vmsr");
_Static_assert(sizeof(struct xen_domctl_ext_vcpucontext) <= XREC_EXTENDED_MAX,
               "ext");
_Static_assert(XREC_GDT_ENTRIES_MAX == FIRST_RESERVED_GDT_ENTRY, "gdt max");

struct emitter {
    domain_record_fn *emit;
    void *opaque;
    int count;
};

static int emit2(struct emitter *e, uint32_t type, const void *a, size_t alen,
                 const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};

    if (e->emit(e->opaque, type, iov, blen ? 2 : 1) < 0)
        return -1;
    e->count++;
    return 0;
}

/* The policy in Xen's serialised form, as libxenguest sends it. */
static int emit_cpu_policy(struct xen_dom *x, struct emitter *e)
{
    struct xen_domctl dc = {.cmd = XEN_DOMCTL_get_cpu_policy,
                            .domain = x->domid};
    DECLARE_HYPERCALL_BUFFER(xen_cpuid_leaf_t, leaves);
    DECLARE_HYPERCALL_BUFFER(xen_msr_entry_t, msrs);
    uint32_t nl, nm;
    int ret = -1;

    /* Null handles: Xen answers the most it could write. */
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot size its CPU policy",
                 x->domid);
        return -1;
    }
    nl = dc.u.cpu_policy.nr_leaves;
    nm = dc.u.cpu_policy.nr_msrs;
    leaves = xc_hypercall_buffer_alloc(x->xch, leaves,
                                       (nl ? nl : 1) * sizeof(*leaves));
    msrs = xc_hypercall_buffer_alloc(x->xch, msrs, (nm ? nm : 1) * sizeof(*msrs));
    if (!leaves || !msrs) {
        XCC_PERR(x->log, "xen", "cannot allocate %u CPUID leaves and %u MSRs",
                 nl, nm);
        goto out;
    }
    set_xen_guest_handle(dc.u.cpu_policy.leaves, leaves);
    set_xen_guest_handle(dc.u.cpu_policy.msrs, msrs);
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read its CPU policy", x->domid);
        goto out;
    }
    nl = dc.u.cpu_policy.nr_leaves;
    nm = dc.u.cpu_policy.nr_msrs;
    if ((nl && emit2(e, STREAM_REC_X86_CPUID_POLICY, leaves,
                     nl * sizeof(*leaves), NULL, 0) < 0) ||
        (nm && emit2(e, STREAM_REC_X86_MSR_POLICY, msrs, nm * sizeof(*msrs),
                     NULL, 0) < 0))
        goto out;
    ret = 0;
out:
    xc_hypercall_buffer_free(x->xch, leaves);
    xc_hypercall_buffer_free(x->xch, msrs);
    return ret;
}

static uint64_t m2p_cb(void *opaque, uint64_t mfn)
{
    uint64_t pfn;

    return xen_mfn_to_pfn(opaque, mfn, &pfn) < 0 ? UINT64_MAX : pfn;
}

static int emit_p2m_frames(struct xen_dom *x, struct emitter *e)
{
    uint8_t hdr[XREC_P2M_HDR_SIZE];
    uint64_t *pfns, frames;
    uint32_t end;
    int ret = -1;

    if (!x->p2m_leaves || !x->nr_pfns || x->nr_pfns > UINT32_MAX) {
        XCC_ERR(x->log, "xen", "dom%u: no p2m frame list (p2m from the %s): "
                "X86_PV_P2M_FRAMES cannot be sent", x->domid, x->p2m_source);
        errno = ENOENT;
        return -1;
    }
    end = (uint32_t)(x->nr_pfns - 1);
    frames = xrec_p2m_frames(0, end, x->guest_width);
    if (frames != x->nr_p2m_leaves) {
        XCC_ERR(x->log, "xen", "dom%u: %" PRIu64 " p2m frames for %" PRIu64
                " pfns, expected %" PRIu64, x->domid, x->nr_p2m_leaves,
                x->nr_pfns, frames);
        errno = EINVAL;
        return -1;
    }
    pfns = malloc(frames * sizeof(*pfns));
    if (!pfns)
        return -1;
    for (uint64_t i = 0; i < frames; i++) {
        if (xen_mfn_to_pfn(x, x->p2m_leaves[i], &pfns[i]) < 0) {
            XCC_ERR(x->log, "xen", "dom%u: p2m frame %" PRIu64 " (mfn %#"
                    PRIx64 ") is not the domain's", x->domid, i,
                    x->p2m_leaves[i]);
            errno = ERANGE;
            goto out;
        }
    }
    xrec_encode_p2m_hdr(hdr, 0, end);
    ret = emit2(e, STREAM_REC_X86_PV_P2M_FRAMES, hdr, sizeof(hdr), pfns,
                frames * sizeof(*pfns));
out:
    free(pfns);
    return ret;
}

static int emit_shared_info(struct xen_dom *x, const xc_domaininfo_t *di,
                            struct emitter *e)
{
    xen_pfn_t frame = (xen_pfn_t)di->shared_info_frame;
    int err = 0, ret;
    void *p = xenforeignmemory_map(x->fmem, x->domid, PROT_READ, 1, &frame,
                                   &err);

    if (!p || err) {
        XCC_PERR(x->log, "xen", "dom%u: cannot map shared_info (mfn %#lx)",
                 x->domid, (unsigned long)frame);
        if (p)
            xenforeignmemory_unmap(x->fmem, p, 1);
        return -1;
    }
    ret = emit2(e, STREAM_REC_SHARED_INFO, p, XREC_PAGE_SIZE, NULL, 0);
    xenforeignmemory_unmap(x->fmem, p, 1);
    return ret;
}

static int emit_vcpu_basic(struct xen_dom *x, uint32_t id, bool suspended,
                           struct emitter *e)
{
    vcpu_guest_context_any_t ctx;
    uint8_t hdr[XREC_VCPU_HDR_SIZE];
    size_t len = x->guest_width == 8 ? sizeof(ctx.x64) : sizeof(ctx.x32);
    unsigned levels = x->guest_width == 8 ? 4 : 3;
    char err[256];

    if (xc_vcpu_getcontext(x->xch, x->domid, id, &ctx) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read vCPU %u's context",
                 x->domid, id);
        return -1;
    }
    /*
     * Only a suspended guest has put its start_info frame in vCPU 0's edx
     * (the suspend hypercall's argument). A merely paused one has not: its
     * edx is sent as 0, and libxenguest will not restore such a stream.
     */
    if (id == 0 && !suspended) {
        if (!x->said_not_suspended)
            XCC_WARN(x->log, "xen", "dom%u is paused, not suspended: vCPU 0 "
                     "carries no start_info frame (sent as 0); libxenguest "
                     "will not restore this stream", x->domid);
        x->said_not_suspended = true;
        if (x->guest_width == 8)
            ctx.x64.user_regs.rdx = 0;
        else
            ctx.x32.user_regs.edx = 0;
    }
    if (xrec_vcpu_basic_to_pfns((uint8_t *)&ctx, len, x->guest_width, levels,
                                id, suspended, m2p_cb, x, err,
                                sizeof(err)) < 0) {
        XCC_ERR(x->log, "xen", "dom%u: %s", x->domid, err);
        errno = ERANGE;
        return -1;
    }
    xrec_encode_vcpu_hdr(hdr, id);
    return emit2(e, STREAM_REC_X86_PV_VCPU_BASIC, hdr, sizeof(hdr), &ctx, len);
}

static int emit_vcpu_extended(struct xen_dom *x, uint32_t id,
                              struct emitter *e)
{
    struct xen_domctl dc = {.cmd = XEN_DOMCTL_get_ext_vcpucontext,
                            .domain = x->domid};
    uint8_t hdr[XREC_VCPU_HDR_SIZE];

    dc.u.ext_vcpucontext.vcpu = id;
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read vCPU %u's extended "
                 "context", x->domid, id);
        return -1;
    }
    if (dc.u.ext_vcpucontext.size == 0)
        return 0; /* nothing to send, as libxenguest */
    if (dc.u.ext_vcpucontext.size > sizeof(dc.u.ext_vcpucontext)) {
        XCC_ERR(x->log, "xen", "dom%u: vCPU %u's extended context of %u "
                "bytes is larger than this build knows", x->domid, id,
                dc.u.ext_vcpucontext.size);
        errno = EINVAL;
        return -1;
    }
    xrec_encode_vcpu_hdr(hdr, id);
    /* The blob is the domctl's struct itself, up to its size. */
    return emit2(e, STREAM_REC_X86_PV_VCPU_EXTENDED, hdr, sizeof(hdr),
                 &dc.u.ext_vcpucontext, dc.u.ext_vcpucontext.size);
}

static int emit_vcpu_xsave(struct xen_dom *x, uint32_t id, struct emitter *e)
{
    struct xen_domctl dc = {.cmd = XEN_DOMCTL_getvcpuextstate,
                            .domain = x->domid};
    DECLARE_HYPERCALL_BUFFER(uint8_t, buf);
    uint8_t hdr[XREC_VCPU_HDR_SIZE];
    int ret = -1;

    dc.u.vcpuextstate.vcpu = id;
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot size vCPU %u's xsave state",
                 x->domid, id);
        return -1;
    }
    if (!dc.u.vcpuextstate.xfeature_mask || !dc.u.vcpuextstate.size)
        return 0; /* no xsave on this host */
    buf = xc_hypercall_buffer_alloc(x->xch, buf, dc.u.vcpuextstate.size);
    if (!buf) {
        XCC_PERR(x->log, "xen", "cannot allocate %" PRIu64 " bytes of xsave "
                 "state", (uint64_t)dc.u.vcpuextstate.size);
        return -1;
    }
    set_xen_guest_handle(dc.u.vcpuextstate.buffer, buf);
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read vCPU %u's xsave state",
                 x->domid, id);
        goto out;
    }
    ret = 0;
    if (dc.u.vcpuextstate.size) {
        xrec_encode_vcpu_hdr(hdr, id);
        ret = emit2(e, STREAM_REC_X86_PV_VCPU_XSAVE, hdr, sizeof(hdr), buf,
                    dc.u.vcpuextstate.size);
    }
out:
    xc_hypercall_buffer_free(x->xch, buf);
    return ret;
}

static int emit_vcpu_msrs(struct xen_dom *x, uint32_t id, struct emitter *e)
{
    struct xen_domctl dc = {.cmd = XEN_DOMCTL_get_vcpu_msrs,
                            .domain = x->domid};
    DECLARE_HYPERCALL_BUFFER(xen_domctl_vcpu_msr_t, buf);
    uint8_t hdr[XREC_VCPU_HDR_SIZE];
    uint32_t n;
    int ret = -1;

    dc.u.vcpu_msrs.vcpu = id;
    /* A null handle asks for the most Xen could write. */
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot size vCPU %u's MSRs",
                 x->domid, id);
        return -1;
    }
    n = dc.u.vcpu_msrs.msr_count;
    if (!n)
        return 0;
    buf = xc_hypercall_buffer_alloc(x->xch, buf, n * sizeof(*buf));
    if (!buf) {
        XCC_PERR(x->log, "xen", "cannot allocate %u MSR entries", n);
        return -1;
    }
    set_xen_guest_handle(dc.u.vcpu_msrs.msrs, buf);
    if (xc_domctl(x->xch, &dc) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read vCPU %u's MSRs",
                 x->domid, id);
        goto out;
    }
    n = dc.u.vcpu_msrs.msr_count;
    ret = 0;
    if (n) {
        xrec_encode_vcpu_hdr(hdr, id);
        ret = emit2(e, STREAM_REC_X86_PV_VCPU_MSRS, hdr, sizeof(hdr), buf,
                    n * sizeof(*buf));
    }
out:
    xc_hypercall_buffer_free(x->xch, buf);
    return ret;
}

static bool is_suspended(const xc_domaininfo_t *di)
{
    return (di->flags & XEN_DOMINF_shutdown) &&
           ((di->flags >> XEN_DOMINF_shutdownshift) &
            XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend;
}

static int emit_tail(struct xen_dom *x, struct emitter *e)
{
    uint8_t tsc[XREC_TSC_INFO_SIZE];
    uint32_t mode, khz, incarnation;
    uint64_t nsec;
    xc_domaininfo_t di;
    bool suspended;

    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid) {
        XCC_ERR(x->log, "xen", "dom%u has gone away", x->domid);
        errno = ENOENT;
        return -1;
    }
    suspended = is_suspended(&di);
    if (xc_domain_get_tsc_info(x->xch, x->domid, &mode, &nsec, &khz,
                               &incarnation) < 0) {
        XCC_PERR(x->log, "xen", "dom%u: cannot read its TSC information",
                 x->domid);
        return -1;
    }
    xrec_encode_tsc_info(tsc, mode, khz, nsec, incarnation);
    if (emit2(e, STREAM_REC_X86_TSC_INFO, tsc, sizeof(tsc), NULL, 0) < 0 ||
        emit_shared_info(x, &di, e) < 0)
        return -1;
    for (uint32_t id = 0; id <= di.max_vcpu_id; id++) {
        xc_vcpuinfo_t vi;

        if (xc_vcpu_getinfo(x->xch, x->domid, id, &vi) < 0) {
            XCC_PERR(x->log, "xen", "dom%u: cannot read vCPU %u's state",
                     x->domid, id);
            return -1;
        }
        if (!vi.online)
            continue;
        if (emit_vcpu_basic(x, id, suspended, e) < 0 ||
            emit_vcpu_extended(x, id, e) < 0 || emit_vcpu_xsave(x, id, e) < 0 ||
            emit_vcpu_msrs(x, id, e) < 0)
            return -1;
    }
    return 0;
}

int xen_state_records(xcc_domain *d, enum domain_state_phase phase,
                      domain_record_fn *emit, void *opaque)
{
    struct xen_dom *x = d->priv;
    struct emitter e = {emit, opaque, 0};
    int rc = 0;

    /* HVM/PVH state (HVM_CONTEXT, HVM_PARAMS) is not gathered yet. */
    if (!x->pv)
        return 0;
    switch (phase) {
    case DOMAIN_STATE_STATIC: {
        uint8_t info[XREC_PV_INFO_SIZE];

        xrec_encode_pv_info(info, (uint8_t)x->guest_width,
                            x->guest_width == 8 ? 4 : 3);
        rc = emit2(&e, STREAM_REC_X86_PV_INFO, info, sizeof(info), NULL, 0);
        if (rc == 0)
            rc = emit_cpu_policy(x, &e);
        break;
    }
    case DOMAIN_STATE_START:
        rc = emit_p2m_frames(x, &e);
        break;
    case DOMAIN_STATE_TAIL:
        rc = emit_tail(x, &e);
        break;
    }
    return rc < 0 ? -1 : e.count;
}
