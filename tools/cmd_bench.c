/*
 * cmd_bench.c - `xc-colo bench codec|mapcache`.
 */
#include <string.h>

#include "cli.h"

static void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench codec [--json] [--mib N] [--path P]\n"
            "       xc-colo bench mapcache [--json] [--mem SIZE]\n"
            "       xc-colo bench dirty [--json] [--mem SIZE]\n"
            "       xc-colo bench save [--json] [--mem SIZE]\n"
            "       xc-colo bench cache [--json] [--mem SIZE] [--reps N]\n"
            "       xc-colo bench threads [--json] [--mem SIZE] [--reps N]\n"
            "                             [--threads LIST]\n\n"
            "codec     XBZRLE encode/decode throughput against memcmp/memcpy\n"
            "mapcache  page reads through the map cache against per-batch\n"
            "          mapping and a persistent mapping\n"
            "dirty     sim dirty-tracking harvest rate: PAGEMAP_SCAN vs bitmap\n"
            "cache     XBZRLE cache miss + insert per page against memcpy\n"
            "save      non-live save of a paused sim guest into tmpfs and a pipe\n"
            "          (and /dev/null, labelled) vs memcpy\n"
            "threads   paused XBZRLE passes (checkpoints) per --threads count, "
            "vs 1\n"
            "'xc-colo bench PART --help' lists a part's options.\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        bench_usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        bench_usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "codec"))
        return bench_codec(argc - 1, argv + 1);
    if (!strcmp(argv[1], "mapcache"))
        return bench_mapcache(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dirty"))
        return bench_dirty(argc - 1, argv + 1);
    if (!strcmp(argv[1], "save"))
        return bench_save(argc - 1, argv + 1);
    if (!strcmp(argv[1], "cache"))
        return bench_cache(argc - 1, argv + 1);
    if (!strcmp(argv[1], "threads"))
        return bench_threads(argc - 1, argv + 1);
    cli_error("bench: unknown part '%s' (codec, mapcache, dirty, save, "
              "cache, threads)",
              argv[1]);
    return EXIT_USAGE;
}
