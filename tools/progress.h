/*
 * progress.h - the logger save/restore/migrate use: messages go to the
 * usual stderr logger, progress reports become one line per pass.
 *
 * xentoollog's stdio logger shows progress only at its DETAIL/PROGRESS
 * levels, which would also let every INFO message through; this wrapper
 * shows progress at any verbosity when asked to, and nothing else changes.
 */
#ifndef XCC_PROGRESS_H
#define XCC_PROGRESS_H

#include <stdbool.h>

#include "cli.h"

/*
 * A logger that forwards messages to cli_logger(verbosity, false) and, when
 * progress is set, prints each progress report on stderr: updated in place
 * on a terminal, and as one line when a pass reaches 100%. Destroy it with
 * xtl_logger_destroy(). NULL on allocation failure (message printed).
 */
xentoollog_logger *progress_logger(int verbosity, bool progress);

#endif /* XCC_PROGRESS_H */
