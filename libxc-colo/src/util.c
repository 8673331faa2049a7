/*
 * util.c - logging, errors, clock and version: the small pieces every
 * module uses.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "private.h"

const char *xcc_version(void)
{
    return XCC_VERSION_STRING;
}

const char *xcc_strerror(int err)
{
    switch (err) {
    case XCC_EBADSTREAM:
        return "malformed migration stream";
    case XCC_ETRUNCATED:
        return "migration stream ended early";
    case XCC_EDIGEST:
        return "memory digest mismatch";
    case XCC_ENOXEN:
        return "no Xen hypervisor: /dev/xen/privcmd not found";
    case XCC_EFAILOVER:
        return "checkpoint stream broke; last complete checkpoint kept";
    case XCC_EBUSY:
        return "guest dirties memory too fast to converge";
    case XCC_EBADDOMAIN:
        return "bad domain name";
    case XCC_ENOSUSPEND:
        return "the guest did not suspend itself in time (it runs on)";
    default:
        return strerror(err);
    }
}

void lib_log(xentoollog_logger *log, xentoollog_level level, int errnoval,
             const char *ctx, const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    if (!log)
        log = lib_default_logger();
    va_start(ap, fmt);
    xtl_logv(log, level, errnoval, ctx, fmt, ap);
    va_end(ap);
    errno = saved;
}

int lib_fail(xentoollog_logger *log, const char *ctx, char *msg, size_t len,
             int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    if (ctx)
        XCC_ERR(log, ctx, "%s", msg);
    errno = err;
    return -1;
}

static xentoollog_logger *default_logger;
static pthread_once_t default_logger_once = PTHREAD_ONCE_INIT;

static void default_logger_init(void)
{
    default_logger = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_WARN, XTL_STDIOSTREAM_HIDE_PROGRESS);
}

xentoollog_logger *lib_default_logger(void)
{
    pthread_once(&default_logger_once, default_logger_init);
    return default_logger;
}

uint64_t lib_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool lib_params_size_ok(xentoollog_logger *log, const char *ctx,
                        const char *what, size_t size, size_t known)
{
    if (size == known)
        return true;
    XCC_ERR(log, ctx,
            "struct %s has size %zu, but this library (%s) knows only size "
            "%zu: initialise it with %s_init() before setting its fields",
            what, size, XCC_VERSION_STRING, known, what);
    errno = EINVAL;
    return false;
}

bool lib_page_is_zero(const uint8_t *p, size_t page_size)
{
    const uint64_t *q = (const uint64_t *)p;
    const size_t words = page_size / sizeof(uint64_t);

    /* Most non-zero pages differ in their first word: exit early. */
    if (q[0])
        return false;
    for (size_t i = 0; i < words; i += 8) {
        uint64_t acc = q[i] | q[i + 1] | q[i + 2] | q[i + 3] | q[i + 4] |
                       q[i + 5] | q[i + 6] | q[i + 7];
        if (acc)
            return false;
    }
    return true;
}
