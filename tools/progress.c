/*
 * progress.c - a logger that prints a line per pass (see progress.h).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"

struct progress_logger {
    xentoollog_logger vtable; /* first: the logger the library sees */
    xentoollog_logger *inner;
    bool show;
    bool tty;
    bool line_open; /* a \r-updated line is on screen */
};

static void pl_vmessage(xentoollog_logger *l, xentoollog_level level,
                        int errnoval, const char *context, const char *format,
                        va_list al)
{
    struct progress_logger *pl = (struct progress_logger *)l;

    if (pl->line_open) {
        fputc('\n', stderr);
        pl->line_open = false;
    }
    pl->inner->vmessage(pl->inner, level, errnoval, context, format, al);
}

static void pl_progress(xentoollog_logger *l, const char *context,
                        const char *doing_what, int percent,
                        unsigned long done, unsigned long total)
{
    struct progress_logger *pl = (struct progress_logger *)l;

    if (!pl->show)
        return;
    if (pl->tty) {
        fprintf(stderr, "\r%s: %s: %3d%% (%lu/%lu pages)\033[K",
                context ? context : "", doing_what, percent, done, total);
        pl->line_open = true;
        if (done >= total) {
            fputc('\n', stderr);
            pl->line_open = false;
        }
    } else if (done >= total) {
        fprintf(stderr, "%s: %s: %lu pages\n", context ? context : "",
                doing_what, total);
    }
    fflush(stderr);
}

static void pl_destroy(xentoollog_logger *l)
{
    struct progress_logger *pl = (struct progress_logger *)l;

    if (pl->line_open)
        fputc('\n', stderr);
    xtl_logger_destroy(pl->inner);
    free(pl);
}

xentoollog_logger *progress_logger(int verbosity, bool progress)
{
    struct progress_logger *pl = calloc(1, sizeof(*pl));

    if (!pl) {
        cli_error("out of memory");
        return NULL;
    }
    pl->inner = cli_logger(verbosity, false);
    if (!pl->inner) {
        free(pl);
        cli_error("cannot create a logger");
        return NULL;
    }
    pl->vtable.vmessage = pl_vmessage;
    pl->vtable.progress = pl_progress;
    pl->vtable.destroy = pl_destroy;
    pl->show = progress;
    pl->tty = isatty(STDERR_FILENO);
    return &pl->vtable;
}
