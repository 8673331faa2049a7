/*
 * save_opts.h - the options `save`, `migrate` and `checkpoint` share (the
 * save parameters), the output options `restore` shares too (-q, -v,
 * --progress, --stats-json), and writing the statistics JSON. One place
 * parses them so the commands cannot drift apart.
 */
#ifndef XCC_SAVE_OPTS_H
#define XCC_SAVE_OPTS_H

#include <getopt.h>

#include "cli.h"
#include "transport.h"

/* getopt_long ids of the shared options; a command numbers its own from
 * SAVE_OPT_END. */
enum {
    OUT_OPT_STATS_JSON = 256,
    OUT_OPT_PROGRESS,
    OUT_OPT_NO_PROGRESS,
    SAVE_OPT_CACHE_SIZE,
    SAVE_OPT_NO_MAP_CACHE,
    SAVE_OPT_XEN_COMPAT,
    SAVE_OPT_VERIFY,
    SAVE_OPT_NO_VERIFY,
    SAVE_OPT_MAX_ITERS,
    SAVE_OPT_TARGET_DIRTY,
    SAVE_OPT_MAX_DOWNTIME,
    SAVE_OPT_MIN_REMAINING,
    SAVE_OPT_ABORT_IF_BUSY,
    SAVE_OPT_MODE,
    SAVE_OPT_AUTH_KEY_FILE,
    SAVE_OPT_MAX_BANDWIDTH,
    SAVE_OPT_SUSPEND_TIMEOUT,
    SAVE_OPT_XL_CONFIG_JSON,
    SAVE_OPT_COMPRESS,
    SAVE_OPT_NO_HOT_PREDICT,
    SAVE_OPT_THREADS,
    SAVE_OPT_END,
};

/* struct option entries of the output options (-q, -v and the long ones). */
#define OUT_LONG_OPTIONS                                                       \
    {"stats-json", required_argument, NULL, OUT_OPT_STATS_JSON},               \
        {"progress", no_argument, NULL, OUT_OPT_PROGRESS},                     \
        {"no-progress", no_argument, NULL, OUT_OPT_NO_PROGRESS},               \
        {"quiet", no_argument, NULL, 'q'},                                     \
        {"verbose", no_argument, NULL, 'v'}

/* struct option entries of the save options, output options included
 * (-x, -l and -c as short options too). */
#define SAVE_LONG_OPTIONS                                                      \
    {"live", no_argument, NULL, 'l'}, {"xbzrle", no_argument, NULL, 'x'},      \
        {"cache-size", required_argument, NULL, SAVE_OPT_CACHE_SIZE},          \
        {"no-map-cache", no_argument, NULL, SAVE_OPT_NO_MAP_CACHE},            \
        {"xen-compat", no_argument, NULL, SAVE_OPT_XEN_COMPAT},                \
        {"verify", no_argument, NULL, SAVE_OPT_VERIFY},                        \
        {"no-verify", no_argument, NULL, SAVE_OPT_NO_VERIFY},                  \
        {"max-iters", required_argument, NULL, SAVE_OPT_MAX_ITERS},            \
        {"target-dirty", required_argument, NULL, SAVE_OPT_TARGET_DIRTY},      \
        {"mode", required_argument, NULL, SAVE_OPT_MODE},                      \
        {"auth-key-file", required_argument, NULL, SAVE_OPT_AUTH_KEY_FILE},    \
        {"max-bandwidth", required_argument, NULL, SAVE_OPT_MAX_BANDWIDTH},    \
        {"suspend-timeout", required_argument, NULL,                           \
         SAVE_OPT_SUSPEND_TIMEOUT},                                            \
        {"xl-config-json", required_argument, NULL, SAVE_OPT_XL_CONFIG_JSON},  \
        {"compress", required_argument, NULL, SAVE_OPT_COMPRESS},              \
        {"no-hot-predict", no_argument, NULL, SAVE_OPT_NO_HOT_PREDICT},        \
        {"threads", required_argument, NULL, SAVE_OPT_THREADS},                \
        {"continue", no_argument, NULL, 'c'}, OUT_LONG_OPTIONS

