/*
 * xl_config.h - a Xen domain's libxl configuration (xl_config.c).
 */
#ifndef XCC_XL_CONFIG_H
#define XCC_XL_CONFIG_H

#include <xentoollog.h>

/*
 * The libxl configuration of the Xen domain named dom ("xen:ID" or ID) as
 * libxl's JSON (libxl_retrieve_domain_configuration, then
 * libxl_domain_config_to_json), malloc'd; NULL for a sim: domain, or after
 * a warning when libxl has none (a domain libxl did not create).
 */
char *xl_config_fetch(const char *dom, xentoollog_logger *log);

#endif /* XCC_XL_CONFIG_H */
