#include "lifecycles.h"
#include "err.h"
#include "load.h"
#include "request.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_WAIT_FIRST_US 10000
#define BENCH_WAIT_MAX_US 200000
#define BENCH_STEP_GIVE_UP_US 60000000LL /* a step still refused after a minute is an error */
#define BENCH_SILENCE_US 60000000LL      /* no answer at all for a minute: the run is broken */
#define BENCH_STOCK_CHUNK 100000         /* parts.receive takes at most this many at once */

enum bench_step {
    BENCH_OPEN, BENCH_DIAGNOSE, BENCH_ACCEPT, BENCH_REPAIR, BENCH_INVOICE, BENCH_PAY, BENCH_PICKUP, BENCH_STEPS
};

/* What a reply makes of a step. */
enum bench_outcome { BENCH_TAKEN, BENCH_WAIT, BENCH_FAILED };

typedef struct bench_step_def {
    const char *name;
    char letter; /* in the step's request id */
    enum service_id service;
    const char *field, *want; /* the answer's field and the value it must have, for a Command */
    int follows_pipeline;     /* a refusal or "not found" means the pipeline has not got there yet */
} bench_step_def;

static const bench_step_def bench_steps[BENCH_STEPS] = {
    {"ticket.open", 't', SVC_INTAKE, NULL, NULL, 0},
    {"diagnose", 'd', SVC_DIAGNOSTICS, "state", "awaiting_approval", 1},
    {"quote.accept", 'a', SVC_BILLING, "state", "in_repair", 1},
    {"repair.done", 'r', SVC_DIAGNOSTICS, "state", "ready", 1},
    {"ticket.show", 's', SVC_INTAKE, NULL, NULL, 1},
    {"payment.record", 'p', SVC_BILLING, "status", "paid", 0},
    {"ticket.pickup", 'k', SVC_INTAKE, "state", "closed", 0},
};

/* The part a verdict replaces, per model of the sample catalog; the first for any other model. Each is stocked at
 * the default centre before the run. */
static const char *const bench_parts[][2] = {
    {"WM-7000", "RES-2000W"}, {"DW-450", "DW-HEATPUMP"}, {"FR-300", "FR-FAN"},
    {"OV-900", "OV-ELEM"},    {"BO-24", "BO-IGN"},
};
#define BENCH_NPARTS (sizeof(bench_parts) / sizeof(bench_parts[0]))

/* What one lifecycle did, kept for the report. */
typedef struct bench_record {
    char tid[32], invoice[32];
    int64_t start_unix_us, start_us;
    int64_t done_us[BENCH_STEPS], rtt_us[BENCH_STEPS];
    int waits, finished, failed;
} bench_record;

/* A lifecycle in flight. */
typedef struct bench_life {
    long index; /* its workload ticket, -1 for a free slot */
    int step, attempts;
    long long balance;
    int64_t due_us;   /* when its step goes (again); 0 while the step is in flight */
    int64_t since_us; /* when its step was first sent */
} bench_life;

typedef struct bench_driver {
    const bench_workload *w;
    const char *run;
    bench_conn *conns[SVC_COUNT];
    bench_conn *polled[SVC_COUNT];
    int npolled;
    bench_life *lives;
    int window, active;
    bench_record *records;
    long next, finished, failed;
    long requests[BENCH_STEPS], waits[BENCH_STEPS];
    int64_t pace_us[BENCH_STEPS]; /* how long a step has lately taken to become possible (moving average) */
    char first_error[512];
    char last_wait[BENCH_STEPS][256];
} bench_driver;

static size_t bench_part_index(const bench_ticket *t) {
    for (size_t i = 0; i < BENCH_NPARTS; i++)
        if (strcmp(bench_parts[i][0], t->model) == 0) return i;
    return 0;
}

const char *bench_lifecycles_part(const bench_ticket *t) { return bench_parts[bench_part_index(t)][1]; }

static int64_t bench_unix_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- stock */

