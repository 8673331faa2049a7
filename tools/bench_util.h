/*
 * bench_util.h - timing and statistics helpers shared by the `bench` parts
 * (bench_codec.c, bench_dirty.c, bench_mapcache.c, bench_save.c).
 */
#ifndef XCC_TOOLS_BENCH_UTIL_H
#define XCC_TOOLS_BENCH_UTIL_H

/* Seconds on the monotonic clock (for intervals only). */
double bench_now_s(void);

/*
 * The median of v[0..n-1], n >= 1. Sorts v in place (ascending), so the
 * caller's order is lost; an even n gives the mean of the middle two.
 */
double bench_median(double *v, unsigned n);

#endif
