/*
 * stream.c - the migration stream: framing, writer, reader and the body
 * parsers that check every record before anything uses it.
 *
 * The layout of every record is in libxc-colo/docs/stream-format.md. The
 * reader trusts nothing (DESIGN.md, invariant 3): each length, count, pfn,
 * reserved field and padding byte is checked, and the first problem gets one
 * error naming the record, its offset and what was wrong.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <endian.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "compress.h"
#include "stream.h"
#include "rate.h"
#include "xbzrle_impl.h"

#define CTX "stream"

/* Bits 52..59 of a PAGE_DATA entry: reserved, zero on the wire. */
#define PFN_RESERVED_MASK 0x0FF0000000000000ull

/* The zero bytes that pad a record to STREAM_REC_ALIGN. */
static const uint8_t zero_pad[STREAM_REC_ALIGN];

static inline size_t rec_padded(uint64_t len)
{
    return (size_t)((len + STREAM_REC_ALIGN - 1) &
                    ~(uint64_t)(STREAM_REC_ALIGN - 1));
}

/* Unaligned-safe little-endian loads and stores. */
static inline uint32_t ld_le32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return le32toh(v);
}

static inline uint64_t ld_le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static inline void st_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof(v));
}

static inline void st_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

/* ------------------------------------------------------------------------ */
/* Types and names                                                           */
/* ------------------------------------------------------------------------ */

bool stream_pfn_type_valid(unsigned type)
{
    switch (type) {
    case XCC_PFN_NORMAL:
    case XCC_PFN_L1TAB:
    case XCC_PFN_L2TAB:
    case XCC_PFN_L3TAB:
    case XCC_PFN_L4TAB:
    case STREAM_PFN_TYPE_PINNED | XCC_PFN_L1TAB:
    case STREAM_PFN_TYPE_PINNED | XCC_PFN_L2TAB:
    case STREAM_PFN_TYPE_PINNED | XCC_PFN_L3TAB:
    case STREAM_PFN_TYPE_PINNED | XCC_PFN_L4TAB:
    case XCC_PFN_BROKEN:
    case XCC_PFN_XALLOC:
    case XCC_PFN_XTAB:
        return true;
    default:
        return false;
    }
}

bool stream_pfn_type_has_data(unsigned type)
{
    /* Pinned page tables carry data as the unpinned ones do. */
    return stream_pfn_type_valid(type) &&
           xcc_pfn_type_has_data(type & ~STREAM_PFN_TYPE_PINNED);
}

bool stream_pfn_type_sim_ok(unsigned type)
{
    /* A sim guest has RAM and holes: no page tables, nothing broken or
     * allocate-only. */
    return type == XCC_PFN_NORMAL || type == XCC_PFN_XTAB;
}

const char *stream_pfn_type_name(unsigned type)
{
    if (!stream_pfn_type_valid(type))
        return "invalid";
    if ((type & ~STREAM_PFN_TYPE_PINNED) >= XCC_PFN_L1TAB &&
        (type & ~STREAM_PFN_TYPE_PINNED) <= XCC_PFN_L4TAB)
        return type & STREAM_PFN_TYPE_PINNED ? "a pinned page table"
                                             : "a page table";
    switch (type) {
    case XCC_PFN_NORMAL:
        return "normal";
    case XCC_PFN_BROKEN:
        return "BROKEN";
    case XCC_PFN_XALLOC:
        return "XALLOC";
    default:
        return "XTAB";
    }
}

static const char *const xen_record_names[] = {
    [STREAM_REC_END] = "END",
    [STREAM_REC_PAGE_DATA] = "PAGE_DATA",
    [STREAM_REC_X86_PV_INFO] = "X86_PV_INFO",
    [STREAM_REC_X86_PV_P2M_FRAMES] = "X86_PV_P2M_FRAMES",
    [STREAM_REC_X86_PV_VCPU_BASIC] = "X86_PV_VCPU_BASIC",
    [STREAM_REC_X86_PV_VCPU_EXTENDED] = "X86_PV_VCPU_EXTENDED",
    [STREAM_REC_X86_PV_VCPU_XSAVE] = "X86_PV_VCPU_XSAVE",
    [STREAM_REC_SHARED_INFO] = "SHARED_INFO",
    [STREAM_REC_X86_TSC_INFO] = "X86_TSC_INFO",
    [STREAM_REC_HVM_CONTEXT] = "HVM_CONTEXT",
    [STREAM_REC_HVM_PARAMS] = "HVM_PARAMS",
    [STREAM_REC_TOOLSTACK] = "TOOLSTACK",
    [STREAM_REC_X86_PV_VCPU_MSRS] = "X86_PV_VCPU_MSRS",
    [STREAM_REC_VERIFY] = "VERIFY",
    [STREAM_REC_CHECKPOINT] = "CHECKPOINT",
    [STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST] = "CHECKPOINT_DIRTY_PFN_LIST",
    [STREAM_REC_STATIC_DATA_END] = "STATIC_DATA_END",
    [STREAM_REC_X86_CPUID_POLICY] = "X86_CPUID_POLICY",
    [STREAM_REC_X86_MSR_POLICY] = "X86_MSR_POLICY",
};

const char *stream_record_name(uint32_t type)
{
    if (type < XCC_ARRAY_SIZE(xen_record_names))
        return xen_record_names[type];
    switch (type) {
    case STREAM_REC_GUEST_INFO:
        return "GUEST_INFO";
    case STREAM_REC_ZERO_PAGES:
        return "ZERO_PAGES";
    case STREAM_REC_XBZRLE_PAGES:
        return "XBZRLE_PAGES";
    case STREAM_REC_DIGEST:
        return "DIGEST";
    case STREAM_REC_STATS:
        return "STATS";
    case STREAM_REC_COMPRESSED_PAGES:
        return "COMPRESSED_PAGES";
    case STREAM_REC_XL_CONFIG:
        return "XL_CONFIG";
    case STREAM_REC_CACHE_BASES:
        return "CACHE_BASES";
    default:
        return "UNKNOWN";
    }
}

bool stream_record_known(uint32_t type)
{
    return strcmp(stream_record_name(type), "UNKNOWN") != 0;
}

/* ------------------------------------------------------------------------ */
/* Writer                                                                    */
/* ------------------------------------------------------------------------ */

struct stream_writer {
    int fd;
    xentoollog_logger *log;
    uint64_t bytes;
    uint32_t page_size; /* from the domain header; 0 before it */
    struct iovec *iov;  /* header, body pieces, padding */
    size_t iov_cap;
    uint8_t *scratch; /* fixed part of a typed record's body */
    size_t scratch_cap;
    uint8_t rhdr[STREAM_RHDR_SIZE];
    /* A memory writer (fd -1): records are appended to mem, an anonymous
     * mapping that grows by mremap (no copy) and keeps its pages. */
    uint8_t *mem;
    size_t mem_len, mem_cap;
    struct rate_limit rate; /* --max-bandwidth (fd writers only) */
    stream_record_filter *filter; /* NULL: every record is written */
};

struct stream_writer *stream_writer_new(int fd, xentoollog_logger *log)
{
    struct stream_writer *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->fd = fd;
    w->log = log;
    return w;
}

/* Page-rounded capacity for need bytes (at least double the old one). */
static size_t mem_round(size_t need, size_t old)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);

    if (need < 2 * old)
        need = 2 * old;
    return (need + pg - 1) / pg * pg;
}

/* Makes room for need bytes in a memory writer's buffer. */
static int mem_grow(struct stream_writer *w, size_t need, bool populate)
{
    size_t cap = mem_round(need, w->mem_cap);
    void *p;

    if (w->mem)
        p = mremap(w->mem, w->mem_cap, cap, MREMAP_MAYMOVE);
    else
        p = mmap(NULL, cap, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0),
                 -1, 0);
    if (p == MAP_FAILED) {
        XCC_PERR(w->log, CTX, "cannot grow a memory stream to %zu bytes",
                 cap);
        return -1;
    }
    w->mem = p;
    w->mem_cap = cap;
    return 0;
}

struct stream_writer *stream_writer_new_mem(size_t reserve,
                                            xentoollog_logger *log)
{
    struct stream_writer *w = stream_writer_new(-1, log);

    if (!w)
        return NULL;
    if (reserve && mem_grow(w, reserve, true) < 0) {
        int e = errno;
        free(w);
        errno = e;
        return NULL;
    }
    return w;
}

const uint8_t *stream_writer_mem(const struct stream_writer *w, size_t *len)
{
    *len = w->mem_len;
    return w->mem;
}

void stream_writer_mem_reset(struct stream_writer *w, size_t keep)
{
    w->mem_len = 0;
    keep = mem_round(keep, 0);
    if (w->mem && w->mem_cap > keep) {
        if (keep == 0) {
            munmap(w->mem, w->mem_cap);
            w->mem = NULL;
            w->mem_cap = 0;
        } else if (mremap(w->mem, w->mem_cap, keep, 0) != MAP_FAILED) {
            w->mem_cap = keep; /* shrinking in place does not move */
        }
    }
}

/* Appends iov[0..cnt) to a memory writer's buffer. */
static int mem_write_iov(struct stream_writer *w, const struct iovec *iov,
                         size_t cnt)
{
    size_t need = w->mem_len;

    for (size_t i = 0; i < cnt; i++)
        need += iov[i].iov_len;
    if (need > w->mem_cap && mem_grow(w, need, false) < 0)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        memcpy(w->mem + w->mem_len, iov[i].iov_base, iov[i].iov_len);
        w->mem_len += iov[i].iov_len;
    }
    return 0;
}

void stream_writer_free(struct stream_writer *w)
{
    if (!w)
        return;
    if (w->mem)
        munmap(w->mem, w->mem_cap);
    free(w->iov);
    free(w->scratch);
    free(w);
}

uint64_t stream_writer_bytes(const struct stream_writer *w)
{
    return w->bytes;
}

/* Room for n body pieces plus the header and the padding. */
static int writer_reserve_iov(struct stream_writer *w, size_t n)
{
    size_t need = n + 2;
    struct iovec *iov;

    if (need <= w->iov_cap)
        return 0;
    iov = realloc(w->iov, need * sizeof(*iov));
    if (!iov) {
        XCC_PERR(w->log, CTX, "cannot allocate %zu iovecs", need);
        return -1;
    }
    w->iov = iov;
    w->iov_cap = need;
    return 0;
}

static uint8_t *writer_scratch(struct stream_writer *w, size_t len)
{
    if (len > w->scratch_cap) {
        uint8_t *p = realloc(w->scratch, len);
        if (!p) {
            XCC_PERR(w->log, CTX, "cannot allocate %zu bytes", len);
            return NULL;
        }
        w->scratch = p;
        w->scratch_cap = len;
    }
    return w->scratch;
}

