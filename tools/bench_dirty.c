/* bench_dirty.c - placeholder until the sim backend lands. */
#include "cli.h"
int bench_dirty(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
