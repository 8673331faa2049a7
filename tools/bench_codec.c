/* bench_codec.c - placeholder until its module lands. */
#include "cli.h"
int bench_codec(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