/* Blocks until fd is writable; for callers that passed a non-blocking fd. */
static int wait_fd(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    for (;;) {
        int rc = poll(&pfd, 1, -1);
        if (rc >= 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/*
 * Writes iov[0..cnt) entirely, IOV_MAX pieces at a time, surviving EINTR,
 * EAGAIN and short writes. iov is consumed (advanced in place).
 */
static int write_iov_all(int fd, struct iovec *iov, size_t cnt)
{
    while (cnt) {
        int slice = cnt > IOV_MAX ? IOV_MAX : (int)cnt;
        ssize_t n;

        if (iov->iov_len == 0) {
            iov++;
            cnt--;
            continue;
        }
        n = writev(fd, iov, slice);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLOUT) < 0)
                    return -1;
                continue;
            }
            return -1;
        }
        if (n == 0) {
            errno = EIO; /* a blocking writev of > 0 bytes never returns 0 */
            return -1;
        }
        while (n > 0) {
            if ((size_t)n >= iov->iov_len) {
                n -= (ssize_t)iov->iov_len;
                iov++;
                cnt--;
            } else {
                iov->iov_base = (uint8_t *)iov->iov_base + n;
                iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

/* Writes iov[0..cnt) to the fd or, for a memory writer, the buffer. */
static int writer_out(struct stream_writer *w, struct iovec *iov, size_t cnt)
{
    if (w->fd < 0)
        return mem_write_iov(w, iov, cnt);
    if (w->rate.bytes_per_sec) {
        uint64_t n = 0;

        for (size_t i = 0; i < cnt; i++)
            n += iov[i].iov_len;
        rate_limit_take(&w->rate, n);
    }
    return write_iov_all(w->fd, iov, cnt);
}

void stream_writer_set_rate(struct stream_writer *w, uint64_t bytes_per_sec)
{
    rate_limit_init(&w->rate, bytes_per_sec);
}

uint64_t stream_writer_throttled_ns(const struct stream_writer *w)
{
    return w->rate.slept_ns;
}

void stream_writer_set_filter(struct stream_writer *w,
                              stream_record_filter *filter)
{
    w->filter = filter;
}

int stream_write_raw(struct stream_writer *w, const void *buf, size_t len,
                     const char *what)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

    if (!len)
        return 0;
    if (writer_out(w, &iov, 1) < 0) {
        XCC_PERR(w->log, CTX, "writing %s at offset %" PRIu64, what,
                 w->bytes);
        return -1;
    }
    w->bytes += len;
    return 0;
}

/*
 * Emits one record whose body pieces are already in w->iov[1..1+npieces):
 * fills in the header, appends the padding and writes it all.
 */
static int writer_emit(struct stream_writer *w, uint32_t type, size_t npieces)
{
    uint64_t len = 0;
    size_t cnt = 1 + npieces, pad;

    if (w->filter) {
        const char *why = "";
        switch (w->filter(type, &why)) {
        case STREAM_FILTER_DROP:
            return 0;
        case STREAM_FILTER_REFUSE:
            errno = EINVAL;
            XCC_ERR(w->log, CTX,
                    "%s record (type 0x%08" PRIx32 ") at offset %" PRIu64
                    ": %s", stream_record_name(type), type, w->bytes, why);
            return -1;
        default:
            break;
        }
    }

    for (size_t i = 1; i <= npieces; i++)
        len += w->iov[i].iov_len;
    if (len > STREAM_REC_LENGTH_MAX) {
        errno = E2BIG;
        XCC_ERR(w->log, CTX,
                "%s record (type 0x%08" PRIx32 "): body of %" PRIu64
                " bytes exceeds the %u-byte limit",
                stream_record_name(type), type, len, STREAM_REC_LENGTH_MAX);
        return -1;
    }
    st_le32(w->rhdr, type);
    st_le32(w->rhdr + 4, (uint32_t)len);
    w->iov[0].iov_base = w->rhdr;
    w->iov[0].iov_len = STREAM_RHDR_SIZE;
    pad = rec_padded(len) - (size_t)len;
    if (pad) {
        w->iov[cnt].iov_base = (void *)zero_pad;
        w->iov[cnt].iov_len = pad;
        cnt++;
    }
    if (writer_out(w, w->iov, cnt) < 0) {
        XCC_PERR(w->log, CTX,
                 "writing %s record (type 0x%08" PRIx32 ") at offset %" PRIu64,
                 stream_record_name(type), type, w->bytes);
        return -1;
    }
    w->bytes += STREAM_RHDR_SIZE + len + pad;
    return 0;
}

int stream_write_headers(struct stream_writer *w, uint32_t dhdr_type,
                         unsigned page_shift, uint32_t xen_major,
                         uint32_t xen_minor)
{
    uint8_t hdr[STREAM_HEADERS_SIZE] = {0};
    uint64_t marker = htobe64(STREAM_IHDR_MARKER);
    uint32_t id = htobe32(STREAM_IHDR_ID),
             version = htobe32(STREAM_IHDR_VERSION);
    struct iovec iov = {.iov_base = hdr, .iov_len = sizeof(hdr)};

    if (page_shift < STREAM_PAGE_SHIFT_MIN ||
        page_shift > STREAM_PAGE_SHIFT_MAX) {
        errno = EINVAL;
        XCC_ERR(w->log, CTX, "page shift %u outside %u..%u", page_shift,
                STREAM_PAGE_SHIFT_MIN, STREAM_PAGE_SHIFT_MAX);
        return -1;
    }
    /* Image header: big-endian; options 0 = little-endian records. */
    memcpy(hdr, &marker, 8);
    memcpy(hdr + 8, &id, 4);
    memcpy(hdr + 12, &version, 4);
    /* Domain header: little-endian. */
    st_le32(hdr + 24, dhdr_type);
    hdr[28] = (uint8_t)page_shift; /* u16 page_shift, little-endian */
    hdr[29] = 0;
    st_le32(hdr + 32, xen_major);
    st_le32(hdr + 36, xen_minor);
    if (writer_out(w, &iov, 1) < 0) {
        XCC_PERR(w->log, CTX, "writing the stream headers");
        return -1;
    }
    w->bytes += sizeof(hdr);
    w->page_size = 1u << page_shift;
    return 0;
}

int stream_write_record(struct stream_writer *w, uint32_t type,
                        const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0 || (iovcnt > 0 && !iov)) {
        errno = EINVAL;
        return -1;
    }
    if (writer_reserve_iov(w, (size_t)iovcnt) < 0)
        return -1;
    if (iovcnt)
        memcpy(w->iov + 1, iov, (size_t)iovcnt * sizeof(*iov));
    return writer_emit(w, type, (size_t)iovcnt);
}

static int empty_record(struct stream_writer *w, uint32_t type)
{
    if (writer_reserve_iov(w, 0) < 0)
        return -1;
    return writer_emit(w, type, 0);
}

int stream_write_end(struct stream_writer *w)
{
    return empty_record(w, STREAM_REC_END);
}

int stream_write_checkpoint(struct stream_writer *w)
{
    return empty_record(w, STREAM_REC_CHECKPOINT);
}

int stream_write_static_data_end(struct stream_writer *w)
{
    return empty_record(w, STREAM_REC_STATIC_DATA_END);
}

static int bad_arg(struct stream_writer *w, uint32_t type, const char *what,
                   size_t i, uint64_t v)
{
    errno = EINVAL;
    XCC_ERR(w->log, CTX, "%s record: entry %zu: %s (0x%" PRIx64 ")",
            stream_record_name(type), i, what, v);
    return -1;
}

static bool page_size_ok(size_t page_size)
{
    return page_size >= (1u << STREAM_PAGE_SHIFT_MIN) &&
           page_size <= XCC_MAX_PAGE_SIZE && !(page_size & (page_size - 1));
}

int stream_write_page_data(struct stream_writer *w, const uint64_t *pfns,
                           const uint8_t *types, size_t n,
                           const uint8_t *const *pages, size_t page_size)
{
    const uint32_t type = STREAM_REC_PAGE_DATA;
    size_t start = 0;

    if (!page_size_ok(page_size) || (w->page_size && page_size != w->page_size))
        return bad_arg(w, type, "page size differs from the header's", 0,
                       page_size);
    /* Check every entry before the first byte goes out. */
    for (size_t i = 0; i < n; i++) {
        unsigned t = types ? types[i] : XCC_PFN_NORMAL;
        if (pfns[i] >= STREAM_PFN_LIMIT)
            return bad_arg(w, type, "pfn does not fit in 52 bits", i, pfns[i]);
        if (!stream_pfn_type_valid(t))
            return bad_arg(w, type, "invalid pfn type", i, t);
        if (stream_pfn_type_has_data(t) && !pages[i])
            return bad_arg(w, type, "no page for a type with data", i, t);
    }
    while (start < n) {
        /* As many entries as fit under the length cap. */
        uint64_t len = 8;
        size_t end = start, npages = 0;
        uint8_t *body;

        while (end < n) {
            unsigned t = types ? types[end] : XCC_PFN_NORMAL;
            uint64_t more = 8 + (stream_pfn_type_has_data(t) ? page_size : 0);
            if (len + more > STREAM_REC_LENGTH_MAX)
                break;
            len += more;
            end++;
        }
        if (writer_reserve_iov(w, 1 + (end - start)) < 0)
            return -1;
        body = writer_scratch(w, 8 + 8 * (end - start));
        if (!body)
            return -1;
        st_le32(body, (uint32_t)(end - start));
        st_le32(body + 4, 0);
        for (size_t i = start; i < end; i++) {
            unsigned t = types ? types[i] : XCC_PFN_NORMAL;
            st_le64(body + 8 + 8 * (i - start),
                    pfns[i] | (uint64_t)t << STREAM_PFN_TYPE_SHIFT);
            if (stream_pfn_type_has_data(t)) {
                w->iov[2 + npages].iov_base = (void *)pages[i];
                w->iov[2 + npages].iov_len = page_size;
                npages++;
            }
        }
        w->iov[1].iov_base = body;
        w->iov[1].iov_len = 8 + 8 * (end - start);
        if (writer_emit(w, type, 1 + npages) < 0)
            return -1;
        start = end;
    }
    return 0;
}

/* Checks typed entries of ZERO_PAGES / XBZRLE_PAGES before writing. */
static int check_typed_args(struct stream_writer *w, uint32_t type,
                            const uint64_t *pfns, const uint8_t *types,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (pfns[i] >= STREAM_PFN_LIMIT)
            return bad_arg(w, type, "pfn does not fit in 52 bits", i, pfns[i]);
        if (types && !stream_pfn_type_has_data(types[i]))
            return bad_arg(w, type, "a type without data", i, types[i]);
    }
    return 0;
}

