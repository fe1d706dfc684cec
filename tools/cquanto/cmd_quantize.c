/*
 * cmd_quantize.c - `cquanto quantize`: parses the options, shows the plan (--dry-run) or runs
 * cq_convert_quantize with a progress line, and prints the summary. No math here.
 * Exit codes: 2 for malformed usage (unknown option, missing or unparsable value, unknown
 * qtype), 1 for options that contradict each other and for every runtime failure.
 */
#include "progress.h"

#include <stdlib.h>
#include <string.h>

#define CMD "quantize"

/* The qtypes a checkpoint may take in `role`, from the library's qtype table. */
static const char *choices(unsigned role, const char *sep, const char *last, char *buf, size_t n) {
    return cq_qtype_choices(role, true, role == CQ_QROLE_ACTIVATIONS, sep, last, buf, n);
}

static void usage(FILE *f) {
    char w[128], a[128];
    fprintf(f,
            "usage: cquanto quantize IN -o OUT --weights {%s}\n"
            "                        [--activations {%s}] [--group-size auto|N]\n"
            "                        [--optimizer {absmax,max,hqq}] [--include PATTERN]... [--exclude PATTERN]...\n"
            "                        [--module-kinds FILE] [--threads N] [--dry-run] [--force] [--quiet]\n\n"
            "Quantizes a checkpoint in one streaming pass into an optimum-quanto folder.\n\n"
            "  IN                 a .safetensors file, a Hugging Face folder (config.json + model.safetensors),\n"
            "                     or a sharded folder (model.safetensors.index.json)\n"
            "  -o, --output OUT   the folder to write: the safetensors file(s) with the input's sharding,\n"
            "                     quanto_qmap.json, config.json with a quantization_config, the other files\n"
            "  --weights Q        weight qtype\n"
            "  --activations Q    activation qtype recorded for the modules (scales 1.0: calibrate afterwards)\n"
            "  --group-size G     int2/int4 group size; auto (default) is optimum-quanto's rule: none up to\n"
            "                     128 input features, else the first of 128, 96, 64, 32 that divides them\n"
            "  --optimizer O      absmax (8-bit default), max (int2/int4 default) or hqq (int2/int4)\n"
            "  --include P        quantize only modules matching a pattern (Python fnmatch, repeatable)\n"
            "  --exclude P        leave modules matching a pattern in float (repeatable), e.g. 'lm_head'\n"
            "  --module-kinds F   JSON {\"module\": \"kind\"} (linear, conv2d, embedding, layernorm, ...): decides\n"
            "                     those modules' kinds before anything else (see docs/CLI.md)\n"
            "  --threads N        worker threads (default: CQ_THREADS or all cores); never changes the output\n"
            "  --dry-run          print the plan (module, shape, qtype, group size, bytes, kind and what\n"
            "                     decided it) and write nothing\n"
            "  --force            replace OUT if it is an earlier quantized checkpoint or an empty folder\n"
            "  --quiet            no progress line and no summary\n\n"
            "Only Linear and Conv2d weights are quantized (and LayerNorms given activation scales), as by\n"
            "optimum-quanto. A module's kind comes from --module-kinds, its tensors (BatchNorm statistics,\n"
            "bias sizes), config.json's family (llama, bert, gpt2), or, for a bare .safetensors file only,\n"
            "its name and rank; a module of unknown kind stays in float.\n",
            choices(CQ_QROLE_WEIGHTS, ",", ",", w, sizeof w), choices(CQ_QROLE_ACTIVATIONS, ",", ",", a, sizeof a));
}

static const char *group_str(const cq_plan_entry *e, char *buf, size_t n) {
    if (e->action != CQ_PLAN_QUANTIZE || cq_qtype_family_of(e->weights) != CQ_QFAMILY_AFFINE) return "-";
    if (e->group_size == 0) return "channel";
    snprintf(buf, n, "%lld", (long long)e->group_size);
    return buf;
}

/* "quantize", "activations" or "skip (why)"; a kind quanto never converts is its own why. */
static const char *action_str(const cq_plan_entry *e, char *buf, size_t n) {
    if (e->action == CQ_PLAN_QUANTIZE || e->action == CQ_PLAN_ACTIVATIONS_ONLY)
        snprintf(buf, n, "%s", cq_plan_action_name(e->action));
    else
        snprintf(buf, n, "skip (%s)", e->action == CQ_PLAN_SKIP_KIND ? cq_layer_kind_name(e->kind)
                                                                      : cq_plan_action_name(e->action) + strlen("skip: "));
    return buf;
}