typedef struct bench_stock {
    long answered, refused;
    char first_error[256];
} bench_stock;

static void bench_on_stock_reply(void *ctx, long tag, const Sav__Envelope *reply, int64_t latency_us) {
    bench_stock *st = ctx;
    char why[256];
    json_t *doc = bench_reply_json(reply);
    (void)tag, (void)latency_us;
    st->answered++;
    if (!doc) {
        st->refused++;
        if (!bench_reply_error(reply, why, sizeof(why))) snprintf(why, sizeof(why), "unexpected reply");
        if (!st->first_error[0]) snprintf(st->first_error, sizeof(st->first_error), "%s", why);
    }
    json_decref(doc);
}

/* Sends one parts.receive of qty parts; 0 or -1 with err. */
static int bench_stock_send(bench_conn *c, const settings *cfg, const char *run, const char *part, long qty, long k) {
    char rid[96], mid[ENVELOPE_ID_LEN], quantity[24];
    snprintf(rid, sizeof(rid), "bench-%s-stock-%s-%ld", run, part, k);
    snprintf(mid, sizeof(mid), "bench-%s-stock-%ld", run, k);
    snprintf(quantity, sizeof(quantity), "%ld", qty);
    const char *kv[] = {"centre", cfg->default_centre, "part", part, "quantity", quantity, "reason", "sav-bench"};
    envelope_buf frame = {0};
    int rc = bench_request_command("parts.receive", rid, kv, 4, mid, &frame);
    if (rc == 0) rc = bench_send(c, &frame, mid, k);
    envelope_buf_free(&frame);
    return rc;
}

int bench_lifecycles_stock(const settings *cfg, const bench_workload *w, const char *run) {
    long need[BENCH_NPARTS] = {0};
    for (long i = 0; i < w->ntickets; i++) need[bench_part_index(&w->tickets[i])]++;
    bench_stock st = {0, 0, ""};
    bench_conn *c = bench_conn_open(cfg, SVC_DIAGNOSTICS, 16, bench_on_stock_reply, &st);
    if (!c) return -1;
    int rc = 0;
    long sent = 0;
    for (size_t p = 0; p < BENCH_NPARTS && rc == 0; p++)
        for (long left = need[p]; left > 0 && rc == 0; left -= BENCH_STOCK_CHUNK)
            rc = bench_stock_send(c, cfg, run, bench_parts[p][1], left < BENCH_STOCK_CHUNK ? left : BENCH_STOCK_CHUNK,
                                  sent++);
    long lost = rc == 0 ? bench_drain(c, 10000) : 0;
    bench_conn_close(c);
    if (rc == 0 && (lost || st.refused)) {
        err_set("parts.receive: %ld of %ld unanswered, %ld refused%s%s", lost, sent, st.refused,
                st.first_error[0] ? ": " : "", st.first_error);
        rc = -1;
    }
    return rc;
}

/* ---- one lifecycle */

static void bench_life_fail(bench_driver *d, bench_life *l, const char *why) {
    bench_record *r = &d->records[l->index];
    if (!d->first_error[0])
        snprintf(d->first_error, sizeof(d->first_error), "%s %s: %s", r->tid[0] ? r->tid : "(no ticket yet)",
                 bench_steps[l->step].name, why);
    r->failed = 1;
    d->failed++;
    d->finished++;
    d->active--;
    l->index = -1;
}

static void bench_life_finish(bench_driver *d, bench_life *l) {
    d->records[l->index].finished = 1;
    d->finished++;
    d->active--;
    l->index = -1;
}