/* A typed pfn entry: PAGE_DATA's encoding. */
static uint64_t typed_entry(const uint64_t *pfns, const uint8_t *types,
                            size_t i)
{
    return pfns[i] | (uint64_t)(types ? types[i] : XCC_PFN_NORMAL)
                         << STREAM_PFN_TYPE_SHIFT;
}

int stream_write_zero_pages(struct stream_writer *w, const uint64_t *pfns,
                            size_t n)
{
    return stream_write_zero_pages_typed(w, pfns, NULL, n);
}

/* Batches of pfns with an 8-byte count header (ZERO_PAGES). */
int stream_write_zero_pages_typed(struct stream_writer *w,
                                  const uint64_t *pfns, const uint8_t *types,
                                  size_t n)
{
    const uint32_t type = STREAM_REC_ZERO_PAGES;
    const size_t per_rec = (STREAM_REC_LENGTH_MAX - 8) / 8;

    if (check_typed_args(w, type, pfns, types, n) < 0)
        return -1;
    for (size_t start = 0; start < n; start += per_rec) {
        size_t k = n - start < per_rec ? n - start : per_rec;
        uint8_t *body = writer_scratch(w, 8 + 8 * k);

        if (!body || writer_reserve_iov(w, 1) < 0)
            return -1;
        st_le32(body, (uint32_t)k);
        st_le32(body + 4, 0);
        for (size_t i = 0; i < k; i++)
            st_le64(body + 8 + 8 * i, typed_entry(pfns, types, start + i));
        w->iov[1].iov_base = body;
        w->iov[1].iov_len = 8 + 8 * k;
        if (writer_emit(w, type, 1) < 0)
            return -1;
    }
    return 0;
}

int stream_write_xbzrle_pages(struct stream_writer *w, const uint64_t *pfns,
                              const uint32_t *lens, size_t n,
                              const uint8_t *data)
{
    return stream_write_xbzrle_pages_typed(w, pfns, NULL, lens, n, data);
}

int stream_write_xbzrle_pages_typed(struct stream_writer *w,
                                    const uint64_t *pfns, const uint8_t *types,
                                    const uint32_t *lens, size_t n,
                                    const uint8_t *data)
{
    const uint32_t type = STREAM_REC_XBZRLE_PAGES;
    size_t start = 0;
    uint64_t data_off = 0;

    if (check_typed_args(w, type, pfns, types, n) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 ||
            lens[i] > (w->page_size ? w->page_size : XCC_MAX_PAGE_SIZE))
            return bad_arg(w, type, "bad encoded length", i, lens[i]);
    }
    while (start < n) {
        uint64_t dlen = 0;
        size_t end = start, k, fixed;
        uint8_t *body;

        /* 8 + 12 per entry (+4 of padding at most) + the deltas. */
        while (end < n &&
               8 + 12 * (uint64_t)(end - start + 1) + 4 + dlen + lens[end] <=
                   STREAM_REC_LENGTH_MAX) {
            dlen += lens[end];
            end++;
        }
        k = end - start;
        fixed = 8 + 8 * k + rec_padded(4 * (uint64_t)k);
        body = writer_scratch(w, fixed);
        if (!body || writer_reserve_iov(w, 2) < 0)
            return -1;
        memset(body, 0, fixed);
        st_le32(body, (uint32_t)k);
        for (size_t i = 0; i < k; i++) {
            st_le64(body + 8 + 8 * i, typed_entry(pfns, types, start + i));
            st_le32(body + 8 + 8 * k + 4 * i, lens[start + i]);
        }
        w->iov[1].iov_base = body;
        w->iov[1].iov_len = fixed;
        w->iov[2].iov_base = (void *)(data + data_off);
        w->iov[2].iov_len = (size_t)dlen;
        if (writer_emit(w, type, 2) < 0)
            return -1;
        data_off += dlen;
        start = end;
    }
    return 0;
}

int stream_write_guest_info(struct stream_writer *w, uint64_t nr_pfns,
                            uint32_t page_size, uint32_t flags)
{
    uint8_t body[STREAM_GUEST_INFO_SIZE];
    struct iovec iov = {.iov_base = body, .iov_len = sizeof(body)};

    st_le64(body, nr_pfns);
    st_le32(body + 8, page_size);
    st_le32(body + 12, flags);
    return stream_write_record(w, STREAM_REC_GUEST_INFO, &iov, 1);
}

int stream_write_digest(struct stream_writer *w, uint32_t chunk_bytes,
                        uint32_t flags, const uint8_t whole[16],
                        const uint8_t *chunks, uint32_t count)
{
    uint8_t fixed[STREAM_DIGEST_FIXED_SIZE] = {0};
    struct iovec iov[2] = {
        {.iov_base = fixed, .iov_len = sizeof(fixed)},
        {.iov_base = (void *)chunks,
         .iov_len = (size_t)count * STREAM_DIGEST_LEN},
    };

    st_le32(fixed, chunk_bytes);
    st_le32(fixed + 4, count);
    st_le32(fixed + 8, flags);
    memcpy(fixed + 16, whole, STREAM_DIGEST_LEN);
    return stream_write_record(w, STREAM_REC_DIGEST, iov, count ? 2 : 1);
}

int stream_write_dirty_pfn_list(struct stream_writer *w, const uint64_t *pfns,
                                size_t n)
{
    const uint32_t type = STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST;
    const size_t per_rec = STREAM_REC_LENGTH_MAX / 8;
    size_t start = 0;

    for (size_t i = 0; i < n; i++)
        if (pfns[i] >= STREAM_PFN_LIMIT)
            return bad_arg(w, type, "pfn does not fit in 52 bits", i, pfns[i]);
    /* An empty list is still a record: "nothing was dirty". */
    do {
        size_t k = n - start < per_rec ? n - start : per_rec;
        uint8_t *body = writer_scratch(w, 8 * k + 8);

        if (!body || writer_reserve_iov(w, 1) < 0)
            return -1;
        for (size_t i = 0; i < k; i++)
            st_le64(body + 8 * i, pfns[start + i]);
        w->iov[1].iov_base = body;
        w->iov[1].iov_len = 8 * k;
        if (writer_emit(w, type, 1) < 0)
            return -1;
        start += k;
    } while (start < n);
    return 0;
}

int stream_write_cache_bases(struct stream_writer *w, const uint64_t *dropped,
                             size_t nd, const uint64_t *kept, size_t nk)
{
    const uint32_t type = STREAM_REC_CACHE_BASES;
    const size_t per_rec =
        (STREAM_REC_LENGTH_MAX - STREAM_CACHE_BASES_FIXED_SIZE) / 8;
    size_t d = 0, k = 0;

    for (size_t i = 0; i < nd; i++)
        if (dropped[i] >= STREAM_PFN_LIMIT)
            return bad_arg(w, type, "pfn does not fit in 52 bits", i,
                           dropped[i]);
    for (size_t i = 0; i < nk; i++)
        if (kept[i] >= STREAM_PFN_LIMIT)
            return bad_arg(w, type, "pfn does not fit in 52 bits", i, kept[i]);
    /* Dropped pfns first, then kept ones, in order, over the records. */
    while (d < nd || k < nk) {
        size_t rd = nd - d < per_rec ? nd - d : per_rec;
        size_t rk = nk - k < per_rec - rd ? nk - k : per_rec - rd;
        const size_t len = STREAM_CACHE_BASES_FIXED_SIZE + 8 * (rd + rk);
        uint8_t *body = writer_scratch(w, len), *list;

        if (!body || writer_reserve_iov(w, 1) < 0)
            return -1;
        st_le32(body, (uint32_t)rd);
        st_le32(body + 4, (uint32_t)rk);
        st_le64(body + 8, 0);
        list = body + STREAM_CACHE_BASES_FIXED_SIZE;
        for (size_t i = 0; i < rd; i++)
            st_le64(list + 8 * i, dropped[d + i]);
        for (size_t i = 0; i < rk; i++)
            st_le64(list + 8 * (rd + i), kept[k + i]);
        w->iov[1].iov_base = body;
        w->iov[1].iov_len = len;
        if (writer_emit(w, type, 1) < 0)
            return -1;
        d += rd;
        k += rk;
    }
    return 0;
}

