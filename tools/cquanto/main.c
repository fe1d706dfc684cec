/*
 * main.c - the cquanto command line: dispatches to one subcommand per file.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const cli_command g_commands[] = {
    {"quantize", "quantize a safetensors file or Hugging Face folder in one streaming pass", cmd_quantize},
    {"dequantize", "turn a quanto checkpoint back into a float safetensors file", cmd_dequantize},
    {"convert", "turn a llama.cpp GGUF model into a float Hugging Face folder", cmd_convert},
    {"generate", "generate text with a Llama-family model (float or quantized weights)", cmd_generate},
    {"tokenize", "the token ids a model's tokenizer gives a text", cmd_tokenize},
    {"perplexity", "perplexity (llama.cpp's protocol) and KL divergence against a base model", cmd_perplexity},
    {"calibrate", "measure static activation scales of a quanto folder on a text (optimum-quanto's Calibration)",
     cmd_calibrate},
    {"inspect", "list tensors, dtypes, shapes, sizes, qtypes and bits per weight", cmd_inspect},
    {"report", "per-tensor quantization error of a quantized checkpoint against its float source", cmd_report},
    {"demo", "the optimum-quanto workflow on the bundled LeNet and MNIST", cmd_demo},
    {"cpu", "detected CPU features and the kernel variant chosen for each op", cmd_cpu},
};

static const cli_command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        if (!strcmp(g_commands[i].name, name)) return &g_commands[i];
    return NULL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
    fprintf(stderr, "cquanto %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(try 'cquanto %s --help')\n", cmd);
    return 2;
}

int cli_fail(const char *cmd, const cq_err *err) {
    fprintf(stderr, "cquanto %s: %s\n", cmd, err && err->msg[0] ? err->msg : "failed");
    return 1;
}

int cli_is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

int cli_parse_int(const char *s, long min, long max, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_take_input(const char *cmd, const char *a, const char **in) {
    if (a[0] == '-' && a[1]) return cli_usage_error(cmd, "unknown option '%s'", a);
    if (*in) return cli_usage_error(cmd, "one input only (got '%s' and '%s')", *in, a);
    *in = a;
    return 0;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *cli_human_bytes(double bytes, char *buf, size_t n) {
    const char *units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000.0 && u < 4) {
        bytes /= 1000.0;
        u++;
    }
    snprintf(buf, n, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

static void usage(FILE *f) {
    fprintf(f, "cquanto %s - quantization toolkit for neural networks (optimum-quanto compatible)\n\n",
            CQ_VERSION_STRING);
    fprintf(f, "usage: cquanto COMMAND [ARGS...]   (cquanto COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof g_commands / sizeof g_commands[0]; i++)
        fprintf(f, "  %-11s %s\n", g_commands[i].name, g_commands[i].summary);
    fprintf(f, "\nenvironment: CQ_THREADS=N (thread count), CQ_ISA=ref|avx2|avx512|amx|neon (cap the kernels)\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || cli_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("cquanto %s\n", CQ_VERSION_STRING);
        return 0;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "cquanto: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
