/*
 * test_tokenizer_json.c - Hugging Face tokenizer.json (BPE) against the `tokenizers` library:
 * four tokenizers it trained and saved in the layouts Llama-family checkpoints ship (SentencePiece
 * with byte fallback, GPT-2 byte-level, Llama-3 regex split + byte-level, Metaspace), and the ids
 * and decoded text it gives for texts with spaces, tabs, digits, accents, CJK, emoji, control
 * characters and special tokens inside, and the whole WikiText-2 test split
 * (tools/gen_tokenizer_golden.py); then files it must refuse.
 */
#include "tst.h"
#include "test_io_util.h"

#include "cquanto.h"
#include "cquanto/experimental.h" /* cq_fs_read_file */

#include <jansson.h>

#define DIR "tests/data/tokenizers"

TST(tokenizer_json_matches_hf_tokenizers) {
    json_error_t je;
    json_t *root = json_load_file(DIR "/cases.json", 0, &je);
    json_t *files = json_object_get(root, "files");
    CHECKF(json_object_size(files) == 4, "cases: %s", je.text);
    const char *name;
    json_t *rows;
    json_object_foreach(files, name, rows) {
        char path[256];
        snprintf(path, sizeof path, DIR "/%s.json", name);
        cq_tokenizer *t = NULL;
        cq_err err = {0};
        CHECKF(cq_tokenizer_load(path, &t, &err) == CQ_OK, "%s: %s", name, err.msg);
        if (!t) continue;
        size_t i;
        json_t *c;
        int agree = 0;
        json_array_foreach(rows, i, c) {
            const char *text = json_string_value(json_object_get(c, "text"));
            json_t *want = json_object_get(c, "ids");
            int32_t *ids;
            int64_t n;
            bool same = io_ids_match(t, text, want, &ids, &n);
            CHECKF(same, "%s, text %zu '%.30s': %lld ids, expected %zu", name, i, text, (long long)n,
                   json_array_size(want));
            if (!same && ids) {
                printf("   got:");
                for (int64_t k = 0; k < n && k < 24; k++) printf(" %d", ids[k]);
                printf("\n  want:");
                for (size_t k = 0; k < json_array_size(want) && k < 24; k++)
                    printf(" %lld", (long long)json_integer_value(json_array_get(want, k)));
                printf("\n");
            }
            char *back = NULL;
            size_t len = 0;
            const char *dec = json_string_value(json_object_get(c, "decoded"));
            CHECK(ids && cq_tokenizer_decode(t, ids, n, &back, &len, NULL) == CQ_OK);
            bool dsame = back && len == strlen(dec) && !memcmp(back, dec, len);
            CHECKF(dsame, "%s, text %zu decodes to '%.40s', expected '%.40s'", name, i, back ? back : "", dec);
            agree += same && dsame;
            free(back);
            free(ids);
        }
        printf("  %s: %d of %zu texts agree with tokenizers\n", name, agree, json_array_size(rows));
        cq_tokenizer_free(t);
    }
    json_decref(root);
}

/* The whole WikiText-2 test split: id count and FNV-1a hash of the ids equal the library's. Also
 * invalid UTF-8 (which the library cannot take): byte-level tokenizers still round-trip it. */
TST(tokenizer_json_wikitext_and_invalid_utf8) {
    json_t *root = json_load_file(DIR "/cases.json", 0, NULL);
    json_t *wiki = json_object_get(root, "wikitext");
    size_t n = 0;
    char *text = NULL;
    CHECK(cq_fs_read_file("data/wikitext-2/wiki.test.raw", 1 << 24, &text, &n, NULL) == CQ_OK && json_object_size(wiki) == 4);
    const char *name;
    json_t *w;
    json_object_foreach(wiki, name, w) {
        char path[256];
        snprintf(path, sizeof path, DIR "/%s.json", name);
        cq_tokenizer *t = NULL;
        int32_t *ids = NULL;
        int64_t k = 0;
        CHECK(cq_tokenizer_load(path, &t, NULL) == CQ_OK && text && cq_tokenizer_encode(t, text, n, true, &ids, &k, NULL) == CQ_OK);
        uint64_t h = 0xcbf29ce484222325ull;
        for (int64_t i = 0; i < k; i++)
            for (int b = 0; b < 4; b++) h = (h ^ (((uint32_t)ids[i] >> (8 * b)) & 0xff)) * 0x100000001b3ull;
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
        CHECKF(k == json_integer_value(json_object_get(w, "count")) && !strcmp(hex, json_string_value(json_object_get(w, "fnv1a64"))),
               "%s on WikiText-2: %lld ids hash %s, expected %lld %s", name, (long long)k, hex,
               (long long)json_integer_value(json_object_get(w, "count")), json_string_value(json_object_get(w, "fnv1a64")));
        if (!strcmp(name, "bytelevel") && t) {
            const char bad[] = "ok \xff\xfe\xc3( \xe2\x82 end";
            free(ids);
            CHECK(cq_tokenizer_encode(t, bad, sizeof bad - 1, false, &ids, &k, NULL) == CQ_OK);
            char *back = NULL;
            size_t len = 0;
            CHECK(cq_tokenizer_decode(t, ids, k, &back, &len, NULL) == CQ_OK);
            CHECK(back && len == sizeof bad - 1 && !memcmp(back, bad, len));
            free(back);
        }
        free(ids);
        cq_tokenizer_free(t);
    }
    free(text);
    json_decref(root);
}

static void refuse(const char *json, const char *want) {
    cq_tokenizer *t = NULL;
    cq_err err = {0};
    cq_status st = cq_tokenizer_parse(json, strlen(json), "tok.json", &t, &err);
    CHECKF(st != CQ_OK && !t && strstr(err.msg, want), "'%s': %s", want, err.msg);
}

TST(tokenizer_json_refuses_what_it_cannot_run) {
    refuse("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", "model 'WordPiece'");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\", \"b\"]]}}", "merge 0");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}", "no valid id");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"NFKC\"}}",
           "normalizer 'NFKC'");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
           "\"BertPreTokenizer\"}}",
           "pre-tokenizer 'BertPreTokenizer'");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": "
           "\"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
           "does not compile");
    refuse("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"continuing_subword_prefix\": \"##\"}}",
           "continuing_subword_prefix");
    refuse("{\"model\": ", "tok.json");
}
