/*
 * cmd_convert.c - `cquanto convert MODEL.gguf -o FOLDER`: a llama.cpp GGUF model as the float
 * Hugging Face folder it stands for (cq_gguf_convert), which transformers loads and
 * `cquanto quantize` takes.
 */
#include "progress.h"

#include <string.h>

#define CMD "convert"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto convert MODEL.gguf -o FOLDER [--dtype auto|f32|f16|bf16] [--force] [--quiet]\n\n"
            "Writes the Hugging Face folder a GGUF model stands for: config.json, model.safetensors,\n"
            "tokenizer.json and generation_config.json. Tensors get transformers' names, llama.cpp's\n"
            "q/k row order is undone and block formats (Q4_0 ... Q6_K) are dequantized exactly as the\n"
            "gguf package does. Architectures: llama (Llama, SmolLM, TinyLlama, Mistral) and qwen2.\n"
            "Quantize the result with `cquanto quantize FOLDER -o QUANTO --weights int4`.\n\n"
            "  --dtype D   float type of the weights: auto (default: F16/BF16/F32 tensors keep their\n"
            "              type, block formats become f32), f32, f16 or bf16\n"
            "  --force     replace the output folder if it exists\n"
            "  --quiet     no progress line and no summary\n");
}

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    cli_run run = {.cmd = CMD, .usage = usage};
    cq_gguf_convert_opts o = cq_gguf_convert_default_opts();
    int arg = 0, next;
    while ((next = cli_run_next(&run, argc, argv, &arg)) == CLI_OPT_OTHER) {
        const char *a = argv[arg], *v;
        bool missing = false;
        if (!strcmp(a, "--force")) o.overwrite = true;
        else if ((v = cli_opt_value(argc, argv, &arg, "-o", &missing)) || missing ||
                 (v = cli_opt_value(argc, argv, &arg, "--output", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "%s needs a folder", a);
            out = v;
        } else if ((v = cli_opt_value(argc, argv, &arg, "--dtype", &missing)) || missing) {
            if (missing) return cli_usage_error(CMD, "--dtype needs auto, f32, f16 or bf16");
            if (!strcmp(v, "auto")) o.dtype = CQ_DTYPE_INVALID;
            else if (!strcmp(v, "f32") || !strcmp(v, "float32")) o.dtype = CQ_F32;
            else if (!strcmp(v, "f16") || !strcmp(v, "float16")) o.dtype = CQ_F16;
            else if (!strcmp(v, "bf16") || !strcmp(v, "bfloat16")) o.dtype = CQ_BF16;
            else return cli_usage_error(CMD, "--dtype '%s': use auto, f32, f16 or bf16", v);
        } else if (cli_take_input(CMD, a, &in)) {
            return 2;
        }
    }
    if (next != CLI_ARGS_END) return next;
    if (!in) return cli_usage_error(CMD, "missing the GGUF file");
    if (!out) return cli_usage_error(CMD, "missing -o FOLDER");
    cq_convert_opts co = cq_convert_default_opts();
    cli_run_begin(&run, &co);
    o.cancel = co.cancel, o.progress = co.progress, o.progress_user = co.progress_user;
    cq_err err = {0};
    double t0 = cli_now();
    cq_status s = cq_gguf_convert(in, out, &o, &err);
    cli_run_end(&run);
    if (s) return cli_fail(CMD, &err);
    if (!run.quiet) printf("%s: converted from %s in %.2f s\n", out, in, cli_now() - t0);
    return 0;
}