static int print_plan(const char *in, const cq_convert_opts *o) {
    cq_err err = {0};
    cq_plan *p = NULL;
    if (cq_plan_build(in, o, &p, &err) != CQ_OK) return cli_fail(CMD, &err);
    int64_t n = cq_plan_count(p);
    size_t w = 6, wa = 18;
    char act[40], by[64];
    for (int64_t i = 0; i < n; i++) {
        const cq_plan_entry *e = cq_plan_entry_at(p, i);
        if (strlen(e->module) > w) w = strlen(e->module);
        if (strlen(action_str(e, act, sizeof act)) > wa) wa = strlen(act);
    }
    printf("%-*s  %-20s %-5s %-*s %-15s %-8s %10s %10s  %-16s %s\n", (int)w, "module", "shape", "dtype", (int)wa,
           "action", "weights", "group", "before", "after", "kind", "decided by");
    for (int64_t i = 0; i < n; i++) {
        const cq_plan_entry *e = cq_plan_entry_at(p, i);
        char shape[64], g[24], b1[32], b2[32];
        /* A module left in float for want of a kind says so: "undecided -> float". */
        snprintf(by, sizeof by, "%s%s", e->decided_by, e->action == CQ_PLAN_SKIP_UNDECIDED ? " -> float" : "");
        printf("%-*s  %-20s %-5s %-*s %-15s %-8s %10s %10s  %-16s %s\n", (int)w, e->module,
               cq_shape_str(e->ndim, e->shape, shape, sizeof shape), cq_dtype_name(e->dtype), (int)wa,
               action_str(e, act, sizeof act),
               e->action == CQ_PLAN_QUANTIZE ? cq_qtype_name(e->weights) : "-", group_str(e, g, sizeof g),
               cli_human_bytes((double)e->bytes_before, b1, sizeof b1),
               cli_human_bytes((double)e->bytes_after, b2, sizeof b2), cq_layer_kind_name(e->kind), by);
    }
    uint64_t before, after;
    int64_t nq;
    cq_plan_totals(p, &before, &after, &nq);
    char b1[32], b2[32];
    printf("\n%lld of %lld candidate modules quantized to %s%s%s; checkpoint %s -> %s (%.2fx smaller). "
           "Nothing written (--dry-run).\n",
           (long long)nq, (long long)n, cq_qtype_name(o->weights), o->activations ? ", activations " : "",
           o->activations ? cq_qtype_name(o->activations) : "", cli_human_bytes((double)before, b1, sizeof b1),
           cli_human_bytes((double)after, b2, sizeof b2), after ? (double)before / (double)after : 0.0);
    cq_plan_free(p);
    return 0;
}