int stream_write_stats(struct stream_writer *w, const char *json, size_t len)
{
    struct iovec iov = {.iov_base = (void *)json, .iov_len = len};

    return stream_write_record(w, STREAM_REC_STATS, &iov, 1);
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

/* 64 pfns of the cache-bases sets (stream.h, "Cache bases"). */
struct base_word {
    uint64_t key;   /* pfn / 64 + 1; 0: an empty slot */
    uint64_t kept;  /* bit pfn % 64: CACHE_BASES keeps it */
    uint64_t valid; /* bit pfn % 64: it has a base (implies kept) */
};

struct stream_reader {
    int fd;
    xentoollog_logger *log;
    uint64_t offset;
    uint64_t records;
    bool headers_done;
    bool end_seen;
    bool body_open;     /* a record's head is read, its body not all */
    uint64_t body_pos;  /* body bytes read by stream_read_body_part */
    uint32_t page_size;
    uint32_t dhdr_type; /* XCC_DHDR_TYPE_* of the domain header */
    bool typed_pfns;    /* GUEST_INFO said STREAM_GUEST_INFO_TYPED_PFNS */
    stream_page_fn *page_fn; /* stream_reader_set_page_check */
    void *page_fn_opaque;
    uint8_t *buf; /* current body + padding */
    size_t buf_cap;
    /* Decoded arrays handed out by the parsers. */
    uint64_t *pfns;
    size_t pfns_cap;
    uint8_t *types;
    size_t types_cap;
    const uint8_t **ptrs;
    size_t ptrs_cap;
    uint32_t *lens;
    size_t lens_cap;
    uint64_t *set; /* open-addressing pfn set, for duplicates */
    size_t set_cap;
    size_t set_mask;   /* hash-set mode: slots - 1 */
    uint64_t *bits;    /* bitmap mode: one bit per pfn below the limit */
    size_t bits_cap;   /* words */
    bool use_bits;
    void *zdec; /* compress.c's decoder */
    char err[512];
    /* Told every PAGE_DATA entry's pfn and type (xen_records.c). */
    stream_type_hook *type_hook;
    void *type_hook_opaque;
    /* Cache bases (GUEST_INFO's STREAM_GUEST_INFO_CACHE_BASES): a hash
     * table of 64-pfn words, made only for words CACHE_BASES keeps a pfn
     * of, so a hostile guest size costs nothing (see bases_word). */
    bool bases_on;
    struct base_word *bw;
    size_t bw_mask;     /* slots - 1 */
    size_t bw_used;
    uint64_t bases;     /* pfns with a base */
};

void stream_reader_set_type_hook(struct stream_reader *r,
                                 stream_type_hook *fn, void *opaque)
{
    r->type_hook = fn;
    r->type_hook_opaque = opaque;
}

struct stream_reader *stream_reader_new(int fd, xentoollog_logger *log)
{
    struct stream_reader *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->fd = fd;
    r->log = log;
    return r;
}

void stream_reader_free(struct stream_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    free(r->pfns);
    free(r->types);
    free(r->ptrs);
    free(r->lens);
    free(r->set);
    free(r->bits);
    free(r->bw);
    compress_dec_free(r->zdec);
    free(r);
}

void **stream_reader_zdec(struct stream_reader *r)
{
    return &r->zdec;
}

uint64_t stream_reader_offset(const struct stream_reader *r)
{
    return r->offset;
}

const char *stream_reader_error(const struct stream_reader *r)
{
    return r->err;
}

/* Logs one error, keeps its text (stream_reader_error()) and sets errno. */
#define reader_fail(r, e, ...)                                                 \
    lib_fail((r)->log, CTX, (r)->err, sizeof((r)->err), (e), __VA_ARGS__)

int stream_rec_fail(struct stream_reader *r, const struct stream_record *rec,
                    int err, const char *fmt, ...)
{
    char what[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return reader_fail(r, err, LIB_REC_FMT ": %s",
                       stream_record_name(rec->type), rec->type, rec->offset,
                       what);
}

/* The short name stream.c's own record checks use for it. */
#define rec_fail stream_rec_fail

ssize_t stream_read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (wait_fd(fd, POLLIN) < 0)
                    return -1;
                continue;
            }
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static const char *dhdr_type_name(uint32_t type)
{
    switch (type) {
    case XCC_DHDR_TYPE_X86_PV:
        return "x86 PV";
    case XCC_DHDR_TYPE_X86_HVM:
        return "x86 HVM";
    case XCC_DHDR_TYPE_SIM:
        return "sim";
    default:
        return NULL;
    }
}

int stream_read_headers(struct stream_reader *r, struct stream_headers *h)
{
    return stream_read_headers_prefixed(r, NULL, 0, h);
}

void stream_reader_set_offset(struct stream_reader *r, uint64_t offset)
{
    r->offset = offset;
}

int stream_read_headers_prefixed(struct stream_reader *r,
                                 const uint8_t *prefix, size_t prefix_len,
                                 struct stream_headers *h)
{
    uint8_t hdr[STREAM_HEADERS_SIZE];
    uint64_t marker, base = r->offset;
    uint32_t id, version, dtype;
    uint16_t options, page_shift;
    ssize_t got;

    if (prefix_len > sizeof(hdr) || r->headers_done) {
        errno = EINVAL;
        return -1;
    }
    if (prefix_len)
        memcpy(hdr, prefix, prefix_len);
    got = stream_read_full(r->fd, hdr + prefix_len, sizeof(hdr) - prefix_len);
    if (got < 0)
        return reader_fail(r, errno, "reading the stream headers: %s",
                           strerror(errno));
    got += (ssize_t)prefix_len;
    if ((size_t)got < STREAM_IHDR_SIZE)
        return reader_fail(r, XCC_ETRUNCATED,
                           "image header at offset %" PRIu64 ": stream ends "
                           "after %zd of its %u bytes",
                           base, got, STREAM_IHDR_SIZE);
    memcpy(&marker, hdr, 8);
    memcpy(&id, hdr + 8, 4);
    memcpy(&version, hdr + 12, 4);
    memcpy(&options, hdr + 16, 2);
    marker = be64toh(marker);
    id = be32toh(id);
    version = be32toh(version);
    options = be16toh(options);
    if (marker != STREAM_IHDR_MARKER)
        return reader_fail(r, XCC_EBADSTREAM,
                           "image header at offset %" PRIu64 ": marker "
                           "0x%016" PRIx64 " is not 0x%016llx (not a Xen "
                           "migration stream, or a legacy one)",
                           base, marker, STREAM_IHDR_MARKER);
    if (id != STREAM_IHDR_ID)
        return reader_fail(r, XCC_EBADSTREAM,
                           "image header at offset %" PRIu64 ": id 0x%08"
                           PRIx32 " is not 0x%08x (\"XENF\")",
                           base + 8, id, STREAM_IHDR_ID);
    if (version < STREAM_IHDR_VERSION_MIN || version > STREAM_IHDR_VERSION)
        return reader_fail(r, XCC_EBADSTREAM,
                           "image header at offset %" PRIu64 ": version %"
                           PRIu32 " unsupported (%u..%u)",
                           base + 12, version, STREAM_IHDR_VERSION_MIN,
                           STREAM_IHDR_VERSION);
    if (options & STREAM_IHDR_OPT_BIG_ENDIAN)
        return reader_fail(r, XCC_EBADSTREAM,
                           "image header at offset %" PRIu64 ": big-endian "
                           "streams are not supported (options 0x%04x)",
                           base + 16, options);
    if ((size_t)got < sizeof(hdr))
        return reader_fail(r, XCC_ETRUNCATED,
                           "domain header at offset %" PRIu64 ": stream ends "
                           "after %zd of its %u bytes",
                           base + STREAM_IHDR_SIZE, got - STREAM_IHDR_SIZE,
                           STREAM_DHDR_SIZE);
    dtype = ld_le32(hdr + 24);
    page_shift = (uint16_t)(hdr[28] | hdr[29] << 8);
    if (!dhdr_type_name(dtype))
        return reader_fail(r, XCC_EBADSTREAM,
                           "domain header at offset %" PRIu64 ": unknown "
                           "domain type 0x%08" PRIx32,
                           base + STREAM_IHDR_SIZE, dtype);
    if (page_shift < STREAM_PAGE_SHIFT_MIN ||
        page_shift > STREAM_PAGE_SHIFT_MAX)
        return reader_fail(r, XCC_EBADSTREAM,
                           "domain header at offset %" PRIu64 ": page shift "
                           "%u outside %u..%u",
                           base + STREAM_IHDR_SIZE + 4, page_shift,
                           STREAM_PAGE_SHIFT_MIN, STREAM_PAGE_SHIFT_MAX);
    memset(h, 0, sizeof(*h));
    h->version = version;
    h->options = options;
    h->dhdr_type = dtype;
    h->page_shift = page_shift;
    h->page_size = 1u << page_shift;
    h->xen_major = ld_le32(hdr + 32);
    h->xen_minor = ld_le32(hdr + 36);
    r->page_size = h->page_size;
    r->dhdr_type = dtype;
    r->offset = base + sizeof(hdr);
    r->headers_done = true;
    return 0;
}

static int reader_grow(struct stream_reader *r, size_t need)
{
    size_t cap = r->buf_cap ? r->buf_cap : 4096;
    uint8_t *p;

    if (need <= r->buf_cap)
        return 0;
    while (cap < need)
        cap *= 2;
    /* Aligned so page bodies can be copied by word; freed with free(). */
    if (posix_memalign((void **)&p, 64, cap)) {
        errno = ENOMEM;
        return -1;
    }
    free(r->buf);
    r->buf = p;
    r->buf_cap = cap;
    return 0;
}

/* Records whose body has one fixed size (SIZE_MAX: variable). */
static size_t fixed_length(uint32_t type)
{
    switch (type) {
    case STREAM_REC_END:
    case STREAM_REC_CHECKPOINT:
    case STREAM_REC_VERIFY:
    case STREAM_REC_STATIC_DATA_END:
        return 0;
    case STREAM_REC_GUEST_INFO:
        return STREAM_GUEST_INFO_SIZE;
    default:
        return SIZE_MAX;
    }
}

/* Reads and checks a record header; the body is next in the fd. */
static int read_head(struct stream_reader *r, struct stream_record *rec)
{
    uint8_t rhdr[STREAM_RHDR_SIZE];
    size_t fixed;
    ssize_t got;

    if (!r->headers_done || r->end_seen || r->body_open) {
        errno = EINVAL;
        return -1;
    }
    memset(rec, 0, sizeof(*rec));
    rec->offset = r->offset;
    got = stream_read_full(r->fd, rhdr, sizeof(rhdr));
    if (got < 0)
        return reader_fail(
            r, errno, "reading the record header at offset %" PRIu64 ": %s",
            r->offset, strerror(errno));
    if (got == 0)
        return reader_fail(r, XCC_ETRUNCATED,
                           "stream ends at offset %" PRIu64 " after %" PRIu64
                           " records, without an END record",
                           r->offset, r->records);
    if ((size_t)got < sizeof(rhdr))
        return reader_fail(r, XCC_ETRUNCATED,
                           "record header at offset %" PRIu64
                           ": stream ends after %zd of its %u bytes",
                           r->offset, got, STREAM_RHDR_SIZE);
    rec->type = ld_le32(rhdr);
    rec->length = ld_le32(rhdr + 4);
    if (rec->length > STREAM_REC_LENGTH_MAX)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body length %" PRIu32 " exceeds the %u-byte limit",
                        rec->length, STREAM_REC_LENGTH_MAX);
    if ((rec->type & STREAM_REC_XCC_BLOCK_MASK) == STREAM_REC_XCC_BLOCK &&
        !(rec->type & STREAM_REC_OPTIONAL) && !stream_record_known(rec->type))
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "unknown mandatory type in xc-colo's block");
    fixed = fixed_length(rec->type);
    if (fixed != SIZE_MAX && rec->length != fixed)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body length %" PRIu32 ", expected %zu", rec->length,
                        fixed);
    r->body_open = true;
    r->body_pos = 0;
    return 0;
}

/* Checks the padding bytes pad[0..n) and closes the record. */
static int finish_record(struct stream_reader *r,
                         const struct stream_record *rec, const uint8_t *pad,
                         size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (pad[i])
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "padding byte %zu is 0x%02x, not zero", i, pad[i]);
    r->body_open = false;
    r->offset += STREAM_RHDR_SIZE + rec_padded(rec->length);
    r->records++;
    if (rec->type == STREAM_REC_END)
        r->end_seen = true;
    return 0;
}

int stream_read_record_head(struct stream_reader *r, struct stream_record *rec)
{
    return read_head(r, rec);
}

