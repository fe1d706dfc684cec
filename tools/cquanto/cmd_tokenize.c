/*
 * cmd_tokenize.c - `cquanto tokenize MODEL -p TEXT | -f FILE`: the ids a model's tokenizer gives
 * a text, one per line (with --pieces, each id's token too), like llama.cpp's llama-tokenize.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define CMD "tokenize"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto tokenize MODEL (-p TEXT | -f FILE) [--specials] [--pieces] [--count]\n\n"
            "Prints the ids the tokenizer of MODEL gives the text, one per line. MODEL is a model folder\n"
            "(its tokenizer.json, tok512.bin or tokenizer.bin), one of those files, or a GGUF model.\n\n"
            "  -p, --prompt TEXT  the text\n"
            "  -f, --file FILE    the text of a file (any bytes)\n"
            "  --specials         add the tokenizer's special tokens (BOS, the template's)\n"
            "  --pieces           print each id's token after a tab\n"
            "  --count            print only the number of tokens\n"
            "  -h, --help         this help\n");
}

/* The tokenizer of a folder, file or GGUF. */
static cq_status open_tokenizer(const char *model, cq_tokenizer **tok, cq_err *err) {
    static const char *const names[] = {"tokenizer.json", "tok512.bin", "tokenizer.bin"};
    if (!cq_fs_is_dir(model)) return cq_tokenizer_load(model, tok, err);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = cq_path_join(model, names[i]);
        bool there = p && cq_fs_exists(p);
        cq_status st = there ? cq_tokenizer_load(p, tok, err) : CQ_OK;
        free(p);
        if (there) return st;
    }
    return cq_err_set(err, CQ_E_NOTFOUND, "%s: no tokenizer.json, tok512.bin or tokenizer.bin in this folder", model);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *prompt = NULL, *file = NULL;
    bool specials = false, pieces = false, count = false;
    for (int i = 1; i < argc; i++) { /* argv[0] is the command */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!v) return cli_usage_error(CMD, "%s needs TEXT", a);
            prompt = v, i++;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            if (!v) return cli_usage_error(CMD, "%s needs FILE", a);
            file = v, i++;
        } else if (!strcmp(a, "--specials")) {
            specials = true;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else if (!strcmp(a, "--count")) {
            count = true;
        } else if (cli_take_input(CMD, a, &model)) {
            return 2;
        }
    }
    if (!model) return cli_usage_error(CMD, "missing the model or tokenizer");
    if (!prompt == !file) return cli_usage_error(CMD, "give one of -p TEXT and -f FILE");
    cq_err err = {0};
    cq_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = prompt ? strlen(prompt) : 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    cq_status st = open_tokenizer(model, &tok, &err);
    if (!st && file) st = cq_fs_read_file(file, (size_t)1 << 31, &text, &len, &err);
    if (!st) st = cq_tokenizer_encode(tok, file ? text : prompt, len, specials, &ids, &n, &err);
    if (!st && count) printf("%lld\n", (long long)n);
    for (int64_t i = 0; !st && !count && i < n; i++) {
        size_t pl = 0;
        const char *p = pieces ? cq_tokenizer_token(tok, ids[i], &pl) : NULL;
        if (pieces) printf("%d\t%.*s\n", (int)ids[i], (int)pl, p ? p : "");
        else printf("%d\n", (int)ids[i]);
    }
    free(ids);
    free(text);
    cq_tokenizer_free(tok);
    return st ? cli_fail(CMD, &err) : 0;
}
