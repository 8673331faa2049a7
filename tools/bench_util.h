/*
 * bench_util.h - timing and statistics helpers shared by the `bench` parts
 * (bench_codec.c, bench_dirty.c, bench_mapcache.c, bench_save.c).
 */
#ifndef XCC_TOOLS_BENCH_UTIL_H
#define XCC_TOOLS_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* Seconds on the monotonic clock (for intervals only). */
double bench_now_s(void);

/*
 * The median of v[0..n-1], n >= 1. Sorts v in place (ascending), so the
 * caller's order is lost; an even n gives the mean of the middle two.
 */
double bench_median(double *v, unsigned n);

/*
 * The options the bench parts share, by getopt value: 'm' (--mem SIZE),
 * 'r' (a count named reps_opt, e.g. "--reps"; not handled when reps_opt is
 * NULL) and 'j' (--json). Returns 1 when opt was one of them, 0 when it is
 * the part's own, -1 for a bad value (message printed: exit with usage).
 */
int bench_parse_common(int opt, const char *arg, const char *reps_opt,
                       uint64_t *mem, uint64_t *reps, bool *json);

#endif