/* Packs the request of the lifecycle's current step; 0 or -1 with err. */
static int bench_life_pack(const bench_driver *d, const bench_life *l, const char *rid, const char *mid,
                           envelope_buf *frame) {
    const bench_ticket *t = &d->w->tickets[l->index];
    const bench_record *r = &d->records[l->index];
    switch (l->step) {
    case BENCH_OPEN:
        return bench_request_open(t, d->w->customers[t->customer].id, rid, mid, frame);
    case BENCH_DIAGNOSE: {
        const char *kv[] = {"id", r->tid, "cause", "wear", "action", "replace_parts", "part", bench_lifecycles_part(t),
                            "labour", "45"};
        return bench_request_command("diagnose", rid, kv, 5, mid, frame);
    }
    case BENCH_INVOICE:
        return bench_request_show(r->tid, mid, frame);
    case BENCH_PAY: {
        char amount[24];
        snprintf(amount, sizeof(amount), "%lld", l->balance);
        const char *kv[] = {"invoice", r->invoice, "amount", amount, "method", "card"};
        return bench_request_command("payment.record", rid, kv, 3, mid, frame);
    }
    default: {
        const char *kv[] = {"id", r->tid};
        return bench_request_command(bench_steps[l->step].name, rid, kv, 1, mid, frame);
    }
    }
}

/* Sends the lifecycle's current step (slot is its tag); 0 or -1 with err. */
static int bench_life_send(bench_driver *d, int slot) {
    bench_life *l = &d->lives[slot];
    char rid[64], mid[ENVELOPE_ID_LEN];
    snprintf(rid, sizeof(rid), "bench-%s-%c-%ld", d->run, bench_steps[l->step].letter, l->index);
    snprintf(mid, sizeof(mid), "bench-%s-%ld-%d-%d", d->run, l->index, l->step, l->attempts);
    envelope_buf frame = {0};
    int rc = bench_life_pack(d, l, rid, mid, &frame);
    if (rc == 0) {
        int64_t now = bench_now_us();
        if (l->attempts++ == 0) l->since_us = now;
        if (l->step == BENCH_OPEN) {
            d->records[l->index].start_us = now;
            d->records[l->index].start_unix_us = bench_unix_now_us();
        }
        l->due_us = 0;
        d->requests[l->step]++;
        rc = bench_send(d->conns[bench_steps[l->step].service], &frame, mid, slot);
    }
    envelope_buf_free(&frame);
    return rc;
}

static enum bench_outcome bench_take_opened(const Sav__Envelope *reply, bench_record *r) {
    Sav__TicketOpened *o = reply->type == SAV__MESSAGE_TYPE__TICKET_OPENED
                               ? (Sav__TicketOpened *)envelope_body(reply, &sav__ticket_opened__descriptor)
                               : NULL;
    if (!o) {
        err_set("unexpected reply to ticket.open");
        return BENCH_FAILED;
    }
    snprintf(r->tid, sizeof(r->tid), "%s", o->ticket_id);
    sav__ticket_opened__free_unpacked(o, NULL);
    return BENCH_TAKEN;
}

/* The ticket's view: its invoice's id and balance once billing issued it, else a wait. */
static enum bench_outcome bench_take_invoice(const Sav__Envelope *reply, bench_record *r, bench_life *l) {
    Sav__TicketView *v = reply->type == SAV__MESSAGE_TYPE__TICKET_VIEW
                             ? (Sav__TicketView *)envelope_body(reply, &sav__ticket_view__descriptor)
                             : NULL;
    if (!v) {
        err_set("unexpected reply to ticket.show");
        return BENCH_FAILED;
    }
    const char *id = NULL, *balance = NULL;
    for (size_t i = 0; i < v->n_invoice; i++) {
        if (strcmp(v->invoice[i]->name, "id") == 0) id = v->invoice[i]->value;
        if (strcmp(v->invoice[i]->name, "balance_cents") == 0) balance = v->invoice[i]->value;
    }
    enum bench_outcome out = BENCH_TAKEN;
    if (!id || !id[0]) {
        err_set("no invoice issued yet");
        out = BENCH_WAIT;
    } else if (!balance || (l->balance = atoll(balance)) <= 0) {
        err_set("invoice %s has a balance of %s, want an amount due before the pickup", id, balance ? balance : "none");
        out = BENCH_FAILED;
    } else {
        snprintf(r->invoice, sizeof(r->invoice), "%s", id);
    }
    sav__ticket_view__free_unpacked(v, NULL);
    return out;
}

