/*
 * memfd_ram.h - the RAM behind the tests' fake guests (test_content_dirty.c,
 * test_xen_state_save.c): a memfd, mapped whole and shared for the test to
 * read and write, and mapped page by page for the saver and the restorer,
 * as a foreign mapping is, so that every mapping sees the same bytes.
 */
#ifndef XCC_TESTS_MEMFD_RAM_H
#define XCC_TESTS_MEMFD_RAM_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

struct memfd_ram {
    int fd;
    uint8_t *mem; /* all of it */
    uint64_t nr_pfns;
    size_t page;
};

/* nr_pfns pages of page bytes, named name; byte i set to
 * fill + i * step + i / page (each page differs from the next). */
static void memfd_ram_open(struct memfd_ram *r, const char *name,
                           uint64_t nr_pfns, size_t page, uint8_t fill,
                           unsigned step)
{
    const size_t len = (size_t)nr_pfns * page;

    r->nr_pfns = nr_pfns;
    r->page = page;
    r->fd = memfd_create(name, 0);
    cr_assert(r->fd >= 0);
    cr_assert(ftruncate(r->fd, (off_t)len) == 0);
    r->mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    cr_assert(r->mem != MAP_FAILED);
    for (size_t i = 0; i < len; i++)
        r->mem[i] = (uint8_t)(fill + i * step + i / page);
}

/* The ops table's map: pfns[0..n) side by side, read-only or writable;
 * NULL when one is beyond the RAM or cannot be mapped. */
static void *memfd_ram_map(const struct memfd_ram *r, bool writable,
                           const uint64_t *pfns, int *err, size_t n)
{
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    uint8_t *base = mmap(NULL, n * r->page, PROT_NONE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (base == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        err[i] = 0;
        if (pfns[i] >= r->nr_pfns ||
            mmap(base + i * r->page, r->page, prot, MAP_SHARED | MAP_FIXED,
                 r->fd, (off_t)(pfns[i] * r->page)) == MAP_FAILED) {
            munmap(base, n * r->page);
            return NULL;
        }
    }
    return base;
}

static int memfd_ram_unmap(const struct memfd_ram *r, void *addr, size_t n)
{
    return munmap(addr, n * r->page);
}

static void memfd_ram_close(struct memfd_ram *r)
{
    munmap(r->mem, (size_t)r->nr_pfns * r->page);
    close(r->fd);
}

#endif /* XCC_TESTS_MEMFD_RAM_H */
