/* sav-bench: the load generator of `make bench` (tools/bench/bench.py runs it against services it starts).
 *   sav-bench [--config FILE] load [--tickets FILE | --count N] [--per-customer K] [--window W] [--rate R]
 *             [--run ID] [--out FILE] [--pause]
 *       registers the workload's customers and products (customer.add, product.add), then opens its tickets
 *       (ticket.open) with at most W (default 256) requests in flight, or at R tickets per second; prints one JSON
 *       line per phase (requests, errors, seconds, per second, latency percentiles in microseconds) and, with --out,
 *       one CSV line per ticket: ticket id, UTC time the request left (microseconds), round trip (microseconds).
 *       --pause: after the registrations, prints {"phase": "ready"} and waits for a line on stdin, so that the
 *       caller can measure the ticket phase alone.
 *   sav-bench [--config FILE] lifecycle [--tickets FILE | --count N] [--per-customer K] [--window W] [--run ID]
 *             [--out FILE] [--pause]
 *       registers the workload as load does, receives at the default centre the parts its verdicts will need, then
 *       takes every ticket through a complete chargeable repair (open, diagnose, quote accept, repair done, ticket
 *       show until the invoice is there, payment, pickup: tools/bench/lifecycles.h) with at most W (default 50)
 *       lifecycles in flight; prints the registration phases, one JSON line per step and the "lifecycles" summary;
 *       --out: one CSV line per finished lifecycle (lifecycles.h). --pause as for load.
 *   sav-bench [--config FILE] smpp [--window W] [--count N]
 *       the SMSC of notification.smpp_* alone, as sav-notification meets it (tools/bench/smppload.h): N (default
 *       10000) one-part submit_sm from "BENCH" with at most W (default notification.smpp_window) unanswered;
 *       prints one JSON line: submitted, accepted, refused, receipts, seconds, submit_sm_resp per second, round
 *       trip percentiles.
 *   sav-bench zmq [--size BYTES] [--count N] [--rtts N]
 *       raw ZeroMQ on this machine, ipc and tcp: one-way messages per second and round-trip percentiles. */
#include "clock.h"
#include "envelope.h"
#include "err.h"
#include "lifecycles.h"
#include "limits.h"
#include "load.h"
#include "request.h"
#include "settings.h"
#include "smppload.h"
#include "workload.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_LOAD_WINDOW 256      /* requests in flight */
#define BENCH_LIFECYCLE_WINDOW 50 /* lifecycles in flight (on 2 cores, 200 only queued: fewer per second) */

typedef struct bench_opts {
    const char *config, *tickets, *out, *run;
    long count, rtts;
    int per_customer, window, pause;
    double rate;
    size_t size;
} bench_opts;

/* The figures of one phase: a latency per request, and what came back. */
typedef struct bench_phase {
    const char *name;
    bench_workload *w;
    long requests, ok, errors;
    int64_t *latency_us;
    int64_t *sent_unix_us;
    char (*ticket_ids)[32];
    char first_error[256];
} bench_phase;

static int bench_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t bench_unix_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Takes a reply: a CommandResult carrying {"id": ...}, a TicketOpened, or an ErrorReply. */
static void bench_on_reply(void *ctx, long tag, const Sav__Envelope *reply, int64_t latency_us) {
    bench_phase *ph = ctx;
    ph->latency_us[tag] = latency_us;
    const char *id = NULL;
    json_t *doc = bench_reply_json(reply);
    Sav__TicketOpened *opened = NULL;
    if (doc)
        id = json_string_value(json_object_get(doc, "id"));
    else if (reply->type == SAV__MESSAGE_TYPE__TICKET_OPENED &&
             (opened = (Sav__TicketOpened *)envelope_body(reply, &sav__ticket_opened__descriptor)))
        id = opened->ticket_id;
    if (id) {
        ph->ok++;
        if (strcmp(ph->name, "customers") == 0) snprintf(ph->w->customers[tag].id, sizeof(ph->w->customers[tag].id), "%s", id);
        if (ph->ticket_ids) snprintf(ph->ticket_ids[tag], sizeof(ph->ticket_ids[tag]), "%s", id);
    } else {
        char why[256];
        ph->errors++;
        ph->latency_us[tag] = -1;
        if (!bench_reply_error(reply, why, sizeof(why))) snprintf(why, sizeof(why), "unexpected reply");
        if (!ph->first_error[0]) snprintf(ph->first_error, sizeof(ph->first_error), "%s", why);
    }
    json_decref(doc);
    if (opened) sav__ticket_opened__free_unpacked(opened, NULL);
}