/* A Command's answer: its state (or status) must be the one the step leads to. */
static enum bench_outcome bench_take_result(const Sav__Envelope *reply, const bench_step_def *def) {
    json_t *doc = bench_reply_json(reply);
    const char *got = doc ? json_string_value(json_object_get(doc, def->field)) : NULL;
    enum bench_outcome out = got && strcmp(got, def->want) == 0 ? BENCH_TAKEN : BENCH_FAILED;
    if (out == BENCH_FAILED)
        err_set("%s is %s, want %s", def->field, got ? got : doc ? "missing" : "(not a command result)", def->want);
    json_decref(doc);
    return out;
}

/* Reads a reply to the lifecycle's step. Redis unavailable is a wait; so are the refusals of a step that follows
 * the pipeline, which only mean "not yet". */
static enum bench_outcome bench_life_take(bench_driver *d, bench_life *l, const Sav__Envelope *reply) {
    char why[256];
    int code = bench_reply_error(reply, why, sizeof(why));
    if (code) {
        err_set("%s", why);
        return code == SAV__ERROR_CODE__ERR_UNAVAILABLE ||
                       (bench_steps[l->step].follows_pipeline &&
                        (code == SAV__ERROR_CODE__ERR_REJECTED || code == SAV__ERROR_CODE__ERR_NOT_FOUND))
                   ? BENCH_WAIT
                   : BENCH_FAILED;
    }
    bench_record *r = &d->records[l->index];
    switch (l->step) {
    case BENCH_OPEN:
        return bench_take_opened(reply, r);
    case BENCH_INVOICE:
        return bench_take_invoice(reply, r, l);
    default:
        return bench_take_result(reply, &bench_steps[l->step]);
    }
}

/* Learns how long the pipeline takes to make a step possible (its answer's time after the previous step's, less
 * its own round trip): the step's first attempt waits about that long, so that a slow pipeline is not polled. */
static void bench_pace(bench_driver *d, int step, int64_t took_us) {
    d->pace_us[step] += ((took_us > 0 ? took_us : 0) - d->pace_us[step]) / 8;
}

static void bench_on_life_reply(void *ctx, long tag, const Sav__Envelope *reply, int64_t latency_us) {
    bench_driver *d = ctx;
    bench_life *l = &d->lives[tag];
    bench_record *r = &d->records[l->index];
    int64_t now = bench_now_us();
    switch (bench_life_take(d, l, reply)) {
    case BENCH_TAKEN:
        r->rtt_us[l->step] = latency_us;
        r->done_us[l->step] = now;
        bench_pace(d, l->step, now - (l->step ? r->done_us[l->step - 1] : r->start_us) - latency_us);
        l->attempts = 0;
        if (++l->step == BENCH_STEPS)
            bench_life_finish(d, l);
        else
            l->due_us = now + d->pace_us[l->step] * 3 / 4;
        break;
    case BENCH_WAIT:
        d->waits[l->step]++;
        r->waits++;
        snprintf(d->last_wait[l->step], sizeof(d->last_wait[0]), "%s", err_get());
        if (now - l->since_us > BENCH_STEP_GIVE_UP_US) {
            char why[320];
            snprintf(why, sizeof(why), "still not possible after %lld s: %s", BENCH_STEP_GIVE_UP_US / 1000000,
                     err_get());
            bench_life_fail(d, l, why);
        } else {
            int shift = l->attempts - 1 < 5 ? l->attempts - 1 : 5;
            int64_t pause = (int64_t)BENCH_WAIT_FIRST_US << shift;
            l->due_us = now + (pause < BENCH_WAIT_MAX_US ? pause : BENCH_WAIT_MAX_US);
        }
        break;
    case BENCH_FAILED:
        bench_life_fail(d, l, err_get());
        break;
    }
}

/* ---- the run */

/* Starts lifecycles while the window has room, and sends every step that is due; 0 or -1 with err. Returns in
 * *next_due_us the earliest step still waiting (0 if none). */
