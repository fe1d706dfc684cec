/*
 * progress.c - progress line, cancel handling and option helpers for the checkpoint commands
 * (see progress.h). Output only; no decisions about the work.
 */
#include "progress.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile int g_cancel;

static void on_signal(int sig) {
    (void)sig;
    g_cancel = 1;
}

/* No SA_RESTART: a blocking call returns EINTR (every read and write loop retries it), so the
 * flag is seen at once. SA_RESETHAND: a second signal has its default effect. */
static void install_cancel_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_progress_init(cli_progress *p, bool quiet) {
    memset(p, 0, sizeof *p);
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->last_draw = -1.0;
}

void cli_progress_cb(const cq_convert_progress *pr, void *user) {
    cli_progress *p = user;
    if (!p->enabled) return;
    bool last = pr->tensors_done >= pr->tensors_total;
    if (!last && pr->seconds - p->last_draw < 0.1) return;
    p->last_draw = pr->seconds;
    char line[256], done[80], rate[48] = "", eta[32] = "";
    if (pr->bytes_total) {
        char a[32], b[32];
        snprintf(done, sizeof done, "%s of %s", cli_human_bytes((double)pr->bytes_done, a, sizeof a),
                 cli_human_bytes((double)pr->bytes_total, b, sizeof b));
        if (pr->seconds > 0.05) {
            double gbs = (double)pr->bytes_done / pr->seconds / 1e9;
            snprintf(rate, sizeof rate, "  %.2f GB/s", gbs);
            if (pr->bytes_done > 0 && !last) {
                double left = pr->seconds * ((double)pr->bytes_total / (double)pr->bytes_done - 1.0);
                snprintf(eta, sizeof eta, "  ETA %d:%02d", (int)left / 60, (int)left % 60);
            }
        }
    } else {
        done[0] = '\0';
    }
    int n = snprintf(line, sizeof line, "[%lld/%lld tensors] %s%s%s  %.40s", (long long)pr->tensors_done,
                     (long long)pr->tensors_total, done, rate, eta, pr->current ? pr->current : "");
    if (n < 0) return;
    if (n >= (int)sizeof line) n = (int)sizeof line - 1;
    fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
    p->width = n;
    fflush(stderr);
}

void cli_progress_end(cli_progress *p) {
    if (!p->enabled || !p->width) return;
    fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}

const char *cli_opt_value(int argc, char **argv, int *i, const char *name, bool *missing) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    *missing = false;
    if (strncmp(a, name, n)) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

int cli_run_option(cli_run *r, int argc, char **argv, int *i) {
    const char *a = argv[*i], *v;
    bool missing = false;
    if (cli_is_help(a)) {
        r->usage(stdout);
        return 0;
    }
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
        r->quiet = true;
        return CLI_OPT_TAKEN;
    }
    if ((v = cli_opt_value(argc, argv, i, "--threads", &missing)) || missing) {
        if (missing || cli_parse_int(v, 1, 4096, &r->threads))
            return cli_usage_error(r->cmd, "--threads needs a number from 1 to 4096");
        return CLI_OPT_TAKEN;
    }
    return CLI_OPT_OTHER;
}

int cli_run_next(cli_run *r, int argc, char **argv, int *i) {
    while (++*i < argc) {
        int shared = cli_run_option(r, argc, argv, i);
        if (shared != CLI_OPT_TAKEN) return shared;
    }
    return CLI_ARGS_END;
}

static void on_progress(const cq_convert_progress *p, void *user) {
    cli_progress_cb(p, &((cli_run *)user)->progress);
}

static void on_notice(const char *msg, void *user) {
    cli_run *r = user;
    cli_progress_end(&r->progress);
    fprintf(stderr, "cquanto %s: %s\n", r->cmd, msg);
}

void cli_run_begin(cli_run *r, cq_convert_opts *o) {
    cli_progress_init(&r->progress, r->quiet);
    install_cancel_handlers();
    o->threads = (int)r->threads;
    o->cancel = &g_cancel;
    o->progress = on_progress;
    o->progress_user = r;
    o->notice = on_notice;
}

void cli_run_end(cli_run *r) { cli_progress_end(&r->progress); }