int stream_read_record_body(struct stream_reader *r,
                            struct stream_record *rec)
{
    size_t padded = rec_padded(rec->length);
    ssize_t got;

    if (!r->body_open || r->body_pos) {
        errno = EINVAL;
        return -1;
    }
    if (reader_grow(r, padded ? padded : 1) < 0)
        return rec_fail(r, rec, errno, "cannot allocate %zu bytes for the body",
                        padded);
    got = stream_read_full(r->fd, r->buf, padded);
    if (got < 0)
        return rec_fail(r, rec, errno, "reading the body: %s", strerror(errno));
    if ((size_t)got < padded)
        return rec_fail(r, rec, XCC_ETRUNCATED,
                        "stream ends after %zd of the %zu bytes of body and "
                        "padding",
                        got, padded);
    if (finish_record(r, rec, r->buf + rec->length, padded - rec->length))
        return -1;
    rec->body = r->buf;
    return 0;
}

ssize_t stream_read_body_part(struct stream_reader *r,
                              const struct stream_record *rec, uint8_t *buf,
                              size_t len)
{
    size_t left, pad;
    uint8_t padding[STREAM_REC_ALIGN];
    ssize_t got;

    if (!r->body_open) {
        errno = EINVAL;
        return -1;
    }
    left = rec->length - r->body_pos;
    if (len > left)
        len = left;
    if (len) {
        got = stream_read_full(r->fd, buf, len);
        if (got < 0)
            return rec_fail(r, rec, errno, "reading the body: %s",
                            strerror(errno));
        if ((size_t)got < len)
            return rec_fail(r, rec, XCC_ETRUNCATED,
                            "stream ends after %" PRIu64 " of the %zu bytes "
                            "of body and padding",
                            r->body_pos + (uint64_t)got,
                            rec_padded(rec->length));
        r->body_pos += len;
    }
    if (r->body_pos == rec->length) {
        pad = rec_padded(rec->length) - rec->length;
        got = pad ? stream_read_full(r->fd, padding, pad) : 0;
        if (got < 0)
            return rec_fail(r, rec, errno, "reading the padding: %s",
                            strerror(errno));
        if ((size_t)got < pad)
            return rec_fail(r, rec, XCC_ETRUNCATED,
                            "stream ends after %" PRIu64 " of the %zu bytes "
                            "of body and padding",
                            r->body_pos + (uint64_t)got,
                            rec_padded(rec->length));
        if (finish_record(r, rec, padding, pad))
            return -1;
    }
    return (ssize_t)len;
}

int stream_read_record(struct stream_reader *r, struct stream_record *rec)
{
    if (read_head(r, rec))
        return -1;
    return stream_read_record_body(r, rec);
}

int stream_read_expect_eof(struct stream_reader *r)
{
    uint8_t byte;
    ssize_t got = stream_read_full(r->fd, &byte, 1);

    if (got < 0)
        return reader_fail(r, errno,
                           "reading after END at offset %" PRIu64 ": %s",
                           r->offset, strerror(errno));
    if (got > 0)
        return reader_fail(r, XCC_EBADSTREAM,
                           "data after the END record, at offset %" PRIu64,
                           r->offset);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Body parsers                                                              */
/* ------------------------------------------------------------------------ */

static int grow_array(void **p, size_t *cap, size_t n, size_t elem)
{
    void *q;

    if (n <= *cap)
        return 0;
    q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/*
 * Duplicate detection for one record of n pfns, each below limit: a bitmap
 * of limit bits when it is no larger than a hash set of n pfns would be
 * (so a record of 16 Mi pfns of a 16 Mi-page guest costs 2 MiB, not
 * 256 MiB), else an open-addressing set (keys stored +1; 0 marks an empty
 * slot). dupset_begin() returns 0 or -1 (ENOMEM); dupset_add() 1 when pfn
 * was added before, else 0.
 */
static int dupset_begin(struct stream_reader *r, size_t n, uint64_t limit)
{
    size_t cap = 16;

    while (cap < 2 * n)
        cap *= 2;
    r->use_bits = limit / 8 <= cap * sizeof(uint64_t);
    if (r->use_bits) {
        size_t words = (size_t)((limit + 63) / 64);
        if (words > r->bits_cap) {
            uint64_t *b = realloc(r->bits, words * sizeof(*b));
            if (!b)
                return -1;
            r->bits = b;
            r->bits_cap = words;
        }
        memset(r->bits, 0, words * sizeof(*r->bits));
        return 0;
    }
    if (cap > r->set_cap) {
        uint64_t *set = realloc(r->set, cap * sizeof(*set));
        if (!set)
            return -1;
        r->set = set;
        r->set_cap = cap;
    }
    memset(r->set, 0, cap * sizeof(*r->set));
    r->set_mask = cap - 1;
    return 0;
}

static int dupset_add(struct stream_reader *r, uint64_t pfn)
{
    uint64_t key = pfn + 1;
    size_t slot;

    if (r->use_bits) {
        uint64_t bit = 1ull << (pfn % 64);
        if (r->bits[pfn / 64] & bit)
            return 1;
        r->bits[pfn / 64] |= bit;
        return 0;
    }
    /* Fibonacci hashing spreads consecutive pfns over the table. */
    slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & r->set_mask;
    while (r->set[slot]) {
        if (r->set[slot] == key)
            return 1;
        slot = (slot + 1) & r->set_mask;
    }
    r->set[slot] = key;
    return 0;
}

/*
 * Finds the first pfn that appears twice in pfns[0..n) (all below limit).
 * Returns the index of the second occurrence, n when all differ, or -1.
 */
static int64_t find_duplicate(struct stream_reader *r, const uint64_t *pfns,
                              size_t n, uint64_t limit)
{
    if (dupset_begin(r, n, limit))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (dupset_add(r, pfns[i]))
            return (int64_t)i;
    return (int64_t)n;
}

/*
 * The record fails, naming the entry, when a pfn appears twice in
 * pfns[0..n) (all below limit); what names the list ("pfn" for a record's
 * one list). 0 when all differ.
 */
static int check_no_duplicate(struct stream_reader *r,
                              const struct stream_record *rec,
                              const uint64_t *pfns, size_t n, uint64_t limit,
                              const char *what, const char *where)
{
    int64_t dup = find_duplicate(r, pfns, n, limit);

    if (dup < 0)
        return rec_fail(r, rec, ENOMEM, "cannot allocate the duplicate check");
    if ((size_t)dup < n)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "%s entry %" PRId64 ": pfn 0x%" PRIx64
                        " appears twice%s",
                        what, dup, pfns[dup], where);
    return 0;
}

static int check_wrong_type(struct stream_reader *r,
                            const struct stream_record *rec, uint32_t want)
{
    if (rec->type == want && rec->body)
        return 0;
    errno = EINVAL;
    XCC_ERR(r->log, CTX, "internal: parsing a %s record as %s",
            stream_record_name(rec->type), stream_record_name(want));
    return -1;
}

static uint64_t pfn_limit(uint64_t nr_pfns)
{
    return nr_pfns < STREAM_PFN_LIMIT ? nr_pfns : STREAM_PFN_LIMIT;
}

/* ------------------------------------------------------------------------ */
/* Cache bases (stream.h)                                                    */
/* ------------------------------------------------------------------------ */

/* Slots of a fresh table; it doubles at half load. */
#define BASES_MIN_SLOTS 64u

static size_t bases_slot(const struct stream_reader *r, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & r->bw_mask;
}

/* A fresh, empty table: the GUEST_INFO flag was seen. 0 or -1 (ENOMEM). */
static int bases_begin(struct stream_reader *r)
{
    struct base_word *t = calloc(BASES_MIN_SLOTS, sizeof(*t));

    if (!t)
        return -1;
    free(r->bw);
    r->bw = t;
    r->bw_mask = BASES_MIN_SLOTS - 1;
    r->bw_used = 0;
    r->bases = 0;
    r->bases_on = true;
    return 0;
}

static int bases_grow(struct stream_reader *r)
{
    size_t slots = 2 * (r->bw_mask + 1);
    struct base_word *old = r->bw, *t = calloc(slots, sizeof(*t));

    if (!t)
        return -1;
    r->bw = t;
    r->bw_mask = slots - 1;
    for (size_t i = 0; i < slots / 2; i++) {
        size_t j;

        if (!old[i].key)
            continue;
        for (j = bases_slot(r, old[i].key); t[j].key; j = (j + 1) & r->bw_mask)
            ;
        t[j] = old[i];
    }
    free(old);
    return 0;
}

/*
 * The word of pfn; NULL when it has none (no pfn of it was ever kept: all
 * its bits are clear) and add is false, or, with add, when memory ran out
 * (errno ENOMEM). Words are made only for kept pfns, each named by 8 bytes
 * of a CACHE_BASES record, so the table grows with the stream, never with
 * the guest size it claims.
 */
static struct base_word *bases_word(struct stream_reader *r, uint64_t pfn,
                                    bool add)
{
    const uint64_t key = pfn / 64 + 1;
    size_t i;

    if (!r->bw)
        return NULL;
    if (add && 2 * (r->bw_used + 1) > r->bw_mask + 1 && bases_grow(r) < 0) {
        errno = ENOMEM;
        return NULL;
    }
    for (i = bases_slot(r, key); r->bw[i].key; i = (i + 1) & r->bw_mask)
        if (r->bw[i].key == key)
            return &r->bw[i];
    if (!add)
        return NULL;
    r->bw[i].key = key;
    r->bw_used++;
    return &r->bw[i];
}

/* Sets pfn's base bit to has (w is its word). */
static void bases_set_valid(struct stream_reader *r, struct base_word *w,
                            uint64_t pfn, bool has)
{
    const uint64_t bit = 1ull << (pfn % 64);

    if (!!(w->valid & bit) == has)
        return;
    w->valid ^= bit;
    if (has)
        r->bases++;
    else
        r->bases--;
}

/* A page record named pfn: with its content (with_data), it is a base
 * exactly when kept; a PAGE_DATA entry without data leaves no base. */
static void bases_page(struct stream_reader *r, uint64_t pfn, bool with_data)
{
    struct base_word *w;

    if (!r->bases_on || !(w = bases_word(r, pfn, false)))
        return;
    bases_set_valid(r, w, pfn, with_data && (w->kept >> (pfn % 64) & 1));
}

bool stream_reader_bases_on(const struct stream_reader *r)
{
    return r->bases_on;
}

bool stream_reader_has_base(const struct stream_reader *r, uint64_t pfn)
{
    const struct base_word *w;

    if (!r->bases_on)
        return true;
    w = bases_word((struct stream_reader *)r, pfn, false);
    return w && (w->valid >> (pfn % 64) & 1);
}

uint64_t stream_reader_bases(const struct stream_reader *r)
{
    return r->bases;
}

/* XBZRLE_PAGES entries need a base: the first one without fails rec. */
static int bases_check_xbzrle(struct stream_reader *r,
                              const struct stream_record *rec,
                              const uint64_t *pfns, uint32_t count)
{
    for (uint32_t i = 0; r->bases_on && i < count; i++) {
        const struct base_word *w = bases_word(r, pfns[i], false);
        const uint64_t bit = 1ull << (pfns[i] % 64);

        if (w && (w->valid & bit))
            continue;
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "entry %" PRIu32 ": pfn 0x%" PRIx64 " has no XBZRLE "
                        "base on the receiver: %s",
                        i, pfns[i],
                        w && (w->kept & bit)
                            ? "CACHE_BASES keeps it, but no page of it "
                              "arrived since"
                            : "no CACHE_BASES record announced it as kept");
    }
    return 0;
}

