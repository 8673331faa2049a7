/*
 * cli.h - what the xc-colo subcommands share: option helpers, the logger,
 * exit codes. The library knows nothing of this file.
 */
#ifndef XCC_CLI_H
#define XCC_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <inttypes.h>
#include <stdio.h>

#include "xccolo.h"

/* Exit codes, documented in xc-colo(1). */
#define EXIT_OK 0
#define EXIT_FAIL 1     /* an error; the message says what */
#define EXIT_USAGE 2    /* bad command line */
#define EXIT_FAILOVER 3 /* checkpoint stream broke; last checkpoint kept */

/* Each subcommand: argv[0] is the subcommand's name. Returns an exit code. */
int cmd_save(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_checkpoint(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_digest(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_sim(int argc, char **argv);

/* `bench` parts, one file each. */
int bench_codec(int argc, char **argv);
int bench_mapcache(int argc, char **argv);
int bench_dirty(int argc, char **argv);
int bench_save(int argc, char **argv);
int bench_cache(int argc, char **argv);
int bench_threads(int argc, char **argv);

/* Prints "xc-colo: " and the message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Parses SIZE with an optional K, M, G or T suffix (powers of 1024, an
 * optional trailing "iB" or "B" accepted). Returns 0, or -1 after printing
 * an error naming `what`.
 */
int cli_parse_size(const char *s, const char *what, uint64_t *out);

/*
 * Parses a link rate into bytes per second: a number with an optional k, M,
 * G or T (powers of 1000), in bits per second ("1G": 1 Gbit/s), or in bytes
 * with a B suffix ("125MB"). Returns 0, or -1 after an error naming what.
 */
int cli_parse_rate(const char *s, const char *what, uint64_t *out);

/* Parses an unsigned integer; returns 0, or -1 after an error naming what. */
int cli_parse_u64(const char *s, const char *what, uint64_t *out);

/* Writes all of buf to fd (a file, a pipe or a socket: a socket's peer
 * that went away is EPIPE, never SIGPIPE); -1 with errno set. */
int cli_write_all(int fd, const void *buf, size_t len);

/* "PFN[-PFN][,...]" (each number decimal, or hex with 0x; a range names
 * the pfns between its ends, either way round) into a malloc'd array of
 * every pfn named; at most CLI_PFN_LIST_MAX. -1 after an error message
 * naming what. */
#define CLI_PFN_LIST_MAX (1u << 20)
int cli_parse_pfn_list(const char *s, const char *what, uint64_t **out,
                       size_t *n);

/*
 * The logger for a subcommand: stderr, at WARN (-q: ERROR, -v: INFO,
 * -vv: DEBUG), showing progress when `progress` is set.
 */
xentoollog_logger *cli_logger(int verbosity, bool progress);

/* Formats 32 lower-case hex digits and a NUL from 16 digest bytes. */
void cli_hex_digest(const uint8_t digest[16], char out[33]);

/*
 * Prints a domain digest as `digest` and `sim digest` do: the whole digest
 * as 32 hex digits on a line, then "INDEX HEX" for each of the n chunk
 * digests in chunks (16 bytes each; none when chunks is NULL).
 */
void cli_print_digest(const uint8_t digest[16], const uint8_t *chunks,
                      int64_t n);

#endif /* XCC_CLI_H */
