/*
 * bench_util.c - timing and statistics helpers shared by the `bench` parts.
 */
#include <stdlib.h>
#include <time.h>

#include "bench_util.h"
#include "cli.h"

double bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort order for doubles; the benchmarks' figures are never NaN. */
static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double bench_median(double *v, unsigned n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int bench_interleave(unsigned reps, unsigned n, bench_run_fn *run,
                     bench_rep_fn *rep_done, void *opaque)
{
    for (unsigned rep = 0; rep < reps; rep++) {
        for (unsigned i = 0; i < n; i++)
            if (run(opaque, rep, (rep + i) % n) < 0)
                return -1;
        if (rep_done && rep_done(opaque, rep) < 0)
            return -1;
    }
    return 0;
}

int bench_parse_common(int opt, const char *arg, const char *reps_opt,
                       uint64_t *mem, uint64_t *reps, bool *json)
{
    switch (opt) {
    case 'm': return cli_parse_size(arg, "--mem", mem) < 0 ? -1 : 1;
    case 'r':
        if (!reps_opt)
            return 0;
        return cli_parse_u64(arg, reps_opt, reps) < 0 ? -1 : 1;
    case 'j': *json = true; return 1;
    default: return 0;
    }
}
