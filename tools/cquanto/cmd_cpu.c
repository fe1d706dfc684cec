/*
 * cmd_cpu.c - `cquanto cpu`: what the kernel dispatcher sees and chooses. Prints the CPU model,
 * the instruction-set features that passed the OS-support checks, the ISA levels this machine
 * runs, the cap (CQ_ISA or --isa) and, for every kernel op, the variant that runs and the
 * levels that have one. Reads nothing and changes nothing but the cap of its own process.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: cquanto cpu [--isa LEVEL] [--threads N] [--all]\n\n"
            "Prints the detected CPU features, the kernel ISA levels this machine can run, and the\n"
            "kernel chosen for each (op, weight format) with its register tile (rows x columns).\n\n"
            "  --isa LEVEL   cap the level as CQ_ISA does: ref, avx2, avx512, amx (x86) or neon (arm)\n"
            "  --threads N   thread count to report (as CQ_THREADS does)\n"
            "  --all         also list every registered kernel: tile, extra CPU needs, runs here\n"
            "  -h, --help    this help\n\n"
            "exit status: 0 ok, 2 usage error\n");
}

typedef struct {
    const char *name;
    bool on;
} feature;

static void print_features(const cq_cpu_info *c) {
    const feature f[] = {
        {"sse4.2", c->sse4_2},           {"avx", c->avx},
        {"avx2", c->avx2},               {"fma", c->fma},
        {"f16c", c->f16c},               {"avx512f", c->avx512f},
        {"avx512bw", c->avx512bw},       {"avx512vl", c->avx512vl},
        {"avx512dq", c->avx512dq},       {"avx512_vnni", c->avx512_vnni},
        {"avx512_bf16", c->avx512_bf16}, {"avx512_fp16", c->avx512_fp16},
        {"avx_vnni", c->avx_vnni},       {"amx_tile", c->amx_tile},
        {"amx_int8", c->amx_int8},       {"amx_bf16", c->amx_bf16},
        {"neon", c->neon},               {"dotprod", c->dotprod},
        {"i8mm", c->i8mm},               {"fp16", c->fp16},
    };
    printf("features:");
    int any = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].on) printf(" %s", f[i].name), any = 1;
    printf("%s\n", any ? "" : " (none beyond the baseline)");
}

/* The part of a kernel name after "__": its level and any extra features. */
static const char *isa_suffix(const char *name) {
    const char *p = strstr(name, "__");
    return p ? p + 2 : name;
}

static void print_slots(void) {
    printf("%-20s %-15s %-38s %-6s %s\n", "op", "weight", "chosen", "tile", "registered");
    for (int s = 0; s < cq_kernel_slot_count(); s++) {
        cq_kernel_info k, chosen = {0};
        char tile[16], reg[128] = "";
        size_t used = 0;
        for (int i = 0; i < cq_kernel_count(); i++) {
            if (cq_kernel_get(i, &k, NULL) != CQ_OK || k.slot != s) continue;
            if (k.chosen) chosen = k;
            int n = snprintf(reg + used, sizeof reg - used, "%s%s%s", used ? " " : "", isa_suffix(k.name),
                             k.runnable ? "" : "(not here)");
            if (n > 0 && (size_t)n < sizeof reg - used) used += (size_t)n;
        }
        if (!chosen.name) continue; /* cannot happen: ref registers every slot */
        snprintf(tile, sizeof tile, "%dx%d", chosen.mr, chosen.nr);
        printf("%-20s %-15s %-38s %-6s %s\n", chosen.op, chosen.weight[0] ? chosen.weight : "-", chosen.name, tile, reg);
    }
}

static void print_all(void) {
    printf("\n%-38s %-6s %-12s %s\n", "kernel", "tile", "needs", "runs here");
    for (int i = 0; i < cq_kernel_count(); i++) {
        cq_kernel_info k;
        if (cq_kernel_get(i, &k, NULL) != CQ_OK) continue;
        char tile[16];
        snprintf(tile, sizeof tile, "%dx%d", k.mr, k.nr);
        printf("%-38s %-6s %-12s %s\n", k.name, tile, k.needs[0] ? k.needs : "-", k.runnable ? "yes" : "no");
    }
}

int cmd_cpu(int argc, char **argv) {
    bool all = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            cq_isa isa;
            cq_err err = {0};
            if (cq_isa_parse(argv[++i], &isa, &err) != CQ_OK) return cli_usage_error("cpu", "%s", err.msg);
            cq_set_isa_cap(isa, NULL);
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            long n;
            if (cli_parse_int(argv[++i], 1, 4096, &n)) return cli_usage_error("cpu", "--threads needs 1..4096");
            cq_set_num_threads((int)n);
        } else if (!strcmp(argv[i], "--all")) {
            all = true;
        } else {
            return cli_usage_error("cpu", "unexpected argument '%s'", argv[i]);
        }
    }
    const cq_cpu_info *c = cq_cpu_get_info();
    printf("cpu: %s\n", c->model[0] ? c->model : "(unknown model)");
    printf("arch: %s%s%s\n", c->arch, c->vendor[0] ? ", vendor " : "", c->vendor);
    print_features(c);
    printf("levels supported:");
    for (int i = 0; i < CQ_ISA_COUNT; i++)
        if (cq_isa_supported((cq_isa)i)) printf(" %s", cq_isa_name((cq_isa)i));
    cq_isa cap = cq_get_isa_cap();
    printf("\ncap: %s\nactive level: %s\nthreads: %d\n\n", cap == CQ_ISA_COUNT ? "none" : cq_isa_name(cap),
           cq_isa_name(cq_isa_active()), cq_get_num_threads());
    print_slots();
    if (all) print_all();
    return 0;
}