/* Packs request tag of a phase into frame with message id mid; 0 or -1 with err. */
typedef int (*bench_pack_fn)(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame);

static int bench_pack_customer(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    const bench_customer *c = &w->customers[tag];
    const char *kv[8];
    size_t n = 0;
    kv[2 * n] = "name", kv[2 * n + 1] = c->name, n++;
    if (c->phone[0]) kv[2 * n] = "phone", kv[2 * n + 1] = c->phone, n++;
    if (c->email[0]) kv[2 * n] = "email", kv[2 * n + 1] = c->email, n++;
    kv[2 * n] = "consent", kv[2 * n + 1] = "sms,email", n++;
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-c-%ld", o->run, tag);
    return bench_request_command("customer.add", rid, kv, n, mid, frame);
}

static int bench_pack_product(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    const bench_ticket *t = &w->tickets[tag];
    if (!w->customers[t->customer].id[0]) {
        err_set("customer of %s not registered", t->serial);
        return -1;
    }
    const char *kv[] = {"serial", t->serial, "model", t->model, "customer", w->customers[t->customer].id,
                        "delivered", t->purchased};
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-p-%ld", o->run, tag);
    return bench_request_command("product.add", rid, kv, 4, mid, frame);
}

static int bench_pack_ticket(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-t-%ld", o->run, tag);
    return bench_request_open(&w->tickets[tag], w->customers[w->tickets[tag].customer].id, rid, mid, frame);
}

/* Prints the phase's JSON summary line. */
static void bench_report(const bench_phase *ph, int64_t took_us) {
    int64_t *sorted = malloc(sizeof(int64_t) * (size_t)(ph->requests ? ph->requests : 1));
    long n = 0;
    for (long i = 0; sorted && i < ph->requests; i++)
        if (ph->latency_us[i] >= 0) sorted[n++] = ph->latency_us[i];
    if (sorted) qsort(sorted, (size_t)n, sizeof(*sorted), bench_cmp_i64);
    double secs = (double)took_us / 1e6;
    printf("{\"phase\": \"%s\", \"requests\": %ld, \"ok\": %ld, \"errors\": %ld, \"seconds\": %.3f, "
           "\"per_second\": %.1f, \"p50_us\": %lld, \"p99_us\": %lld, \"p999_us\": %lld, \"max_us\": %lld, "
           "\"first_error\": \"%s\"}\n",
           ph->name, ph->requests, ph->ok, ph->errors, secs, secs > 0 ? (double)ph->ok / secs : 0,
           (long long)(n ? sorted[n / 2] : 0), (long long)(n ? sorted[n * 99 / 100] : 0),
           (long long)(n ? sorted[n * 999 / 1000] : 0), (long long)(n ? sorted[n - 1] : 0), ph->first_error);
    fflush(stdout);
    free(sorted);
}

/* Runs one phase of count requests against service; 0, or -1 with err. */
static int bench_phase_run(const settings *cfg, const bench_opts *o, enum service_id service, bench_phase *ph,
                           long count, bench_pack_fn pack, double rate) {
    ph->requests = count;
    ph->latency_us = calloc((size_t)(count ? count : 1), sizeof(int64_t));
    ph->sent_unix_us = calloc((size_t)(count ? count : 1), sizeof(int64_t));
    int window = o->window ? o->window : BENCH_LOAD_WINDOW;
    bench_conn *c = ph->latency_us && ph->sent_unix_us ? bench_conn_open(cfg, service, window,
                                                                          bench_on_reply, ph)
                                                        : NULL;
    if (!c) return -1;
    for (long i = 0; i < count; i++) ph->latency_us[i] = -1;
    int64_t start = bench_now_us();
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        if (rate > 0) {
            int64_t due = start + (int64_t)((double)i * 1e6 / rate);
            /* Rounded up: a wait under a millisecond would be a zero timeout, a busy loop taking a core from
             * the services it measures. A send is at most that late; the next ones catch up with the schedule. */
            for (int64_t now = bench_now_us(); now < due && rc == 0; now = bench_now_us())
                if (bench_poll(c, (int)((due - now + 999) / 1000)) < 0) rc = -1;
        }
        char mid[ENVELOPE_ID_LEN];
        snprintf(mid, sizeof(mid), "bench-%s-%s-%ld", o->run, ph->name, i);
        envelope_buf frame;
        if (rc != 0 || pack(o, ph->w, i, mid, &frame) != 0) {
            rc = -1;
            break;
        }
        ph->sent_unix_us[i] = bench_unix_us();
        rc = bench_send(c, &frame, mid, i);
        envelope_buf_free(&frame);
    }
    long lost = bench_drain(c, 10000);
    bench_report(ph, bench_now_us() - start);
    bench_conn_close(c);
    if (lost) fprintf(stderr, "sav-bench: %s: %ld request(s) got no answer\n", ph->name, lost);
    return rc;
}