/* One list of a CACHE_BASES body (n u64 pfns at p) into out[0..n):
 * pfns below limit, none twice. */
static int bases_list(struct stream_reader *r, const struct stream_record *rec,
                      const char *name, const uint8_t *p, uint32_t n,
                      uint64_t limit, uint64_t *out)
{

    for (uint32_t i = 0; i < n; i++) {
        out[i] = ld_le64(p + 8 * (size_t)i);
        if (out[i] >= limit)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "%s entry %" PRIu32 ": pfn 0x%" PRIx64
                            " is beyond the guest's %" PRIu64 " pages",
                            name, i, out[i], limit);
    }
    return check_no_duplicate(r, rec, out, n, limit, name, " in the list");
}

int stream_parse_cache_bases(struct stream_reader *r,
                             const struct stream_record *rec, uint64_t nr_pfns,
                             struct stream_cache_bases *out)
{
    const uint64_t limit = pfn_limit(nr_pfns);
    uint32_t nd, nk;
    uint64_t reserved, total, *pfns;

    if (check_wrong_type(r, rec, STREAM_REC_CACHE_BASES))
        return -1;
    if (!r->bases_on)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "in a stream whose GUEST_INFO lacks the cache-bases "
                        "flag 0x%x",
                        STREAM_GUEST_INFO_CACHE_BASES);
    if (rec->length < STREAM_CACHE_BASES_FIXED_SIZE)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body of %" PRIu32 " bytes is shorter than its "
                        "%u-byte header",
                        rec->length, STREAM_CACHE_BASES_FIXED_SIZE);
    nd = ld_le32(rec->body);
    nk = ld_le32(rec->body + 4);
    reserved = ld_le64(rec->body + 8);
    total = (uint64_t)nd + nk;
    if (reserved)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "reserved field is 0x%016" PRIx64 ", not zero",
                        reserved);
    if (!total)
        return rec_fail(r, rec, XCC_EBADSTREAM, "both lists are empty");
    if (rec->length != STREAM_CACHE_BASES_FIXED_SIZE + 8 * total)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body holds %" PRIu32 " bytes but %" PRIu32
                        " dropped and %" PRIu32 " kept pfns need %" PRIu64,
                        rec->length, nd, nk,
                        STREAM_CACHE_BASES_FIXED_SIZE + 8 * total);
    if (grow_array((void **)&r->pfns, &r->pfns_cap, (size_t)total,
                   sizeof(uint64_t)))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %" PRIu64 " pfns",
                        total);
    pfns = r->pfns;
    if (bases_list(r, rec, "dropped", rec->body + STREAM_CACHE_BASES_FIXED_SIZE,
                   nd, limit, pfns) ||
        bases_list(r, rec, "kept",
                   rec->body + STREAM_CACHE_BASES_FIXED_SIZE + 8 * (size_t)nd,
                   nk, limit, pfns + nd))
        return -1;
    /* Valid: applied in order, the dropped list first. */
    for (uint32_t i = 0; i < nd; i++) {
        struct base_word *w = bases_word(r, pfns[i], false);

        if (w) {
            w->kept &= ~(1ull << (pfns[i] % 64));
            bases_set_valid(r, w, pfns[i], false);
        }
    }
    for (uint32_t i = 0; i < nk; i++) {
        struct base_word *w = bases_word(r, pfns[nd + i], true);

        if (!w)
            return rec_fail(r, rec, ENOMEM, "cannot allocate the cache bases");
        w->kept |= 1ull << (pfns[nd + i] % 64);
    }
    out->n_dropped = nd;
    out->n_kept = nk;
    out->dropped = pfns;
    out->kept = pfns + nd;
    return 0;
}

/*
 * Decodes n plain pfns (u64 at body + off) into r->pfns, checking each
 * against nr_pfns and checking that none repeats.
 */
static int decode_pfns(struct stream_reader *r, const struct stream_record *rec,
                       size_t off, size_t n, uint64_t nr_pfns)
{
    uint64_t limit = pfn_limit(nr_pfns);

    if (grow_array((void **)&r->pfns, &r->pfns_cap, n ? n : 1,
                   sizeof(uint64_t)))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %zu pfns", n);
    for (size_t i = 0; i < n; i++) {
        uint64_t pfn = ld_le64(rec->body + off + 8 * i);
        if (pfn >= limit)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "pfn entry %zu: pfn 0x%" PRIx64
                            " is beyond the guest's %" PRIu64 " pages",
                            i, pfn, limit);
        r->pfns[i] = pfn;
    }
    return check_no_duplicate(r, rec, r->pfns, n, limit, "pfn", "");
}

static int check_pd_entry(struct stream_reader *r,
                          const struct stream_record *rec, uint32_t i,
                          uint64_t e, uint64_t limit, unsigned *type_out,
                          uint64_t *pfn_out);

/*
 * Decodes n typed pfn entries (ZERO_PAGES, XBZRLE_PAGES; u64 at body +
 * off) into r->pfns and r->types, with PAGE_DATA's entry checks, and
 * checks that no pfn repeats.
 */
static int decode_typed_pfns(struct stream_reader *r,
                             const struct stream_record *rec, size_t off,
                             size_t n, uint64_t nr_pfns)
{
    uint64_t limit = pfn_limit(nr_pfns);

    if (grow_array((void **)&r->pfns, &r->pfns_cap, n ? n : 1,
                   sizeof(uint64_t)) ||
        grow_array((void **)&r->types, &r->types_cap, n ? n : 1, 1))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %zu pfns", n);
    for (size_t i = 0; i < n; i++) {
        unsigned type;

        if (check_pd_entry(r, rec, (uint32_t)i,
                           ld_le64(rec->body + off + 8 * i), limit, &type,
                           &r->pfns[i]))
            return -1;
        r->types[i] = (uint8_t)type;
    }
    return check_no_duplicate(r, rec, r->pfns, n, limit, "pfn", "");
}

/* The u32 count, u32 reserved header of PAGE_DATA, ZERO_PAGES, XBZRLE:
 * head is the body's first 8 bytes (when the body has them). */
static int check_count(struct stream_reader *r, const struct stream_record *rec,
                       const uint8_t *head, uint32_t *count)
{
    uint32_t reserved;

    if (rec->length < 8)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body of %" PRIu32
                        " bytes is shorter than its 8-byte count header",
                        rec->length);
    *count = ld_le32(head);
    reserved = ld_le32(head + 4);
    if (*count == 0)
        return rec_fail(r, rec, XCC_EBADSTREAM, "count is 0");
    if (reserved)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "reserved field is 0x%08" PRIx32 ", not zero",
                        reserved);
    /* 64-bit arithmetic: count * 8 cannot overflow here. */
    if ((uint64_t)*count * 8 > rec->length - 8)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "count %" PRIu32 " needs %" PRIu64
                        " bytes of pfns but the body has %" PRIu32,
                        *count, (uint64_t)*count * 8, rec->length - 8);
    return 0;
}

static int parse_count(struct stream_reader *r, const struct stream_record *rec,
                       uint32_t *count)
{
    return check_count(r, rec, rec->body, count);
}

static int check_page_size(struct stream_reader *r,
                           const struct stream_record *rec, uint32_t page_size)
{
    if (page_size == r->page_size)
        return 0;
    return rec_fail(r, rec, XCC_EBADSTREAM,
                    "the stream's page size %" PRIu32
                    " differs from the target's %" PRIu32,
                    r->page_size, page_size);
}

/* Checks PAGE_DATA entry i (e as read) and splits it into type and pfn.
 * Shared by the parser and the streamed check. */
static int check_pd_entry(struct stream_reader *r,
                          const struct stream_record *rec, uint32_t i,
                          uint64_t e, uint64_t limit, unsigned *type_out,
                          uint64_t *pfn_out)
{
    unsigned type = (unsigned)(e >> STREAM_PFN_TYPE_SHIFT);
    uint64_t pfn = e & STREAM_PFN_MASK;

    if (e & PFN_RESERVED_MASK)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "pfn entry %" PRIu32 " (0x%016" PRIx64
                        ") has reserved bits 52..59 set",
                        i, e);
    /* ZERO_PAGES and XBZRLE_PAGES: typed in format 2, pages with data. */
    if (rec->type != STREAM_REC_PAGE_DATA && type != XCC_PFN_NORMAL) {
        if (!r->typed_pfns)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "pfn entry %" PRIu32 " (0x%016" PRIx64
                            ") has type bits 0x%x, but the stream is format 1"
                            " (its GUEST_INFO lacks the typed-pfns flag 0x%x)",
                            i, e, type, STREAM_GUEST_INFO_TYPED_PFNS);
        if (!stream_pfn_type_has_data(type))
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "pfn entry %" PRIu32 " (0x%016" PRIx64
                            ") has type 0x%x (%s), which carries no data",
                            i, e, type, stream_pfn_type_valid(type)
                                            ? stream_pfn_type_name(type)
                                            : "invalid");
    }
    if (!stream_pfn_type_valid(type))
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "pfn entry %" PRIu32 " (0x%016" PRIx64
                        ") has invalid type 0x%x",
                        i, e, type);
    if (r->dhdr_type == XCC_DHDR_TYPE_SIM && !stream_pfn_type_sim_ok(type))
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "pfn entry %" PRIu32 " (0x%016" PRIx64
                        ") has type 0x%x (%s), which a sim guest cannot "
                        "have",
                        i, e, type, stream_pfn_type_name(type));
    if (pfn >= limit)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "pfn entry %" PRIu32 ": pfn 0x%" PRIx64
                        " is beyond the guest's %" PRIu64 " pages",
                        i, pfn, limit);
    *type_out = type;
    *pfn_out = pfn;
    return 0;
}

