/*
 * xl_config.h - a Xen domain's libxl configuration (xl_config.c).
 */
#ifndef XCC_XL_CONFIG_H
#define XCC_XL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <xentoollog.h>

/* "xen:ID" or a bare ID -> *domid; false for anything else (sim:...). */
bool xl_domid(const char *dom, uint32_t *domid);

/* libxl_ctx_alloc, with libxl reaping only its own children (the CLI
 * waits for its exec: commands itself). 0, or -1 (*ctx NULL). */
struct libxl__ctx;
int xl_ctx_alloc(struct libxl__ctx **ctx, xentoollog_logger *log);

/* libxl's name of domid, malloc'ed; NULL after a message. */
char *xl_domain_name(uint32_t domid, xentoollog_logger *log);

/* libxl_domain_rename / libxl_domain_destroy: 0, or -1 after a message. */
int xl_domain_rename(uint32_t domid, const char *from, const char *to,
                     xentoollog_logger *log);
int xl_domain_destroy(uint32_t domid, xentoollog_logger *log);

/*
 * The libxl configuration of the Xen domain named dom ("xen:ID" or ID) as
 * libxl's JSON (libxl_retrieve_domain_configuration, then
 * libxl_domain_config_to_json), malloc'd; NULL for a sim: domain, or after
 * a warning when libxl has none (a domain libxl did not create).
 */
char *xl_config_fetch(const char *dom, xentoollog_logger *log);

#endif /* XCC_XL_CONFIG_H */
