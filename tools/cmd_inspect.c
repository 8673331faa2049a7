/* cmd_inspect.c - placeholder until its module lands. */
#include "cli.h"
int cmd_inspect(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