static int bench_drive(bench_driver *d, int64_t *next_due_us) {
    int64_t now = bench_now_us();
    *next_due_us = 0;
    for (int s = 0; s < d->window; s++) {
        bench_life *l = &d->lives[s];
        if (l->index < 0 && d->next < d->w->ntickets) {
            *l = (bench_life){d->next++, BENCH_OPEN, 0, 0, now, 0};
            d->active++;
        }
        if (l->index < 0 || l->due_us == 0) continue;
        if (l->due_us <= now) {
            if (bench_life_send(d, s) != 0) return -1;
        } else if (*next_due_us == 0 || l->due_us < *next_due_us) {
            *next_due_us = l->due_us;
        }
    }
    return 0;
}

static int bench_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Adds p50, p99 (and p99.9, max when all) of the n values to obj under prefix. Sorts values. */
static void bench_percentiles(json_t *obj, const char *prefix, int64_t *values, long n, int all) {
    char key[64];
    static const struct {
        const char *name;
        int per_mille;
    } marks[] = {{"p50", 500}, {"p99", 990}, {"p999", 999}, {"max", 1000}};
    qsort(values, (size_t)n, sizeof(*values), bench_cmp_i64);
    for (size_t i = 0; i < (all ? 4u : 2u); i++) {
        long k = n ? (marks[i].per_mille == 1000 ? n - 1 : n * marks[i].per_mille / 1000) : 0;
        snprintf(key, sizeof(key), "%s%s_us", prefix, marks[i].name);
        json_object_set_new(obj, key, json_integer(n ? values[k] : 0));
    }
}

static void bench_print(json_t *line) {
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(line);
}

/* One line per step: requests, waits, the round trip of the answered request and how long after the previous
 * step's answer it came (the pipeline's delay plus the pauses between attempts). */
static int bench_report_steps(const bench_driver *d, int64_t *scratch) {
    for (int s = 0; s < BENCH_STEPS; s++) {
        long n = 0, m = 0;
        json_t *line = json_pack("{s:s,s:I,s:I}", "step", bench_steps[s].name, "requests", (json_int_t)d->requests[s],
                                 "waits", (json_int_t)d->waits[s]);
        if (!line) return -1;
        for (long i = 0; i < d->w->ntickets; i++)
            if (d->records[i].done_us[s]) scratch[n++] = d->records[i].rtt_us[s];
        json_object_set_new(line, "ok", json_integer(n));
        bench_percentiles(line, "", scratch, n, 0);
        for (long i = 0; i < d->w->ntickets; i++) {
            const bench_record *r = &d->records[i];
            if (r->done_us[s]) scratch[m++] = r->done_us[s] - (s ? r->done_us[s - 1] : r->start_us);
        }
        bench_percentiles(line, "ready_", scratch, m, 0);
        json_object_set_new(line, "last_wait", json_string(d->last_wait[s]));
        bench_print(line);
    }
    return 0;
}

/* The summary line: lifecycles finished per second from the first request to the last pickup, and their
 * durations. */
static int bench_report(const bench_driver *d, int64_t t0) {
    int64_t *scratch = malloc(sizeof(int64_t) * (size_t)(d->w->ntickets ? d->w->ntickets : 1));
    if (!scratch) {
        err_set("out of memory");
        return -1;
    }
    int rc = bench_report_steps(d, scratch);
    long n = 0, waits = 0;
    int64_t last = t0;
    for (long i = 0; i < d->w->ntickets; i++) {
        const bench_record *r = &d->records[i];
        waits += r->waits;
        if (!r->finished) continue;
        scratch[n++] = r->done_us[BENCH_PICKUP] - r->start_us;
        if (r->done_us[BENCH_PICKUP] > last) last = r->done_us[BENCH_PICKUP];
    }
    double secs = (double)(last - t0) / 1e6;
    json_t *line = json_pack("{s:s,s:I,s:I,s:I,s:f,s:f,s:I}", "phase", "lifecycles", "requests",
                             (json_int_t)d->w->ntickets, "ok", (json_int_t)n, "errors", (json_int_t)d->failed,
                             "seconds", secs, "per_second", secs > 0 ? (double)n / secs : 0.0, "waits",
                             (json_int_t)waits);
    if (rc == 0 && line) {
        bench_percentiles(line, "", scratch, n, 1);
        json_object_set_new(line, "first_error", json_string(d->first_error));
        bench_print(line);
    } else {
        json_decref(line);
        err_set("out of memory");
        rc = -1;
    }
    free(scratch);
    return rc;
}

