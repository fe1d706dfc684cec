/*
 * gen_synth_ckpt.c - writes a synthetic Llama-shaped checkpoint for bench/bench_quantize.sh: a
 * Hugging Face folder with config.json, bf16 shards model-0000k-of-0000n.safetensors and
 * model.safetensors.index.json, laid out as transformers saves LlamaForCausalLM (untied lm_head).
 * Default dimensions are TinyLlama-1.1B's (hidden 2048, intermediate 5632, 22 layers, 32 heads, 4
 * key/value heads, vocab 32000): 1.1 billion parameters, 2.2 GB. Weights are deterministic
 * pseudo-random values with a normal-like spread (std 0.02), norms are ones. Not a test fixture:
 * generate it into /tmp or build/, never commit it.
 *
 * usage: gen_synth_ckpt OUT_DIR [--layers N] [--hidden H] [--intermediate I] [--vocab V]
 *                               [--heads H] [--kv-heads K] [--shard-mb M]
 */
#include "cquanto.h"
#include "cquanto/experimental.h" /* cq_fs_mkdir_p, cq_path_join */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dims {
    int64_t layers, hidden, intermediate, vocab, heads, kv_heads, shard_bytes;
} dims;

typedef struct tensor_spec {
    char name[128];
    int ndim;
    int64_t shape[2];
    int shard;
    bool ones; /* norm weights */
} tensor_spec;

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* bf16 values of a tensor slice [lo, hi): the sum of four uniforms (Irwin-Hall, near normal)
 * scaled to std 0.02, rounded to nearest even; each 64K-element block has its own seed, so the
 * result does not depend on the thread count. */
static void fill_block(uint16_t *dst, int64_t lo, int64_t n, uint64_t tensor_seed) {
    const int64_t block = 65536;
#pragma omp parallel for schedule(static)
    for (int64_t b = lo / block; b <= (lo + n - 1) / block; b++) {
        uint64_t s = tensor_seed ^ ((uint64_t)b * 0xD1B54A32D192ED03ull);
        int64_t from = b * block > lo ? b * block : lo, to = (b + 1) * block < lo + n ? (b + 1) * block : lo + n;
        for (int64_t i = b * block; i < to; i++) {
            uint64_t r = splitmix(&s);
            if (i < from) continue;
            float u = (float)(r & 0xFFFF) + (float)((r >> 16) & 0xFFFF) + (float)((r >> 32) & 0xFFFF) +
                      (float)(r >> 48);
            float v = (u / 65536.0f - 2.0f) * (0.02f / 0.5773503f);
            dst[i - lo] = cq_f32_to_bf16(v);
        }
    }
}

static int add(tensor_spec *t, int n, const char *name, int ndim, int64_t a, int64_t b, bool ones) {
    snprintf(t[n].name, sizeof t[n].name, "%s", name);
    t[n].ndim = ndim;
    t[n].shape[0] = a;
    t[n].shape[1] = b;
    t[n].ones = ones;
    return n + 1;
}

static int64_t nbytes(const tensor_spec *t) { return 2 * t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1); }

