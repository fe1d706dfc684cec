/*
 * progress.h - the progress line of the long-running subcommands (quantize, dequantize, report)
 * and the argument helpers they share. The line shows on a terminal only: tensors done out of
 * the total, GB/s of input and ETA, redrawn at most ten times a second on stderr; it is silent
 * when stderr is not a TTY (logs, pipes, tests).
 */
#ifndef CQ_CLI_PROGRESS_H
#define CQ_CLI_PROGRESS_H

#include "cli.h"

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

/* The wiring every checkpoint command (quantize, dequantize, report) shares: its --threads and
 * --quiet options, the progress line, notices, and SIGINT/SIGTERM/SIGHUP turned into a cancel
 * request so that the library removes its temp output before returning. */
typedef struct cli_run {
    const char *cmd;
    void (*usage)(FILE *f); /* the command's --help text */
    long threads; /* 0: the library's default */
    bool quiet;
    cli_progress progress;
} cli_run;

enum { CLI_OPT_OTHER = -1, CLI_OPT_TAKEN = -2, CLI_ARGS_END = -3 };
/* argv[*i] as one of the shared options (-h/--help, --threads, --quiet): CLI_OPT_OTHER when it is
 * none of them, CLI_OPT_TAKEN when taken (advancing *i past a value), otherwise the status the
 * command ends with: 0 after printing r->usage for --help, 2 after printing a usage error. */
int cli_run_option(cli_run *r, int argc, char **argv, int *i);
/* The option loop's head, so that each command writes only its own options: advances *i (start
 * it at 0) to the next argument, taking the shared options on the way. CLI_OPT_OTHER: argv[*i]
 * is the command's to parse; CLI_ARGS_END: none left; otherwise the status the command ends with,
 * as for cli_run_option. */
int cli_run_next(cli_run *r, int argc, char **argv, int *i);
/* Before the work: fills o's threads, cancel, progress and notice hooks and installs the signal
 * handlers (a first signal asks the run to stop; a second one ends the process at once). */
void cli_run_begin(cli_run *r, cq_convert_opts *o);
/* After the work: clears the progress line. */
void cli_run_end(cli_run *r);

/* "--name value" or "--name=value" at argv[*i]: returns the value and advances *i, or NULL
 * (the caller reports the usage error) when argv[*i] is not that option or has no value. */
const char *cli_opt_value(int argc, char **argv, int *i, const char *name, bool *missing);

#endif
