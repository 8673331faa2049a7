/*
 * xen_receive.h - `xc-colo restore FILE|- xen:`: a stream into a new Xen
 * domain that runs, created and finished by Xen's own code (libxl's
 * libxl_domain_create_restore reading a libxl v2 stream from a pipe that
 * xc-colo feeds).
 *
 * Only the CLI links libxenlight; the library knows nothing of libxl
 * (README, "Libraries").
 */
#ifndef XCC_XEN_RECEIVE_H
#define XCC_XEN_RECEIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "xccolo.h"

/* The target operand that asks for a new domain: "xen:" with no id. */
#define XEN_RECEIVE_NEW_DOMAIN "xen:"

struct xen_receive_opts {
    const char *config_file; /* --config: overrides the image's; NULL: none */
    const char *name;        /* --name: the new domain's; NULL: the config's */
    bool paused;             /* -p: leave the domain paused */
    bool no_wait;            /* -e: return once it runs */
    bool verify;             /* check DIGEST records (--no-verify: off) */
    bool checkpointed;       /* --checkpointed: a Remus secondary */
    const char *stats_json;  /* --stats-json FILE; NULL: none */
    int verbosity;           /* -1 quiet, 0 default, more with -v */
};

/*
 * When fd is a socket (a migration: restore --listen, or the stdin of
 * migrate's exec: command), the sender is told how it ended, one line:
 * "running DOMID" or "paused DOMID" once the domain is built, "failed"
 * otherwise; the sender destroys its source only after "running"/"paused".
 *
 * Reads the stream on fd (desc names it in messages), creates the domain
 * with libxl and unpauses it (unless o->paused). Without o->no_wait, then
 * stays until the domain shuts down or dies. A failed create leaves no
 * domain behind: the half-made one is destroyed, and the message says so.
 * Returns an exit code (EXIT_OK or EXIT_FAIL) after its messages.
 */
int xen_receive(int fd, const char *desc, const struct xen_receive_opts *o,
                xentoollog_logger *log);

/* The command: opens src (FILE, '-', fd:N, exec:CMD), or accepts a sender
 * on listen (tcp:..., topts) when it is not NULL, makes the logger and runs
 * xen_receive. Returns an exit code. */
struct transport_opts;
int xen_receive_cmd(const char *src, const char *listen,
                    const struct transport_opts *topts,
                    const struct xen_receive_opts *o, bool progress);

#endif /* XCC_XEN_RECEIVE_H */
