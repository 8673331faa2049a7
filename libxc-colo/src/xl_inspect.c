/*
 * xl_inspect.c - xcc_image_inspect(): an xl save image's header and libxl
 * records around the libxc stream that stream_inspect.c validates, or a
 * bare libxc stream.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <string.h>

#include "stream.h"
#include "xl_format.h"

#define CTX "inspect"

struct glue {
    xcc_inspect_xl_fn *cb;
    void *opaque;
};

/* Hands the reader's header and records to the public callback. */
static int forward(void *opaque, const struct xl_reader *x,
                   const struct xl_record *rec)
{
    struct glue *g = opaque;
    struct xcc_inspect_xl xl = {
        .mandatory_flags = x->hdr.mandatory_flags,
        .optional_flags = x->hdr.optional_flags,
        .optional_data_len = x->hdr.optional_data_len,
        .config_len = x->hdr.config_len,
        .config = x->hdr.config,
        .libxl_version = LIBXL_VERSION,
        .libxl_options = x->libxl_options,
    };
    struct xcc_inspect_libxl_record r;

    if (!g->cb)
        return 0;
    if (!rec)
        return g->cb(g->opaque, &xl, NULL);
    memset(&r, 0, sizeof(r));
    r.offset = rec->offset;
    r.type = rec->type;
    r.length = rec->length;
    r.name = rec->name;
    r.emulator = rec->has_emulator;
    r.emulator_id = rec->emulator_id;
    r.emulator_index = rec->emulator_index;
    return g->cb(g->opaque, &xl, &r);
}

int xcc_image_inspect(int fd, xentoollog_logger *log, unsigned flags,
                      xcc_inspect_xl_fn *xl_cb, xcc_inspect_fn *cb,
                      void *opaque, struct xcc_inspect_totals *totals)
{
    struct xcc_inspect_totals local;
    struct xcc_inspect_totals *t = totals ? totals : &local;
    struct glue g = {.cb = xl_cb, .opaque = opaque};
    uint8_t prefix[XL_MAGIC_LEN];
    struct xl_reader x;
    size_t prefix_len;
    int rc = -1, saved;

    memset(t, 0, sizeof(*t));
    if (!log)
        log = lib_default_logger();
    if (flags) {
        snprintf(t->error, sizeof(t->error), "unknown flags 0x%x", flags);
        XCC_ERR(log, CTX, "%s", t->error);
        errno = EINVAL;
        return -1;
    }
    xl_reader_init(&x, fd, log);
    if (xl_read_prologue(&x, prefix, &prefix_len, forward, &g)) {
        saved = errno;
        snprintf(t->error, sizeof(t->error), "%s", x.err);
        t->bytes = x.offset;
        goto out;
    }
    if (stream_inspect_at(fd, log, prefix, prefix_len, x.offset, x.present,
                          cb, opaque, t)) {
        saved = errno;
        goto out;
    }
    if (x.present &&
        xl_read_epilogue(&x, t->bytes, forward, &g)) {
        saved = errno;
        snprintf(t->error, sizeof(t->error), "%s", x.err);
        goto out;
    }
    if (x.present)
        t->bytes = x.offset;
    rc = 0;
    saved = 0;
out:
    xl_reader_release(&x);
    errno = saved;
    return rc;
}
