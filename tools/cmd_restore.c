/* cmd_restore.c - placeholder until its module lands. */
#include "cli.h"
int cmd_restore(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