/* struct option entries of the live phase's other stop conditions
 * (checkpoint; save and migrate still parse their own). */
#define SAVE_CONVERGE_LONG_OPTIONS                                             \
    {"max-downtime", required_argument, NULL, SAVE_OPT_MAX_DOWNTIME},          \
        {"min-remaining", required_argument, NULL, SAVE_OPT_MIN_REMAINING},    \
        {"abort-if-busy", no_argument, NULL, SAVE_OPT_ABORT_IF_BUSY}

/* What the output options set. */
struct out_opts {
    int verbosity;          /* -1 quiet, 0 default, more with each -v */
    int progress;           /* -1: on when stderr is a terminal */
    const char *stats_json; /* NULL: none */
};

/* What the save options set. */
struct save_opts {
    struct xcc_save_params p;
    int verify;  /* -1: the default for the domain kind */
    bool resume; /* -c */
    struct out_opts out;
    bool mode_given;           /* --mode (only for a FILE destination) */
    const char *key_file;      /* --auth-key-file (only for tcp:) */
    struct transport_opts dest; /* how the destination opens */
    struct transport_key key;  /* read by save_opts_finish */
    const char *xl_config_path; /* --xl-config-json FILE */
    char *xl_config;           /* its text, read by save_opts_finish */
};

/* The defaults: progress decided later, default verbosity, no JSON. */
void out_opts_init(struct out_opts *o);

/* Handles one output option; true when opt was one of them. */
bool out_opts_parse(struct out_opts *o, int opt, const char *arg);

/* After the options: no progress when quiet, else on a terminal by default. */
void out_opts_finish(struct out_opts *o);

/* The library's defaults, live as given, verify and progress undecided. */
void save_opts_init(struct save_opts *o, bool live);

/*
 * Handles one save or output option: 1 when it was one, 0 when it is the
 * command's own, -1 for a bad value (message printed; exit with usage).
 */
int save_opts_parse(struct save_opts *o, int opt, const char *arg);

/*
 * After the options, with the DEST operand: rejects the combinations a Xen
 * stream cannot carry, a malformed DEST (a tcp: port outside 1..65535),
 * --mode without a FILE, --auth-key-file without tcp: or with a bad key
 * file (message printed, returns -1: bad usage), reads the key and settles
 * the output options. 0 if fine.
 */
int save_opts_finish(struct save_opts *o, const char *dest);

/*
 * Opens the domain to save and settles the parameters that depend on it
 * (--verify's default is on for sim: guests). NULL after a message.
 */
xcc_domain *save_opts_open_domain(struct save_opts *o, const char *dom,
                                  xentoollog_logger *log);

/*
 * Opens DEST for the stream, refusing a terminal on standard output,
 * retrying a refused TCP connection for timeout_ms, authenticating with
 * --auth-key-file and creating a FILE with --mode (default 0600). -1 after
 * a message.
 */
int save_opts_open_dest(const struct save_opts *o, const char *dest,
                        unsigned timeout_ms, struct transport *t);

/*
 * The end of a save, migration or checkpoint run that ended with exit
 * status rc: after a success, continues the guest when -c asked for it;
 * then closes the destination (a failed close fails the run: the stream
 * may not all have arrived) and writes --stats-json (stats_json: the
 * run's figures, as xcc_*_stats_json returns them). Messages printed;
 * returns the exit status.
 */
int save_opts_end_run(const struct save_opts *o, xcc_domain *d, const char *dom,
                      struct transport *t, const char *stats_json, int rc);

/* Parses --mode OCTAL: permission bits 0..0777. -1 after an error. */
int cli_parse_mode(const char *s, const char *what, unsigned *out);

/* Writes text to path ('-': stdout). -1 after a message naming the path. */
int cli_write_text_file(const char *path, const char *text);

/*
 * Writes the statistics JSON (NULL: formatting it failed, errno says why)
 * to path. -1 after a message.
 */
int cli_write_stats_json(const char *path, const char *json);

#endif /* XCC_SAVE_OPTS_H */
