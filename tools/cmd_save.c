/* cmd_save.c - placeholder until its module lands. */
#include "cli.h"
int cmd_save(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
int cmd_migrate(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
int cmd_checkpoint(int argc, char **argv)
{
    cli_error("%s: not built yet", argv[0]);
    return EXIT_FAIL;
}