static int parse_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           uint32_t page_size, struct stream_page_data *out);

int stream_parse_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           uint32_t page_size, struct stream_page_data *out)
{
    if (check_wrong_type(r, rec, STREAM_REC_PAGE_DATA))
        return -1;
    return parse_page_data(r, rec, nr_pfns, page_size, out);
}

int stream_parse_page_body(struct stream_reader *r,
                           const struct stream_record *rec,
                           const uint8_t *body, uint32_t length,
                           uint64_t nr_pfns, uint32_t page_size,
                           struct stream_page_data *out)
{
    struct stream_record syn = *rec;

    syn.body = body;
    syn.length = length;
    return parse_page_data(r, &syn, nr_pfns, page_size, out);
}

static int parse_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           uint32_t page_size, struct stream_page_data *out)
{
    uint64_t limit = pfn_limit(nr_pfns), expect;
    uint32_t count, ndata = 0;
    const uint8_t *page;

    if (check_page_size(r, rec, page_size) || parse_count(r, rec, &count))
        return -1;
    if (grow_array((void **)&r->pfns, &r->pfns_cap, count, sizeof(uint64_t)) ||
        grow_array((void **)&r->types, &r->types_cap, count, 1) ||
        grow_array((void **)&r->ptrs, &r->ptrs_cap, count, sizeof(void *)))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %" PRIu32 " entries",
                        count);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = ld_le64(rec->body + 8 + 8 * (size_t)i), pfn;
        unsigned type;

        if (check_pd_entry(r, rec, i, e, limit, &type, &pfn))
            return -1;
        r->pfns[i] = pfn;
        r->types[i] = (uint8_t)type;
        ndata += stream_pfn_type_has_data(type);
    }
    expect = 8 + 8 * (uint64_t)count + (uint64_t)ndata * page_size;
    if (rec->length != expect)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body holds %" PRIu32 " bytes but %" PRIu32
                        " pfns with %" PRIu32 " data pages need %" PRIu64,
                        rec->length, count, ndata, expect);
    if (check_no_duplicate(r, rec, r->pfns, count, limit, "pfn", ""))
        return -1;
    page = rec->body + 8 + 8 * (size_t)count;
    for (uint32_t i = 0; i < count; i++) {
        if (stream_pfn_type_has_data(r->types[i])) {
            r->ptrs[i] = page;
            page += page_size;
        } else {
            r->ptrs[i] = NULL;
        }
    }
    if (r->type_hook)
        for (uint32_t i = 0; i < count; i++)
            r->type_hook(r->type_hook_opaque, r->pfns[i], r->types[i]);
    for (uint32_t i = 0; r->bases_on && i < count; i++)
        bases_page(r, r->pfns[i], r->ptrs[i] != NULL);
    out->count = count;
    out->pfns = r->pfns;
    out->types = r->types;
    out->pages = r->ptrs;
    return 0;
}

int stream_parse_zero_pages(struct stream_reader *r,
                            const struct stream_record *rec, uint64_t nr_pfns,
                            struct stream_pfn_list *out)
{
    uint32_t count;

    if (check_wrong_type(r, rec, STREAM_REC_ZERO_PAGES) ||
        parse_count(r, rec, &count))
        return -1;
    if (rec->length != 8 + 8 * (uint64_t)count)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body holds %" PRIu32 " bytes but %" PRIu32
                        " pfns need %" PRIu64,
                        rec->length, count, 8 + 8 * (uint64_t)count);
    if (decode_typed_pfns(r, rec, 8, count, nr_pfns))
        return -1;
    for (uint32_t i = 0; r->bases_on && i < count; i++)
        bases_page(r, r->pfns[i], true);
    out->count = count;
    out->pfns = r->pfns;
    out->types = r->types;
    return 0;
}

int stream_parse_dirty_pfn_list(struct stream_reader *r,
                                const struct stream_record *rec,
                                uint64_t nr_pfns, struct stream_pfn_list *out)
{
    size_t count;

    if (check_wrong_type(r, rec, STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST))
        return -1;
    if (rec->length % 8)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body of %" PRIu32
                        " bytes is not a whole number of 8-byte pfns",
                        rec->length);
    count = rec->length / 8;
    if (decode_pfns(r, rec, 0, count, nr_pfns))
        return -1;
    out->count = (uint32_t)count;
    out->pfns = r->pfns;
    out->types = NULL;
    return 0;
}

int stream_parse_xbzrle_pages(struct stream_reader *r,
                              const struct stream_record *rec, uint64_t nr_pfns,
                              uint32_t page_size,
                              struct stream_xbzrle_pages *out)
{
    uint32_t count;
    uint64_t fixed, sum = 0;
    const uint8_t *data;

    if (check_wrong_type(r, rec, STREAM_REC_XBZRLE_PAGES) ||
        check_page_size(r, rec, page_size) || parse_count(r, rec, &count))
        return -1;
    fixed = 8 + 8 * (uint64_t)count + rec_padded(4 * (uint64_t)count);
    if (fixed > rec->length)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "count %" PRIu32 " needs %" PRIu64
                        " bytes of pfns and lengths but the body has %" PRIu32,
                        count, fixed, rec->length);
    if (decode_typed_pfns(r, rec, 8, count, nr_pfns))
        return -1;
    if (grow_array((void **)&r->lens, &r->lens_cap, count, sizeof(uint32_t)) ||
        grow_array((void **)&r->ptrs, &r->ptrs_cap, count, sizeof(void *)))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %" PRIu32 " entries",
                        count);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len =
            ld_le32(rec->body + 8 + 8 * (size_t)count + 4 * (size_t)i);
        if (len == 0 || len > page_size)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "entry %" PRIu32 " (pfn 0x%" PRIx64
                            "): encoded length %" PRIu32 " outside 1..%" PRIu32,
                            i, r->pfns[i], len, page_size);
        r->lens[i] = len;
        sum += len;
    }
    for (uint64_t off = 8 + 8 * (uint64_t)count + 4 * (uint64_t)count;
         off < fixed; off++)
        if (rec->body[off])
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "padding after the length array is not zero");
    if (sum != rec->length - fixed)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "encoded lengths sum to %" PRIu64 " bytes but %" PRIu64
                        " follow the length array",
                        sum, rec->length - fixed);
    data = rec->body + fixed;
    for (uint32_t i = 0; i < count; i++) {
        size_t where = 0;
        const char *fault =
            xbzrle_validate(data, r->lens[i], page_size, &where);
        if (fault)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "entry %" PRIu32 " (pfn 0x%" PRIx64
                            "): delta byte %zu: %s",
                            i, r->pfns[i], where, fault);
        r->ptrs[i] = data;
        data += r->lens[i];
    }
    if (bases_check_xbzrle(r, rec, r->pfns, count))
        return -1;
    out->count = count;
    out->pfns = r->pfns;
    out->types = r->types;
    out->lens = r->lens;
    out->deltas = r->ptrs;
    return 0;
}

int stream_parse_guest_info(struct stream_reader *r,
                            const struct stream_record *rec,
                            struct stream_guest_info *out)
{
    uint64_t nr_pfns;
    uint32_t page_size, flags;

    if (check_wrong_type(r, rec, STREAM_REC_GUEST_INFO))
        return -1;
    if (rec->length != STREAM_GUEST_INFO_SIZE)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body length %" PRIu32 ", expected %u", rec->length,
                        STREAM_GUEST_INFO_SIZE);
    nr_pfns = ld_le64(rec->body);
    page_size = ld_le32(rec->body + 8);
    flags = ld_le32(rec->body + 12);
    if (page_size != r->page_size)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "page size %" PRIu32
                        " differs from the domain header's %" PRIu32,
                        page_size, r->page_size);
    if (nr_pfns == 0 || nr_pfns > STREAM_PFN_LIMIT ||
        nr_pfns > UINT64_MAX / page_size)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "guest size of %" PRIu64 " pages is out of range",
                        nr_pfns);
    if (flags & ~STREAM_GUEST_INFO_KNOWN_FLAGS)
        return rec_fail(r, rec, XCC_EBADSTREAM, "unknown flags 0x%08" PRIx32,
                        flags & ~STREAM_GUEST_INFO_KNOWN_FLAGS);
    r->typed_pfns = !!(flags & STREAM_GUEST_INFO_TYPED_PFNS);
    r->bases_on = false;
    if ((flags & STREAM_GUEST_INFO_CACHE_BASES) && bases_begin(r) < 0)
        return rec_fail(r, rec, ENOMEM, "cannot allocate the cache bases");
    out->nr_pfns = nr_pfns;
    out->page_size = page_size;
    out->flags = flags;
    return 0;
}

int stream_parse_digest(struct stream_reader *r,
                        const struct stream_record *rec, uint64_t nr_pfns,
                        struct stream_digest *out)
{
    uint32_t chunk_bytes, count, flags, reserved;
    const uint32_t known_flags = XCC_DIGEST_EXCLUDE_PAGETABLES;

    if (check_wrong_type(r, rec, STREAM_REC_DIGEST))
        return -1;
    if (rec->length < STREAM_DIGEST_FIXED_SIZE)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body of %" PRIu32 " bytes is shorter than %u",
                        rec->length, STREAM_DIGEST_FIXED_SIZE);
    chunk_bytes = ld_le32(rec->body);
    count = ld_le32(rec->body + 4);
    flags = ld_le32(rec->body + 8);
    reserved = ld_le32(rec->body + 12);
    if (chunk_bytes != XCC_DIGEST_CHUNK)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "chunk size %" PRIu32 " is not %u (2 MiB), the only "
                        "one the format allows",
                        chunk_bytes, XCC_DIGEST_CHUNK);
    if (flags & ~known_flags)
        return rec_fail(r, rec, XCC_EBADSTREAM, "unknown flags 0x%08" PRIx32,
                        flags);
    if (reserved)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "reserved field is 0x%08" PRIx32 ", not zero",
                        reserved);
    if (rec->length !=
        STREAM_DIGEST_FIXED_SIZE + (uint64_t)count * STREAM_DIGEST_LEN)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body holds %" PRIu32 " bytes but %" PRIu32
                        " chunk digests need %" PRIu64,
                        rec->length, count,
                        STREAM_DIGEST_FIXED_SIZE +
                            (uint64_t)count * STREAM_DIGEST_LEN);
    if (nr_pfns < STREAM_PFN_LIMIT) {
        uint64_t chunk_pfns = chunk_bytes / r->page_size;
        uint64_t want = (nr_pfns + chunk_pfns - 1) / chunk_pfns;
        if (count != want)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "%" PRIu32 " chunk digests, but a guest of %" PRIu64
                            " pages has %" PRIu64 " chunks",
                            count, nr_pfns, want);
    }
    out->chunk_bytes = chunk_bytes;
    out->count = count;
    out->flags = flags;
    out->whole = rec->body + 16;
    out->chunks = rec->body + STREAM_DIGEST_FIXED_SIZE;
    return 0;
}


