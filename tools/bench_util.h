/*
 * bench_util.h - timing and statistics helpers shared by the `bench` parts
 * (bench_cache.c, bench_codec.c, bench_dirty.c, bench_mapcache.c,
 * bench_save.c, bench_threads.c).
 */
#ifndef XCC_TOOLS_BENCH_UTIL_H
#define XCC_TOOLS_BENCH_UTIL_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

/* Seconds on the monotonic clock (for intervals only). */
double bench_now_s(void);

/*
 * The median of v[0..n-1], n >= 1. Sorts v in place (ascending), so the
 * caller's order is lost; an even n gives the mean of the middle two.
 */
double bench_median(double *v, unsigned n);

/* One timed run of variant v (0..n-1) in rep r: 0, or -1 after a message. */
typedef int bench_run_fn(void *opaque, unsigned rep, unsigned variant);
/* What to do once rep r has run every variant: 0, or -1 after a message. */
typedef int bench_rep_fn(void *opaque, unsigned rep);

/*
 * The timing loop of the parts that compare variants (map modes, sinks,
 * thread counts): reps rounds, each calling run() once for every one of n
 * variants, rep r starting with variant r % n. So no variant always runs
 * first (on a cold cache) or after the same other (inheriting its cache),
 * and a slower stretch of a loaded machine hits them all. rep_done (may be
 * NULL) is called after each rep's variants, e.g. to compare their
 * results. Returns 0, or -1 at the first call that returned < 0.
 */
int bench_interleave(unsigned reps, unsigned n, bench_run_fn *run,
                     bench_rep_fn *rep_done, void *opaque);

/*
 * The options the bench parts share, by getopt value: 'm' (--mem SIZE),
 * 'r' (a count named reps_opt, e.g. "--reps"; not handled when reps_opt is
 * NULL) and 'j' (--json). Returns 1 when opt was one of them, 0 when it is
 * the part's own, -1 for a bad value (message printed: exit with usage).
 */
int bench_parse_common(int opt, const char *arg, const char *reps_opt,
                       uint64_t *mem, uint64_t *reps, bool *json);

/* struct option entries of what bench_parse_common parses with reps_opt
 * "--reps" (--mem, --reps, --json), and --help ('h'). */
#define BENCH_LONG_OPTIONS                                                     \
    {"mem", required_argument, NULL, 'm'},                                     \
        {"reps", required_argument, NULL, 'r'},                                \
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}

#endif
