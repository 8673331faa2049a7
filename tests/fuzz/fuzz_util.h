/*
 * fuzz_util.h - what the fuzz targets share: a memfd holding the input,
 * and a logger that keeps their (expected) errors quiet.
 */
#ifndef XCC_FUZZ_UTIL_H
#define XCC_FUZZ_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xentoollog.h>

/* A memfd holding p[0..n), read from its start. Aborts on failure. */
static inline int memfd_with(const uint8_t *p, size_t n)
{
    int fd = memfd_create("fuzz-input", 0);

    if (fd < 0)
        abort();
    if (n && write(fd, p, n) != (ssize_t)n)
        abort();
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Errors are the normal case in a fuzz target; keep its output readable. */
static inline xentoollog_logger *quiet_logger(void)
{
    static xentoollog_logger *log;

    if (!log)
        log = (xentoollog_logger *)xtl_createlogger_stdiostream(
            stderr, XTL_CRITICAL, XTL_STDIOSTREAM_HIDE_PROGRESS);
    return log;
}

#endif /* XCC_FUZZ_UTIL_H */
