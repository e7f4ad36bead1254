/* sav-bench: the load generator of `make bench` (tools/bench/bench.py runs it against services it starts).
 *   sav-bench [--config FILE] load [--tickets FILE | --count N] [--per-customer K] [--window W] [--rate R]
 *             [--run ID] [--out FILE] [--pause]
 *       registers the workload's customers and products (customer.add, product.add), then opens its tickets
 *       (ticket.open) with at most W requests in flight, or at R tickets per second; prints one JSON line per
 *       phase (requests, errors, seconds, per second, latency percentiles in microseconds) and, with --out, one
 *       CSV line per ticket: ticket id, UTC time the request left (microseconds), round trip (microseconds).
 *       --pause: after the registrations, prints {"phase": "ready"} and waits for a line on stdin, so that the
 *       caller can measure the ticket phase alone.
 *   sav-bench zmq [--size BYTES] [--count N] [--rtts N]
 *       raw ZeroMQ on this machine, ipc and tcp: one-way messages per second and round-trip percentiles. */
#include "clock.h"
#include "envelope.h"
#include "err.h"
#include "limits.h"
#include "load.h"
#include "settings.h"
#include "workload.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    json_t *doc = NULL;
    Sav__CommandResult *res = NULL;
    Sav__TicketOpened *opened = NULL;
    if (reply->type == SAV__MESSAGE_TYPE__COMMAND_RESULT &&
        (res = (Sav__CommandResult *)envelope_body(reply, &sav__command_result__descriptor)) &&
        (doc = json_loads(res->json, 0, NULL)))
        id = json_string_value(json_object_get(doc, "id"));
    else if (reply->type == SAV__MESSAGE_TYPE__TICKET_OPENED &&
             (opened = (Sav__TicketOpened *)envelope_body(reply, &sav__ticket_opened__descriptor)))
        id = opened->ticket_id;
    if (id) {
        ph->ok++;
        if (strcmp(ph->name, "customers") == 0) snprintf(ph->w->customers[tag].id, sizeof(ph->w->customers[tag].id), "%s", id);
        if (ph->ticket_ids) snprintf(ph->ticket_ids[tag], sizeof(ph->ticket_ids[tag]), "%s", id);
    } else {
        ph->errors++;
        ph->latency_us[tag] = -1;
        Sav__ErrorReply *e = reply->type == SAV__MESSAGE_TYPE__ERROR_REPLY
                                 ? (Sav__ErrorReply *)envelope_body(reply, &sav__error_reply__descriptor)
                                 : NULL;
        if (!ph->first_error[0]) snprintf(ph->first_error, sizeof(ph->first_error), "%s", e ? e->message : "unexpected reply");
        if (e) sav__error_reply__free_unpacked(e, NULL);
    }
    json_decref(doc);
    if (res) sav__command_result__free_unpacked(res, NULL);
    if (opened) sav__ticket_opened__free_unpacked(opened, NULL);
}

/* Packs request tag of a phase into frame with message id mid; 0 or -1 with err. */
typedef int (*bench_pack_fn)(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame);

static int bench_pack_command(const char *name, const char *request_id, Sav__Field **fields, size_t n,
                              const char *mid, envelope_buf *frame) {
    Sav__Command cmd = SAV__COMMAND__INIT;
    cmd.name = (char *)name, cmd.request_id = (char *)request_id;
    cmd.args = fields, cmd.n_args = n;
    return envelope_pack(SAV__MESSAGE_TYPE__COMMAND, mid, NULL, "sav-bench", clock_now_ms(), &cmd.base, frame);
}

#define BENCH_FIELD(i, k, v) (f[i] = (Sav__Field)SAV__FIELD__INIT, f[i].name = (char *)(k), f[i].value = (char *)(v), fp[i] = &f[i])

static int bench_pack_customer(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    const bench_customer *c = &w->customers[tag];
    Sav__Field f[4], *fp[4];
    size_t n = 0;
    BENCH_FIELD(n, "name", c->name), n++;
    if (c->phone[0]) BENCH_FIELD(n, "phone", c->phone), n++;
    if (c->email[0]) BENCH_FIELD(n, "email", c->email), n++;
    BENCH_FIELD(n, "consent", "sms,email"), n++;
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-c-%ld", o->run, tag);
    return bench_pack_command("customer.add", rid, fp, n, mid, frame);
}