static int bench_write_out(const bench_opts *o, const bench_phase *ph) {
    FILE *f = fopen(o->out, "w");
    if (!f) {
        err_set("cannot write %s", o->out);
        return -1;
    }
    for (long i = 0; i < ph->requests; i++)
        if (ph->latency_us[i] >= 0)
            fprintf(f, "%s,%lld,%lld\n", ph->ticket_ids[i], (long long)ph->sent_unix_us[i], (long long)ph->latency_us[i]);
    return fclose(f) == 0 ? 0 : -1;
}

static void bench_phase_free(bench_phase *ph) {
    free(ph->latency_us);
    free(ph->sent_unix_us);
    free(ph->ticket_ids);
}

/* Reads or generates the workload and registers its customers and products; then, with --pause, waits for the
 * caller's go. 0, or -1 with err (w freed). */
static int bench_prepare(const settings *cfg, const bench_opts *o, bench_workload *w) {
    if ((o->tickets ? bench_workload_read(w, o->tickets) : bench_workload_generate(w, o->count, o->per_customer, o->run)) != 0)
        return -1;
    bench_phase cust = {"customers", w, 0, 0, 0, NULL, NULL, NULL, ""};
    bench_phase prod = {"products", w, 0, 0, 0, NULL, NULL, NULL, ""};
    int rc = bench_phase_run(cfg, o, SVC_INTAKE, &cust, w->ncustomers, bench_pack_customer, 0);
    if (rc == 0 && cust.errors) err_set("customers: %s", cust.first_error), rc = -1;
    if (rc == 0) rc = bench_phase_run(cfg, o, SVC_INTAKE, &prod, w->ntickets, bench_pack_product, 0);
    if (rc == 0 && prod.errors) err_set("products: %s", prod.first_error), rc = -1;
    bench_phase_free(&cust), bench_phase_free(&prod);
    if (rc != 0) bench_workload_free(w);
    return rc;
}

/* With --pause, the caller measures what follows alone: it answers once it has taken its snapshot. */
static int bench_pause(const bench_opts *o) {
    char go[16];
    if (!o->pause) return 0;
    printf("{\"phase\": \"ready\"}\n");
    fflush(stdout);
    if (!fgets(go, sizeof(go), stdin)) {
        err_set("no go on stdin");
        return -1;
    }
    return 0;
}

static int bench_load(const settings *cfg, const bench_opts *o) {
    bench_workload w;
    if (bench_prepare(cfg, o, &w) != 0) return -1;
    bench_phase open = {"tickets", &w, 0, 0, 0, NULL, NULL, calloc((size_t)w.ntickets, 32), ""};
    int rc = open.ticket_ids ? bench_pause(o) : -1;
    if (!open.ticket_ids) err_set("out of memory");
    if (rc == 0) rc = bench_phase_run(cfg, o, SVC_INTAKE, &open, w.ntickets, bench_pack_ticket, o->rate);
    if (rc == 0 && o->out) rc = bench_write_out(o, &open);
    bench_phase_free(&open);
    bench_workload_free(&w);
    return rc;
}

static int bench_lifecycle(const settings *cfg, const bench_opts *o) {
    bench_workload w;
    if (bench_prepare(cfg, o, &w) != 0) return -1;
    FILE *out = NULL;
    int rc = bench_lifecycles_stock(cfg, &w, o->run);
    if (rc == 0 && o->out && !(out = fopen(o->out, "w"))) err_set("cannot write %s", o->out), rc = -1;
    if (rc == 0) rc = bench_pause(o);
    if (rc == 0) rc = bench_lifecycles_run(cfg, &w, o->run, o->window ? o->window : BENCH_LIFECYCLE_WINDOW, out);
    if (out && fclose(out) != 0 && rc == 0) err_set("cannot write %s", o->out), rc = -1;
    bench_workload_free(&w);
    return rc;
}

