/*
 * sim_fill.c - xcc_sim_fill(): writes a memory image into a sim guest that
 * has no running process (after `sim create`, before `sim resume`), for
 * benchmarks that need memory of a known kind: an idle Linux-like image
 * (compressible), pure noise, or zeros.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define CTX "sim"
#define FILL_CHUNK 256u /* pages mapped at a time */

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Machine-code-like bytes: a small vocabulary of x86 sequences. */
static const char *const code_words[] = {
    "\x55\x48\x89\xe5", "\x48\x83\xec\x20", "\xe8\x00\x00\x00\x00",
    "\x48\x8b\x45\xf8", "\x89\x45\xfc",      "\x0f\x1f\x44\x00\x00",
    "\xc9\xc3",         "\x31\xc0",          "\x48\x85\xc0\x74\x0a",
    "\x41\x54\x41\x55", "\x66\x90",          "\xcc\xcc\xcc\xcc",
};

/* Text-like bytes: words of kernel messages, paths, symbols. */
static const char *const text_words[] = {
    "kernel ", "page ", "struct ", "/usr/lib/", "_init ", "memory ",
    "device ", "error ", "0x", "cpu", "irq ", "\n", "systemd", "=",
    "/proc/", "module ", "ext4 ", "net ", "user ", "eth0 ",
};

static void fill_words(uint8_t *p, size_t len, const char *const *words,
                       size_t nwords, uint64_t s)
{
    size_t i = 0;

    while (i < len) {
        s = mix64(s);
        const char *w = words[s % nwords];
        size_t n = strlen(w);
        if (!n)
            n = 1; /* "\x00..." words: one zero byte */
        if (n > len - i)
            n = len - i;
        memcpy(p + i, w, n);
        i += n;
    }
}

/* Kernel-data-like words: pointers into a direct map, small counters,
 * flags, zeros. */
static void fill_structs(uint64_t *w, size_t n, uint64_t s)
{
    for (size_t i = 0; i < n; i++) {
        s = mix64(s);
        switch (s % 8) {
        case 0:
        case 1:
        case 2:
            w[i] = 0;
            break;
        case 3:
        case 4:
            w[i] = 0xffff888000000000ull | ((s >> 8) & 0xffffff) << 6;
            break;
        case 5:
            w[i] = (s >> 16) & 0xff;
            break;
        case 6:
            w[i] = (s >> 20) & 0xffff;
            break;
        default:
            w[i] = 0xffffffff81000000ull | ((s >> 8) & 0xfffff) << 4;
            break;
        }
    }
}

/*
 * "linux": an idle guest's memory, page by page: 40% free (zero), 20%
 * code, 15% text, 15% kernel data, 10% noise (compressed or encrypted
 * data, which no compressor shrinks).
 */
static void fill_linux(uint8_t *p, size_t psz, uint64_t s)
{
    unsigned kind = (unsigned)(s % 100);

    if (kind < 40)
        memset(p, 0, psz);
    else if (kind < 60)
        fill_words(p, psz, code_words, XCC_ARRAY_SIZE(code_words), s);
    else if (kind < 75)
        fill_words(p, psz, text_words, XCC_ARRAY_SIZE(text_words), s);
    else if (kind < 90)
        fill_structs((uint64_t *)p, psz / 8, s);
    else
        for (size_t i = 0; i < psz / 8; i++)
            ((uint64_t *)p)[i] = mix64(s + i);
}

int xcc_sim_fill(const char *name, const char *pattern, uint64_t seed,
                 xentoollog_logger *log)
{
    struct xcc_sim_info si;
    char dom[XCC_SIM_NAME_MAX + 8];
    uint64_t nr, pfns[FILL_CHUNK];
    uint32_t psz;
    int err[FILL_CHUNK], kind, rc = -1;
    xcc_domain *d;

    if (!log)
        log = lib_default_logger();
    if (!name || !pattern) {
        errno = EINVAL;
        return -1;
    }
    if (!strcmp(pattern, "zero"))
        kind = 0;
    else if (!strcmp(pattern, "linux"))
        kind = 1;
    else if (!strcmp(pattern, "random"))
        kind = 2;
    else {
        XCC_ERR(log, CTX, "fill pattern '%s': expected zero, linux or random",
                pattern);
        errno = EINVAL;
        return -1;
    }
    if (xcc_sim_get_info(name, &si, log) < 0)
        return -1;
    if (si.state == XCC_SIM_RUNNING || si.state == XCC_SIM_PAUSED) {
        XCC_ERR(log, CTX, "guest '%s' has a process (pid %" PRId64 "): fill "
                "it before `sim resume`", name, si.pid);
        errno = EBUSY;
        return -1;
    }
    snprintf(dom, sizeof(dom), "sim:%s", name);
    d = xcc_domain_open(dom, log, 0);
    if (!d)
        return -1;
    nr = d->info.nr_pfns;
    psz = d->info.page_size;
    for (uint64_t first = 0; first < nr; first += FILL_CHUNK) {
        size_t n = nr - first < FILL_CHUNK ? (size_t)(nr - first) : FILL_CHUNK;
        uint8_t *m;
        uint8_t types[FILL_CHUNK];

        for (size_t i = 0; i < n; i++)
            pfns[i] = first + i;
        if (d->ops->pfn_types(d, pfns, types, n) < 0)
            goto out;
        m = d->ops->map(d, true, pfns, err, n);
        if (!m) {
            XCC_PERR(log, CTX, "mapping pfns %#" PRIx64 ".. of '%s'", first,
                     name);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            uint8_t *p = m + i * psz;
            uint64_t s = mix64(seed ^ mix64(first + i));

            /* Holes stay zero, as the guest leaves them. */
            if (err[i] || !xcc_pfn_type_has_data(types[i]) || kind == 0)
                memset(p, 0, err[i] ? 0 : psz);
            else if (kind == 1)
                fill_linux(p, psz, s);
            else
                for (size_t j = 0; j < psz / 8; j++)
                    ((uint64_t *)p)[j] = mix64(s + j);
        }
        d->ops->unmap(d, m, n);
    }
    rc = 0;
out:
    xcc_domain_close(d);
    return rc;
}
