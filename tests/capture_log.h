/*
 * capture_log.h - a logger that counts the errors it is given and keeps the
 * last one, so that a test can check "one error, naming the record"
 * (test_stream.c, test_compress.c). Pass LOG to the library; reset with
 * cap_reset() before the call under test.
 */
#ifndef XCC_TESTS_CAPTURE_LOG_H
#define XCC_TESTS_CAPTURE_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include <xentoollog.h>

struct capture_logger {
    xentoollog_logger vtable;
    int errors;
    char last[1024];
};

static void capture_vmessage(xentoollog_logger *l, xentoollog_level level,
                             int errnoval, const char *context,
                             const char *format, va_list al)
{
    struct capture_logger *c = (struct capture_logger *)l;

    if (level >= XTL_ERROR) {
        c->errors++;
        vsnprintf(c->last, sizeof(c->last), format, al);
    }
}

static void capture_destroy(xentoollog_logger *l)
{
}

static struct capture_logger cap = {
    .vtable = {.vmessage = capture_vmessage, .destroy = capture_destroy},
};
#define LOG (&cap.vtable)

static inline void cap_reset(void)
{
    cap.errors = 0;
    cap.last[0] = 0;
}

#endif /* XCC_TESTS_CAPTURE_LOG_H */
