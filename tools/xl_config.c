/*
 * xl_config.c - the libxl configuration of a Xen domain, as JSON, for the
 * saver's XL_CONFIG record (struct xcc_save_params.domain_config_json).
 *
 * Only the CLI links libxenlight, for this file: the library takes the
 * JSON as a string and knows nothing of libxl (README, "Libraries").
 */
#include <stdlib.h>
#include <string.h>

#include <libxl.h>

#include "cli.h"
#include "xl_config.h"

/* "xen:ID" or a bare ID -> domid; false for anything else (sim:...). */
static bool xen_domid(const char *dom, uint32_t *domid)
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

char *xl_config_fetch(const char *dom, xentoollog_logger *log)
{
    libxl_domain_config cfg;
    libxl_ctx *ctx = NULL;
    uint32_t domid;
    char *json = NULL;
    int rc;

    if (!xen_domid(dom, &domid))
        return NULL;
    if (libxl_ctx_alloc(&ctx, LIBXL_VERSION, 0, log) != 0) {
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
