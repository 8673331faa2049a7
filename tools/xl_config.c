/*
 * xl_config.c - the libxl configuration of a Xen domain, as JSON, for the
 * saver's XL_CONFIG record (struct xcc_save_params.domain_config_json).
 *
 * Only the CLI links libxenlight, for this file: the library takes the
 * JSON as a string and knows nothing of libxl (README, "Libraries").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxl.h>
#include <libxl_utils.h>

#include "cli.h"
#include "xl_config.h"

bool xl_domid(const char *dom, uint32_t *domid)
{
    char *end;
    unsigned long v;

    if (!strncmp(dom, "xen:", 4))
        dom += 4;
    if (*dom < '0' || *dom > '9')
        return false;
    errno = 0;
    v = strtoul(dom, &end, 10);
    if (*end || errno || v == 0 || v >= 0x7FF0u /* DOMID_FIRST_RESERVED */)
        return false;
    *domid = (uint32_t)v;
    return true;
}

/* libxl reaps every child of the process by default, the exec: commands
 * of our transports among them (whose exit status we then lose): it may
 * reap only its own. Every ctx of the process must say so. */
static const libxl_childproc_hooks selective_reap = {
    .chldowner = libxl_sigchld_owner_libxl_always_selective_reap,
};

int xl_ctx_alloc(libxl_ctx **ctx, xentoollog_logger *log)
{
    if (libxl_ctx_alloc(ctx, LIBXL_VERSION, 0, log) != 0) {
        *ctx = NULL;
        return -1;
    }
    libxl_childproc_setmode(*ctx, &selective_reap, NULL);
    return 0;
}

char *xl_config_fetch(const char *dom, xentoollog_logger *log)
{
    libxl_domain_config cfg;
    libxl_ctx *ctx = NULL;
    uint32_t domid;
    char *json = NULL;
    int rc;

    if (!xl_domid(dom, &domid))
        return NULL;
    if (xl_ctx_alloc(&ctx, log) < 0) {
        cli_error("warning: cannot open libxl: the stream carries no "
                  "XL_CONFIG for domain %u", domid);
        return NULL;
    }
    libxl_domain_config_init(&cfg);
    rc = libxl_retrieve_domain_configuration(ctx, domid, &cfg, NULL);
    if (rc == 0)
        json = libxl_domain_config_to_json(ctx, &cfg);
    if (!json)
        cli_error("warning: no libxl configuration for domain %u (libxl "
                  "error %d): the stream carries no XL_CONFIG",
                  domid, rc);
    libxl_domain_config_dispose(&cfg);
    libxl_ctx_free(ctx);
    return json;
}

/* A libxl context for one call; NULL after a message. */
static libxl_ctx *ctx_open(xentoollog_logger *log, const char *why)
{
    libxl_ctx *ctx = NULL;

    if (xl_ctx_alloc(&ctx, log) < 0) {
        cli_error("cannot open libxl to %s", why);
        return NULL;
    }
    return ctx;
}

char *xl_domain_name(uint32_t domid, xentoollog_logger *log)
{
    libxl_ctx *ctx = ctx_open(log, "read a domain's name");
    char *name;

    if (!ctx)
        return NULL;
    name = libxl_domid_to_name(ctx, domid);
    libxl_ctx_free(ctx);
    return name;
}

int xl_domain_rename(uint32_t domid, const char *from, const char *to,
                     xentoollog_logger *log)
{
    libxl_ctx *ctx = ctx_open(log, "rename a domain");
    int rc;

    if (!ctx)
        return -1;
    rc = libxl_domain_rename(ctx, domid, from, to);
    libxl_ctx_free(ctx);
    if (rc) {
        cli_error("cannot rename domain %u from '%s' to '%s' (libxl error "
                  "%d)", domid, from, to, rc);
        return -1;
    }
    return 0;
}

int xl_domain_destroy(uint32_t domid, xentoollog_logger *log)
{
    libxl_ctx *ctx = ctx_open(log, "destroy a domain");
    int rc;

    if (!ctx)
        return -1;
    rc = libxl_domain_destroy(ctx, domid, NULL);
    libxl_ctx_free(ctx);
    if (rc) {
        cli_error("cannot destroy domain %u (libxl error %d): 'xl destroy "
                  "%u' it", domid, rc, domid);
        return -1;
    }
    return 0;
}