static int bench_pack_product(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    const bench_ticket *t = &w->tickets[tag];
    if (!w->customers[t->customer].id[0]) {
        err_set("customer of %s not registered", t->serial);
        return -1;
    }
    Sav__Field f[4], *fp[4];
    BENCH_FIELD(0, "serial", t->serial), BENCH_FIELD(1, "model", t->model);
    BENCH_FIELD(2, "customer", w->customers[t->customer].id), BENCH_FIELD(3, "delivered", t->purchased);
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-p-%ld", o->run, tag);
    return bench_pack_command("product.add", rid, fp, 4, mid, frame);
}

static int bench_pack_ticket(const bench_opts *o, bench_workload *w, long tag, const char *mid, envelope_buf *frame) {
    const bench_ticket *t = &w->tickets[tag];
    char rid[64];
    snprintf(rid, sizeof(rid), "bench-%s-t-%ld", o->run, tag);
    Sav__TicketOpen open = SAV__TICKET_OPEN__INIT;
    char *faults[1] = {(char *)t->fault};
    open.request_id = rid, open.serial = (char *)t->serial, open.model = (char *)t->model;
    open.kind = "repair", open.channel = "drop_off", open.symptom = (char *)t->description;
    open.customer_id = w->customers[t->customer].id;
    if (t->fault[0]) open.fault_codes = faults, open.n_fault_codes = 1;
    if (t->reported[0]) open.requested_on = (char *)t->reported;
    return envelope_pack(SAV__MESSAGE_TYPE__TICKET_OPEN, mid, NULL, "sav-bench", clock_now_ms(), &open.base, frame);
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
    bench_conn *c = ph->latency_us && ph->sent_unix_us ? bench_conn_open(cfg, service, o->window,
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

static int bench_load(const settings *cfg, const bench_opts *o) {
    bench_workload w;
    if ((o->tickets ? bench_workload_read(&w, o->tickets) : bench_workload_generate(&w, o->count, o->per_customer, o->run)) != 0)
        return -1;
    bench_phase cust = {"customers", &w, 0, 0, 0, NULL, NULL, NULL, ""};
    bench_phase prod = {"products", &w, 0, 0, 0, NULL, NULL, NULL, ""};
    bench_phase open = {"tickets", &w, 0, 0, 0, NULL, NULL, calloc((size_t)w.ntickets, 32), ""};
    int rc = open.ticket_ids ? 0 : -1;
    if (rc == 0) rc = bench_phase_run(cfg, o, SVC_INTAKE, &cust, w.ncustomers, bench_pack_customer, 0);
    if (rc == 0 && cust.errors) err_set("customers: %s", cust.first_error), rc = -1;
    if (rc == 0) rc = bench_phase_run(cfg, o, SVC_INTAKE, &prod, w.ntickets, bench_pack_product, 0);
    if (rc == 0 && prod.errors) err_set("products: %s", prod.first_error), rc = -1;
    if (rc == 0 && o->pause) {
        /* The caller measures the ticket phase alone: it answers once it has taken its snapshot. */
        char go[16];
        printf("{\"phase\": \"ready\"}\n");
        fflush(stdout);
        if (!fgets(go, sizeof(go), stdin)) err_set("no go on stdin"), rc = -1;
    }
    if (rc == 0) rc = bench_phase_run(cfg, o, SVC_INTAKE, &open, w.ntickets, bench_pack_ticket, o->rate);
    if (rc == 0 && o->out) rc = bench_write_out(o, &open);
    bench_phase_free(&cust), bench_phase_free(&prod), bench_phase_free(&open);
    bench_workload_free(&w);
    return rc;
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
                 "       sav-bench zmq [--size BYTES] [--count N] [--rtts N]\n");
}

int main(int argc, char **argv) {
    bench_opts o = {NULL, NULL, NULL, NULL, 10000, 20000, 10, 256, 0, 0, 200};
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
        case 'w': o.window = atoi(optarg); break;
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
    if (optind >= argc || o.count < 1 || o.per_customer < 1 || o.window < 1 || o.size < 1 || o.rtts < 1) {
        bench_usage(stderr);
        return 1;
    }
    settings cfg;
    if (settings_load(&cfg, o.config) != 0 || clock_init() != 0) {
        fprintf(stderr, "sav-bench: %s\n", err_get());
        return 1;
    }
    int rc = strcmp(argv[optind], "load") == 0 ? bench_load(&cfg, &o) : strcmp(argv[optind], "zmq") == 0 ? bench_zmq(&o) : -2;
    if (rc == -2) bench_usage(stderr);
    else if (rc != 0) fprintf(stderr, "sav-bench: %s\n", err_get());
    return rc == 0 ? 0 : 1;
}
