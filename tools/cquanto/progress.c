/*
 * progress.c - progress line, cancel handling and option helpers for the checkpoint commands
 * (see progress.h). Output only; no decisions about the work.
 */
#include "progress.h"

#include <string.h>
#include <unistd.h>

volatile int cli_cancel_flag;

static void on_signal(int sig) {
    (void)sig;
    cli_cancel_flag = 1;
}

void cli_install_cancel_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART; /* writes in flight finish; the flag is polled between items */
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