static int bench_write_records(const bench_driver *d, FILE *out) {
    for (long i = 0; i < d->w->ntickets; i++) {
        const bench_record *r = &d->records[i];
        if (r->finished &&
            fprintf(out, "%s,%s,%ld,%lld,%lld,%d\n", r->tid, r->invoice, i, (long long)r->start_unix_us,
                    (long long)(r->start_unix_us + r->done_us[BENCH_PICKUP] - r->start_us), r->waits) < 0) {
            err_set("cannot write the lifecycles' records");
            return -1;
        }
    }
    return 0;
}

static int bench_driver_open(bench_driver *d, const settings *cfg) {
    d->lives = calloc((size_t)d->window, sizeof(*d->lives));
    d->records = calloc((size_t)(d->w->ntickets ? d->w->ntickets : 1), sizeof(*d->records));
    if (!d->lives || !d->records) {
        err_set("out of memory for %ld lifecycles", d->w->ntickets);
        return -1;
    }
    for (int s = 0; s < d->window; s++) d->lives[s].index = -1;
    for (int s = 0; s < BENCH_STEPS; s++) {
        enum service_id svc = bench_steps[s].service;
        if (d->conns[svc]) continue;
        /* Each lifecycle has one request in flight at most: the window of lifecycles bounds every socket's. */
        if (!(d->conns[svc] = bench_conn_open(cfg, svc, d->window, bench_on_life_reply, d))) return -1;
        d->polled[d->npolled++] = d->conns[svc];
    }
    return 0;
}

static void bench_driver_close(bench_driver *d) {
    for (int i = 0; i < d->npolled; i++) bench_conn_close(d->polled[i]);
    free(d->lives);
    free(d->records);
}

static int bench_in_flight_all(const bench_driver *d) {
    int n = 0;
    for (int i = 0; i < d->npolled; i++) n += bench_in_flight(d->polled[i]);
    return n;
}

int bench_lifecycles_run(const settings *cfg, const bench_workload *w, const char *run, int window, FILE *out) {
    bench_driver d;
    memset(&d, 0, sizeof(d));
    d.w = w, d.run = run, d.window = window;
    int rc = bench_driver_open(&d, cfg);
    int64_t t0 = bench_now_us(), last_answer = t0;
    while (rc == 0 && d.finished < w->ntickets) {
        int64_t next_due;
        if (bench_drive(&d, &next_due) != 0) {
            rc = -1;
            break;
        }
        int64_t now = bench_now_us();
        int wait_ms = next_due ? (int)((next_due - now + 999) / 1000) : 100;
        int got = bench_poll_many(d.polled, d.npolled, wait_ms < 0 ? 0 : wait_ms > 100 ? 100 : wait_ms);
        if (got < 0) {
            rc = -1;
        } else if (got > 0) {
            last_answer = bench_now_us();
        } else if (bench_in_flight_all(&d) > 0 && bench_now_us() - last_answer > BENCH_SILENCE_US) {
            err_set("no answer from the services for %lld s with %d requests in flight", BENCH_SILENCE_US / 1000000,
                    bench_in_flight_all(&d));
            rc = -1;
        }
    }
    if (rc == 0) rc = bench_report(&d, t0);
    if (rc == 0 && out) rc = bench_write_records(&d, out);
    bench_driver_close(&d);
    return rc;
}