static int bench_smpp(const bench_opts *o) {
    settings cfg;
    bench_smpp_figures f;
    /* As the notification service's: only its settings hold the SMSC's password. */
    if (settings_load_service(&cfg, o->config, SVC_NOTIFICATION) != 0) return -1;
    if (strcmp(cfg.smpp_host, "off") == 0) {
        err_set("notification.smpp_host is off: no SMSC to measure");
        return -1;
    }
    int window = o->window ? o->window : cfg.smpp_window;
    if (bench_smpp_ceiling(&cfg, "BENCH", window, o->count, &f) != 0) return -1;
    printf("{\"smpp\": \"%s:%d\", \"window\": %d, \"submitted\": %ld, \"accepted\": %ld, \"refused\": %ld, "
           "\"receipts\": %ld, \"seconds\": %.3f, \"resp_per_s\": %.1f, \"rtt_p50_us\": %.0f, \"rtt_p99_us\": %.0f}\n",
           cfg.smpp_host, cfg.smpp_port, window, f.submitted, f.accepted, f.refused, f.receipts, f.seconds,
           f.resp_per_s, f.rtt_p50_us, f.rtt_p99_us);
    return 0;
}

static int bench_zmq(const bench_opts *o) {
    static const char *const transports[] = {"ipc", "tcp"};
    for (int i = 0; i < 2; i++) {
        bench_zmq_figures fig;
        if (bench_zmq_limits(transports[i], o->size, o->count, o->rtts, &fig) != 0) return -1;
        printf("{\"zmq\": \"%s\", \"size\": %zu, \"msgs_per_s\": %.0f, \"rtt_p50_us\": %.1f, \"rtt_p99_us\": %.1f}\n",
               transports[i], o->size, fig.msgs_per_s, fig.rtt_p50_us, fig.rtt_p99_us);
    }
    return 0;
}

static void bench_usage(FILE *out) {
    fprintf(out, "usage: sav-bench [--config FILE] load [--tickets FILE | --count N] [--per-customer K] [--window W]\n"
                 "                 [--rate R] [--run ID] [--out FILE] [--pause]\n"
                 "       sav-bench [--config FILE] lifecycle [--tickets FILE | --count N] [--per-customer K]\n"
                 "                 [--window W] [--run ID] [--out FILE] [--pause]\n"
                 "       sav-bench [--config FILE] smpp [--window W] [--count N]\n"
                 "       sav-bench zmq [--size BYTES] [--count N] [--rtts N]\n");
}

/* Runs the subcommand; -2 when there is no such subcommand. */
static int bench_dispatch(const settings *cfg, const bench_opts *o, const char *what) {
    if (strcmp(what, "load") == 0) return bench_load(cfg, o);
    if (strcmp(what, "lifecycle") == 0) return bench_lifecycle(cfg, o);
    if (strcmp(what, "smpp") == 0) return bench_smpp(o);
    if (strcmp(what, "zmq") == 0) return bench_zmq(o);
    return -2;
}

int main(int argc, char **argv) {
    bench_opts o = {NULL, NULL, NULL, NULL, 10000, 20000, 10, 0, 0, 0, 200};
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"tickets", required_argument, 0, 't'},
        {"count", required_argument, 0, 'n'},  {"per-customer", required_argument, 0, 'k'},
        {"window", required_argument, 0, 'w'}, {"rate", required_argument, 0, 'r'},
        {"run", required_argument, 0, 'i'},    {"out", required_argument, 0, 'o'},
        {"size", required_argument, 0, 's'},   {"rtts", required_argument, 0, 'R'},
        {"pause", no_argument, 0, 'p'},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    char run[32];
    snprintf(run, sizeof(run), "%lx", (unsigned long)time(NULL));
    o.run = run;
    for (int ch; (ch = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (ch) {
        case 'c': o.config = optarg; break;
        case 't': o.tickets = optarg; break;
        case 'n': o.count = atol(optarg); break;
        case 'k': o.per_customer = atoi(optarg); break;
        case 'w': o.window = atoi(optarg) > 0 ? atoi(optarg) : -1; break; /* 0 stands for each subcommand's default */
        case 'r': o.rate = atof(optarg); break;
        case 'i': o.run = optarg; break;
        case 'o': o.out = optarg; break;
        case 's': o.size = (size_t)atol(optarg); break;
        case 'R': o.rtts = atol(optarg); break;
        case 'p': o.pause = 1; break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 1;
        }
    }
    if (optind >= argc || o.count < 1 || o.per_customer < 1 || o.window < 0 || o.size < 1 || o.rtts < 1) {
        bench_usage(stderr);
        return 1;
    }
    settings cfg;
    if (settings_load(&cfg, o.config) != 0 || clock_init() != 0) {
        fprintf(stderr, "sav-bench: %s\n", err_get());
        return 1;
    }
    int rc = bench_dispatch(&cfg, &o, argv[optind]);
    if (rc == -2) bench_usage(stderr);
    else if (rc != 0) fprintf(stderr, "sav-bench: %s\n", err_get());
    return rc == 0 ? 0 : 1;
}