static int conflict(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "cquanto " CMD ": conflicting options: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    return 1;
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *weights = NULL, *activations = NULL, *group = NULL, *optimizer = NULL,
               *kinds = NULL;
    const char **include = calloc((size_t)argc, sizeof *include), **exclude = calloc((size_t)argc, sizeof *exclude);
    int n_include = 0, n_exclude = 0, rc = 0;
    cli_run run = {.cmd = CMD, .usage = usage};
    bool dry_run = false, force = false;
    if (!include || !exclude) {
        fprintf(stderr, "cquanto " CMD ": out of memory\n");
        free(include);
        free(exclude);
        return 1;
    }
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        int shared = cli_run_option(&run, argc, argv, &i);
        if (shared == 0) { /* --help */
            free(include);
            free(exclude);
            return 0;
        }
        if (shared >= 0) rc = shared;
        else if (shared == CLI_OPT_TAKEN) continue;
        else if (!strcmp(a, "--dry-run")) dry_run = true;
        else if (!strcmp(a, "--force")) force = true;
        else if ((v = cli_opt_value(argc, argv, &i, "-o", &missing)) || missing ||
                 (v = cli_opt_value(argc, argv, &i, "--output", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "%s needs a folder", a);
            else if (out) rc = cli_usage_error(CMD, "-o given twice");
            else out = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--weights", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--weights needs a qtype");
            else weights = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--activations", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--activations needs a qtype");
            else activations = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--group-size", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--group-size needs auto or a number");
            else group = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--optimizer", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--optimizer needs absmax, max or hqq");
            else optimizer = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--include", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--include needs a pattern");
            else include[n_include++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--exclude", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--exclude needs a pattern");
            else exclude[n_exclude++] = v;
        } else if ((v = cli_opt_value(argc, argv, &i, "--module-kinds", &missing)) || missing) {
            if (missing) rc = cli_usage_error(CMD, "--module-kinds needs a JSON file");
            else if (kinds) rc = cli_usage_error(CMD, "--module-kinds given twice");
            else kinds = v;
        } else {
            rc = cli_take_input(CMD, a, &in);
        }
    }
    cq_convert_opts o = cq_convert_default_opts();
    cq_err err = {0};
    if (!rc && !in) rc = cli_usage_error(CMD, "missing the input checkpoint");
    char wch[128], ach[128];
    choices(CQ_QROLE_WEIGHTS, ", ", " or ", wch, sizeof wch);
    choices(CQ_QROLE_ACTIVATIONS, ", ", " or ", ach, sizeof ach);
    if (!rc && !weights) rc = cli_usage_error(CMD, "missing --weights (%s)", wch);
    if (!rc && !out && !dry_run) rc = cli_usage_error(CMD, "missing -o OUT (or --dry-run)");
    if (!rc && cli_is_gguf(in)) rc = cli_refuse_gguf(CMD, in);
    if (!rc && (cq_qtype_parse(weights, &o.weights, &err) || !cq_qtype_takes(o.weights, CQ_QROLE_WEIGHTS, true)))
        rc = cli_usage_error(CMD, "--weights %s: choose %s", weights, wch);
    if (!rc && activations &&
        (cq_qtype_parse(activations, &o.activations, &err) ||
         (o.activations != CQ_QNONE && !cq_qtype_takes(o.activations, CQ_QROLE_ACTIVATIONS, true))))
        rc = cli_usage_error(CMD, "--activations %s: choose %s", activations, ach);
    if (!rc && optimizer) {
        if (!strcmp(optimizer, "absmax")) o.optimizer = CQ_OPT_ABSMAX;
        else if (!strcmp(optimizer, "max")) o.optimizer = CQ_OPT_MAX;
        else if (!strcmp(optimizer, "hqq")) o.optimizer = CQ_OPT_HQQ;
        else rc = cli_usage_error(CMD, "--optimizer %s: choose absmax, max or hqq", optimizer);
    }
    long gs = -1;
    if (!rc && group && strcmp(group, "auto") && cli_parse_int(group, 1, 1L << 30, &gs))
        rc = cli_usage_error(CMD, "--group-size %s: give auto or a positive number", group);
    /* Well-formed options that contradict each other: exit 1, nothing written. */
    bool affine = cq_qtype_family_of(o.weights) == CQ_QFAMILY_AFFINE;
    if (!rc && gs > 0 && !affine)
        rc = conflict("--group-size %s applies to int2/int4 weights; %s weights are per channel", group, weights);
    if (!rc && !cq_qtype_optimizer_applies(o.weights, o.optimizer))
        rc = conflict(affine ? "--optimizer %s is symmetric, --weights %s needs max or hqq"
                             : "--optimizer %s is affine, --weights %s needs absmax",
                      optimizer, weights);
    for (int i = 0; !rc && i < n_include; i++)
        for (int k = 0; !rc && k < n_exclude; k++)
            if (!strcmp(include[i], exclude[k]))
                rc = conflict("--include '%s' and --exclude '%s' name the same modules", include[i], exclude[k]);
    if (!rc) {
        o.group_size = gs;
        o.include = include;
        o.n_include = n_include;
        o.exclude = exclude;
        o.n_exclude = n_exclude;
        o.module_kinds = kinds;
        o.threads = (int)run.threads;
        o.overwrite = force;
        if (dry_run) {
            rc = print_plan(in, &o);
        } else {
            cli_run_begin(&run, &o);
            cq_convert_stats st;
            cq_status s = cq_convert_quantize(in, out, &o, &st, &err);
            cli_run_end(&run);
            if (s) {
                rc = cli_fail(CMD, &err);
            } else if (!run.quiet) {
                char b1[32], b2[32];
                printf("%s: %lld modules quantized to %s (%.3f bits per weight), %lld tensors; %s -> %s in %.2f s "
                       "(%.2f GB/s of input)\n",
                       out, (long long)st.modules, cq_qtype_name(o.weights), st.bits_per_weight, (long long)st.tensors,
                       cli_human_bytes((double)st.bytes_in, b1, sizeof b1),
                       cli_human_bytes((double)st.bytes_out, b2, sizeof b2), st.seconds,
                       st.seconds > 0 ? (double)st.bytes_in / st.seconds / 1e9 : 0.0);
                if (o.activations)
                    printf("note: activation scales are 1.0 (uncalibrated); calibrate before relying on them\n");
            }
        }
    }
    free(include);
    free(exclude);
    return rc;
}
