/*
 * cli.h - what the cquanto subcommands share. The CLI parses arguments, calls the library and
 * prints; it holds no math. Exit codes: 0 success, 1 runtime failure (bad input file, I/O),
 * 2 usage error. --help prints to stdout and exits 0.
 */
#ifndef CQ_CLI_H
#define CQ_CLI_H

#include "cquanto.h"
#include "cquanto/experimental.h" /* files and folders, data set readers, the report chart */

#include <stdio.h>

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

/* Prints "cquanto NAME: message" to stderr and returns 2 (usage error). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "cquanto NAME: <err->msg>" to stderr and returns 1 (runtime failure). */
int cli_fail(const char *cmd, const cq_err *err);
/* True when argv[i] is -h or --help. */
int cli_is_help(const char *arg);
/* Parses a positive integer argument; returns 0 on success. */
int cli_parse_int(const char *s, long min, long max, long *out);

/* Seconds on the monotonic clock. */
double cli_now(void);
/* "1.23 MB" style sizes into buf. */
const char *cli_human_bytes(double bytes, char *buf, size_t n);

/* Whether path is a GGUF file: it starts with the GGUF magic or is named *.gguf (cmd_inspect.c).
 * The checkpoint commands (quantize, dequantize, report) read safetensors checkpoints; for a GGUF
 * input cli_refuse_gguf prints the one-line refusal naming `cquanto convert` and returns 1. */
int cli_is_gguf(const char *path);
/* A command's argument a that is not one of its options: taken as its one input *in (0), or a
 * usage error (2 after printing it) for an unknown option or a second input. */
int cli_take_input(const char *cmd, const char *a, const char **in);
int cli_refuse_gguf(const char *cmd, const char *path);

/* The options of the language-model commands (lm_args.c): when argv[*i] is one of them, it is
 * parsed into o (or *threads) with its value and *i moved past it, and 1 comes back; 0 when it is
 * none of them; 2 after printing a usage error. cli_lm_options_help describes them for --help. */
int cli_lm_option(const char *cmd, int argc, char **argv, int *i, cq_lm_opts *o, long *threads);
extern const char cli_lm_options_help[];
/* "MODEL: no tokenizer ..." on stderr; returns 1. */
int cli_lm_no_tokenizer(const char *cmd, const char *model);

/* Subcommands, one file each (cmd_NAME.c). */
int cmd_inspect(int argc, char **argv);
int cmd_cpu(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_dequantize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

#endif