/* ------------------------------------------------------------------------ */
/* Record order                                                              */
/* ------------------------------------------------------------------------ */

void stream_order_init(struct stream_order *o, enum stream_order_mode mode)
{
    memset(o, 0, sizeof(*o));
    o->mode = mode;
}

int stream_order_check(struct stream_reader *r, struct stream_order *o,
                       const struct stream_record *rec)
{
    const uint64_t before = o->records;

    switch (rec->type) {
    case STREAM_REC_GUEST_INFO:
        if (before)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "only allowed as the first record, but %" PRIu64
                            " record%s came before it",
                            before, before == 1 ? "" : "s");
        break;
    case STREAM_REC_CHECKPOINT:
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
        if (o->mode == STREAM_ORDER_PLAIN)
            return rec_fail(r, rec, ENOTSUP,
                            "a checkpoint stream (restore it with "
                            "--checkpointed)");
        if (rec->type == STREAM_REC_CHECKPOINT) {
            o->checkpoints++;
            o->epoch_records = 0;
            o->epoch_colo = false;
            o->records++;
            return 0;
        }
        if (!o->checkpoints)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "before the first CHECKPOINT");
        if (!o->epoch_records)
            o->epoch_colo = true; /* COLO's epoch marker */
        break;
    case STREAM_REC_END:
        if (o->mode == STREAM_ORDER_CHECKPOINTED && !o->checkpoints)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "a checkpoint stream ends without any "
                            "CHECKPOINT: no checkpoint was made");
        if (o->checkpoints && o->epoch_records && !o->epoch_colo)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "the epoch after checkpoint %" PRIu64
                            " (%" PRIu64 " records) ends without its "
                            "CHECKPOINT",
                            o->checkpoints, o->epoch_records);
        break;
    default:
        /* Xen's records and optional ones are named and skipped; a
         * mandatory type nobody defined stops every reader. */
        if (!stream_record_known(rec->type) &&
            !(rec->type & STREAM_REC_OPTIONAL))
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "unknown mandatory record type");
        break;
    }
    o->records++;
    o->epoch_records++;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Streamed checks (inspect): the body read in pieces, never held whole     */
/* ------------------------------------------------------------------------ */

/* Bytes of body read per piece. */
#define STREAM_PIECE (256u << 10)

/* Reads exactly len more body bytes into buf (len <= the rest). */
static int body_exact(struct stream_reader *r, const struct stream_record *rec,
                      uint8_t *buf, size_t len)
{
    ssize_t got = stream_read_body_part(r, rec, buf, len);

    return got < 0 ? -1 : 0;
}

/* Reads and drops the rest of the body (page data inspect does not need). */
static int body_skip(struct stream_reader *r, const struct stream_record *rec)
{
    while (r->body_open) {
        if (stream_read_body_part(r, rec, r->buf, STREAM_PIECE) < 0)
            return -1;
    }
    return 0;
}

static int piece_buffer(struct stream_reader *r,
                        const struct stream_record *rec)
{
    if (reader_grow(r, STREAM_PIECE) < 0)
        return rec_fail(r, rec, errno, "cannot allocate %u bytes",
                        STREAM_PIECE);
    return 0;
}

void stream_reader_set_page_check(struct stream_reader *r, stream_page_fn *fn,
                                  void *opaque)
{
    r->page_fn = fn;
    r->page_fn_opaque = opaque;
}

/* Reads the ndata pages that follow the entries (r->pfns / r->types hold
 * theirs) and hands the page tables to r->page_fn. */
static int check_pages(struct stream_reader *r, const struct stream_record *rec,
                       uint32_t ndata)
{
    const uint32_t per = STREAM_PIECE / r->page_size;
    char msg[256];

    for (uint32_t i = 0; i < ndata;) {
        uint32_t k = ndata - i < per ? ndata - i : per;

        if (body_exact(r, rec, r->buf, (size_t)k * r->page_size))
            return -1;
        for (uint32_t j = 0; j < k; j++, i++) {
            if (!xcc_pfn_type_is_pagetable(r->types[i]))
                continue;
            msg[0] = 0;
            if (r->page_fn(r->page_fn_opaque, r->pfns[i], r->types[i],
                           r->buf + (size_t)j * r->page_size, msg,
                           sizeof(msg)))
                return rec_fail(r, rec, XCC_EBADSTREAM,
                                "page of pfn 0x%" PRIx64 " (type 0x%x): %s",
                                r->pfns[i], r->types[i], msg);
        }
    }
    return 0;
}

int stream_check_page_data(struct stream_reader *r,
                           const struct stream_record *rec, uint64_t nr_pfns,
                           struct stream_page_counts *out)
{
    uint64_t limit = pfn_limit(nr_pfns), expect;
    uint8_t head[8];
    uint32_t count, ndata = 0, by_type[16] = {0};

    if (rec->type != STREAM_REC_PAGE_DATA || !r->body_open || r->body_pos) {
        errno = EINVAL;
        return -1;
    }
    if (piece_buffer(r, rec) ||
        (rec->length >= 8 && body_exact(r, rec, head, 8)) ||
        check_count(r, rec, head, &count))
        return -1;
    if (r->page_fn &&
        (grow_array((void **)&r->pfns, &r->pfns_cap, count, sizeof(uint64_t)) ||
         grow_array((void **)&r->types, &r->types_cap, count, 1)))
        return rec_fail(r, rec, ENOMEM, "cannot allocate %" PRIu32 " entries",
                        count);
    if (dupset_begin(r, count, limit) < 0)
        return rec_fail(r, rec, ENOMEM, "cannot allocate the duplicate check");
    for (uint32_t i = 0; i < count;) {
        uint32_t k = count - i < STREAM_PIECE / 8 ? count - i : STREAM_PIECE / 8;

        if (body_exact(r, rec, r->buf, (size_t)k * 8))
            return -1;
        for (uint32_t j = 0; j < k; j++, i++) {
            uint64_t pfn;
            unsigned type;

            if (check_pd_entry(r, rec, i, ld_le64(r->buf + 8 * (size_t)j),
                               limit, &type, &pfn))
                return -1;
            if (dupset_add(r, pfn))
                return rec_fail(r, rec, XCC_EBADSTREAM,
                                "pfn entry %" PRIu32 ": pfn 0x%" PRIx64
                                " appears twice",
                                i, pfn);
            by_type[type]++;
            if (stream_pfn_type_has_data(type)) {
                if (r->page_fn) {
                    /* Kept for the page check below. */
                    r->pfns[ndata] = pfn;
                    r->types[ndata] = (uint8_t)type;
                }
                ndata++;
            }
            if (r->type_hook)
                r->type_hook(r->type_hook_opaque, pfn, type);
            bases_page(r, pfn, stream_pfn_type_has_data(type));
        }
    }
    expect = 8 + 8 * (uint64_t)count + (uint64_t)ndata * r->page_size;
    if (rec->length != expect)
        return rec_fail(r, rec, XCC_EBADSTREAM,
                        "body holds %" PRIu32 " bytes but %" PRIu32
                        " pfns with %" PRIu32 " data pages need %" PRIu64,
                        rec->length, count, ndata, expect);
    if (r->page_fn && check_pages(r, rec, ndata))
        return -1;
    if (body_skip(r, rec))
        return -1;
    out->count = count;
    out->with_data = ndata;
    memcpy(out->by_type, by_type, sizeof(by_type));
    return 0;
}

int stream_check_pfn_list(struct stream_reader *r,
                          const struct stream_record *rec, uint64_t nr_pfns,
                          uint32_t *count_out, uint32_t *by_type)
{
    uint64_t limit = pfn_limit(nr_pfns);
    uint8_t head[8];
    uint32_t count;

    if ((rec->type != STREAM_REC_ZERO_PAGES &&
         rec->type != STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST) ||
        !r->body_open || r->body_pos) {
        errno = EINVAL;
        return -1;
    }
    if (piece_buffer(r, rec))
        return -1;
    if (rec->type == STREAM_REC_ZERO_PAGES) {
        if ((rec->length >= 8 && body_exact(r, rec, head, 8)) ||
            check_count(r, rec, head, &count))
            return -1;
        if (rec->length != 8 + 8 * (uint64_t)count)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "body holds %" PRIu32 " bytes but %" PRIu32
                            " pfns need %" PRIu64,
                            rec->length, count, 8 + 8 * (uint64_t)count);
    } else {
        if (rec->length % 8)
            return rec_fail(r, rec, XCC_EBADSTREAM,
                            "body of %" PRIu32
                            " bytes is not a whole number of 8-byte pfns",
                            rec->length);
        count = rec->length / 8;
    }
    if (dupset_begin(r, count, limit) < 0)
        return rec_fail(r, rec, ENOMEM, "cannot allocate the duplicate check");
    for (uint32_t i = 0; i < count;) {
        uint32_t k = count - i < STREAM_PIECE / 8 ? count - i : STREAM_PIECE / 8;

        if (body_exact(r, rec, r->buf, (size_t)k * 8))
            return -1;
        for (uint32_t j = 0; j < k; j++, i++) {
            uint64_t pfn = ld_le64(r->buf + 8 * (size_t)j);
            unsigned type = XCC_PFN_NORMAL;

            if (rec->type == STREAM_REC_ZERO_PAGES) {
                if (check_pd_entry(r, rec, i, pfn, limit, &type, &pfn))
                    return -1;
                if (by_type)
                    by_type[type]++;
            }
            if (pfn >= limit)
                return rec_fail(r, rec, XCC_EBADSTREAM,
                                "pfn entry %" PRIu32 ": pfn 0x%" PRIx64
                                " is beyond the guest's %" PRIu64 " pages",
                                i, pfn, limit);
            if (dupset_add(r, pfn))
                return rec_fail(r, rec, XCC_EBADSTREAM,
                                "pfn entry %" PRIu32 ": pfn 0x%" PRIx64
                                " appears twice",
                                i, pfn);
            if (rec->type == STREAM_REC_ZERO_PAGES)
                bases_page(r, pfn, true);
        }
    }
    if (body_skip(r, rec))
        return -1;
    *count_out = count;
    return 0;
}
