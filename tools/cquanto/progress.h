/*
 * progress.h - the progress line of the long-running subcommands (quantize, dequantize, report)
 * and the argument helpers they share. The line shows on a terminal only: tensors done out of
 * the total, GB/s of input and ETA, redrawn at most ten times a second on stderr; it is silent
 * when stderr is not a TTY (logs, pipes, tests).
 */
#ifndef CQ_CLI_PROGRESS_H
#define CQ_CLI_PROGRESS_H

#include "cli.h"

#include <signal.h>

typedef struct cli_progress {
    bool enabled;      /* stderr is a terminal and --quiet was not given */
    double last_draw;  /* seconds since the start at the last redraw */
    int width;         /* characters drawn last time, to clear them */
} cli_progress;

void cli_progress_init(cli_progress *p, bool quiet);
/* A cq_convert_opts.progress callback; user is the cli_progress. */
void cli_progress_cb(const cq_convert_progress *p, void *user);
/* Clears the line (call before printing anything else). */
void cli_progress_end(cli_progress *p);

/* SIGINT/SIGTERM set this flag (pass it as cq_convert_opts.cancel) instead of killing the
 * process, so the library can remove its temp output before returning. */
extern volatile int cli_cancel_flag;
void cli_install_cancel_handlers(void);

/* "--name value" or "--name=value" at argv[*i]: returns the value and advances *i, or NULL
 * (the caller reports the usage error) when argv[*i] is not that option or has no value. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name, bool *missing);

#endif