static int die(const char *what, const cq_err *err) {
    fprintf(stderr, "gen_synth_ckpt: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv) {
    dims d = {22, 2048, 5632, 32000, 32, 4, (int64_t)1000 << 20};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int64_t *slot = NULL;
        if (!strcmp(argv[i], "--layers")) slot = &d.layers;
        else if (!strcmp(argv[i], "--hidden")) slot = &d.hidden;
        else if (!strcmp(argv[i], "--intermediate")) slot = &d.intermediate;
        else if (!strcmp(argv[i], "--vocab")) slot = &d.vocab;
        else if (!strcmp(argv[i], "--heads")) slot = &d.heads;
        else if (!strcmp(argv[i], "--kv-heads")) slot = &d.kv_heads;
        else if (!strcmp(argv[i], "--shard-mb")) slot = &d.shard_bytes;
        else if (argv[i][0] != '-' && !out) out = argv[i];
        else {
            fprintf(stderr, "usage: gen_synth_ckpt OUT_DIR [--layers N] [--hidden H] [--intermediate I] [--vocab V] "
                            "[--heads H] [--kv-heads K] [--shard-mb M]\n");
            return 2;
        }
        if (slot) {
            if (i + 1 >= argc || (*slot = atoll(argv[++i])) <= 0) {
                fprintf(stderr, "gen_synth_ckpt: %s needs a positive number\n", argv[i - 1]);
                return 2;
            }
            if (slot == &d.shard_bytes) d.shard_bytes <<= 20;
        }
    }
    if (!out) {
        fprintf(stderr, "usage: gen_synth_ckpt OUT_DIR [options]\n");
        return 2;
    }
    int64_t head_dim = d.hidden / d.heads, kv = d.kv_heads * head_dim;
    int cap = (int)(9 * d.layers + 3);
    tensor_spec *t = calloc((size_t)cap, sizeof *t);
    int n = 0;
    char name[128];
    n = add(t, n, "model.embed_tokens.weight", 2, d.vocab, d.hidden, false);
    for (int64_t l = 0; l < d.layers; l++) {
#define L(suffix, ndim, a, b, ones)                                                  \
    snprintf(name, sizeof name, "model.layers.%lld." suffix, (long long)l);          \
    n = add(t, n, name, ndim, a, b, ones)
        L("self_attn.q_proj.weight", 2, d.heads * head_dim, d.hidden, false);
        L("self_attn.k_proj.weight", 2, kv, d.hidden, false);
        L("self_attn.v_proj.weight", 2, kv, d.hidden, false);
        L("self_attn.o_proj.weight", 2, d.hidden, d.heads * head_dim, false);
        L("mlp.gate_proj.weight", 2, d.intermediate, d.hidden, false);
        L("mlp.up_proj.weight", 2, d.intermediate, d.hidden, false);
        L("mlp.down_proj.weight", 2, d.hidden, d.intermediate, false);
        L("input_layernorm.weight", 1, d.hidden, 0, true);
        L("post_attention_layernorm.weight", 1, d.hidden, 0, true);
#undef L
    }
    n = add(t, n, "model.norm.weight", 1, d.hidden, 0, true);
    n = add(t, n, "lm_head.weight", 2, d.vocab, d.hidden, false);
    /* Shards as transformers cuts them: in order, a new shard when the next tensor would overflow. */
    int nshards = 1;
    int64_t filled = 0, total = 0;
    for (int i = 0; i < n; i++) {
        if (filled && filled + nbytes(&t[i]) > d.shard_bytes) nshards++, filled = 0;
        t[i].shard = nshards - 1;
        filled += nbytes(&t[i]);
        total += nbytes(&t[i]);
    }
    cq_err err = {0};
    if (cq_fs_mkdir_p(out, &err)) return die(out, &err);
    const char **names = calloc((size_t)n, sizeof *names), **files = calloc((size_t)n, sizeof *files);
    char (*fnames)[64] = calloc((size_t)nshards, sizeof *fnames);
    uint16_t *buf = malloc((size_t)16 << 20);
    for (int s = 0; s < nshards; s++) {
        cq_shard_file_name(fnames[s], sizeof fnames[s], "model", s + 1, nshards);
        char *path = cq_path_join(out, fnames[s]);
        cq_st_writer *w = NULL;
        if (cq_st_writer_open(path, &w, &err) || cq_st_writer_add_metadata(w, "format", "pt", &err)) return die(path, &err);
        for (int i = 0; i < n; i++)
            if (t[i].shard == s && cq_st_writer_declare(w, t[i].name, CQ_BF16, t[i].ndim, t[i].shape, &err))
                return die(t[i].name, &err);
        for (int i = 0; i < n; i++) {
            if (t[i].shard != s) continue;
            int64_t numel = nbytes(&t[i]) / 2, chunk = (int64_t)8 << 20;
            for (int64_t lo = 0; lo < numel; lo += chunk) {
                int64_t k = numel - lo < chunk ? numel - lo : chunk;
                if (t[i].ones) {
                    for (int64_t e = 0; e < k; e++) buf[e] = 0x3F80; /* 1.0 */
                } else {
                    fill_block(buf, lo, k, 0x5EED0000ull + (uint64_t)i * 0x9E3779B97F4A7C15ull);
                }
                if (cq_st_writer_write(w, t[i].name, buf, (size_t)k * 2, &err)) return die(t[i].name, &err);
            }
            names[i] = t[i].name;
            files[i] = fnames[s];
        }
        if (cq_st_writer_commit(w, &err)) return die(path, &err);
        cq_st_writer_free(w);
        free(path);
    }
    char *index = cq_path_join(out, "model.safetensors.index.json");
    if (cq_ckpt_write_index(index, total, n, names, files, &err)) return die(index, &err);
    char config[1024];
    snprintf(config, sizeof config,
             "{\n  \"architectures\": [\"LlamaForCausalLM\"],\n  \"hidden_act\": \"silu\",\n  \"hidden_size\": %lld,\n"
             "  \"intermediate_size\": %lld,\n  \"max_position_embeddings\": 2048,\n  \"model_type\": \"llama\",\n"
             "  \"num_attention_heads\": %lld,\n  \"num_hidden_layers\": %lld,\n  \"num_key_value_heads\": %lld,\n"
             "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n  \"tie_word_embeddings\": false,\n"
             "  \"torch_dtype\": \"bfloat16\",\n  \"vocab_size\": %lld\n}\n",
             (long long)d.hidden, (long long)d.intermediate, (long long)d.heads, (long long)d.layers,
             (long long)d.kv_heads, (long long)d.vocab);
    char *cpath = cq_path_join(out, "config.json");
    if (cq_fs_write_file_atomic(cpath, config, strlen(config), &err)) return die(cpath, &err);
    printf("%s: %d tensors in %d shards, %.3f GB (bf16)\n", out, n, nshards, (double)total / 1e9);
    free(cpath);
    free(index);
    free(buf);
    free(fnames);
    free(names);
    free(files);
    free(t);
    return 0;
}
