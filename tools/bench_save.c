/* bench_save.c - placeholder until the save loop lands. */
#include "cli.h"
int bench_save(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
