#include "metrics.h"
#include "err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define METRICS_MAX 128
#define METRICS_NAME 64
#define METRICS_BUCKETS 12

enum metrics_kind { MK_COUNTER, MK_GAUGE, MK_HISTOGRAM };

/* Upper bounds of the histogram buckets, in microseconds (and their le= text). */
static const int64_t metrics_bounds_us[METRICS_BUCKETS] = {100, 250, 500, 1000, 2500, 5000, 10000, 25000,
                                                            50000, 100000, 1000000, 10000000};
static const char *const metrics_bounds_text[METRICS_BUCKETS] = {"0.0001", "0.00025", "0.0005", "0.001",
                                                                "0.0025", "0.005", "0.01", "0.025",
                                                                "0.05", "0.1", "1", "10"};

typedef struct metrics_entry {
    enum metrics_kind kind;
    char name[METRICS_NAME], help[128], label[32], value[64];
    _Atomic uint64_t count;                   /* counter value, or histogram observations */
    _Atomic uint64_t sum_us;                  /* histogram */
    _Atomic uint64_t bucket[METRICS_BUCKETS]; /* histogram, not cumulative */
    _Atomic uint64_t gauge_bits;              /* a double's bits */
} metrics_entry;

struct metrics_counter { metrics_entry e; };
struct metrics_gauge { metrics_entry e; };
struct metrics_histogram { metrics_entry e; };

static metrics_entry metrics_registry[METRICS_MAX];
static _Atomic int metrics_count;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

/* Finds or adds an entry; registrations are rare (at start), so a lock keeps them simple. */
static metrics_entry *metrics_register(enum metrics_kind kind, const char *name, const char *help, const char *label,
                                       const char *value) {
    pthread_mutex_lock(&metrics_lock);
    metrics_entry *e = NULL;
    int n = metrics_count;
    for (int i = 0; i < n && !e; i++) {
        metrics_entry *x = &metrics_registry[i];
        if (strcmp(x->name, name) == 0 && strcmp(x->label, label ? label : "") == 0 &&
            strcmp(x->value, value ? value : "") == 0)
            e = x;
    }
    if (!e && n < METRICS_MAX) {
        e = &metrics_registry[n];
        e->kind = kind;
        snprintf(e->name, sizeof(e->name), "%s", name);
        snprintf(e->help, sizeof(e->help), "%s", help);
        snprintf(e->label, sizeof(e->label), "%s", label ? label : "");
        snprintf(e->value, sizeof(e->value), "%s", value ? value : "");
        metrics_count = n + 1;
    }
    pthread_mutex_unlock(&metrics_lock);
    if (!e) err_set("too many metrics (at most %d)", METRICS_MAX);
    return e;
}

metrics_counter *metrics_counter_new(const char *name, const char *help, const char *label, const char *value) {
    return (metrics_counter *)metrics_register(MK_COUNTER, name, help, label, value);
}

metrics_gauge *metrics_gauge_new(const char *name, const char *help, const char *label, const char *value) {
    return (metrics_gauge *)metrics_register(MK_GAUGE, name, help, label, value);
}

metrics_histogram *metrics_histogram_new(const char *name, const char *help, const char *label, const char *value) {
    return (metrics_histogram *)metrics_register(MK_HISTOGRAM, name, help, label, value);
}

void metrics_add(metrics_counter *c, uint64_t n) {
    if (c) atomic_fetch_add_explicit(&c->e.count, n, memory_order_relaxed);
}

void metrics_set(metrics_gauge *g, double v) {
    if (!g) return;
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    atomic_store_explicit(&g->e.gauge_bits, bits, memory_order_relaxed);
}

void metrics_observe_us(metrics_histogram *h, int64_t us) {
    if (!h) return;
    if (us < 0) us = 0;
    int b = 0;
    while (b < METRICS_BUCKETS && us > metrics_bounds_us[b]) b++;
    if (b < METRICS_BUCKETS) atomic_fetch_add_explicit(&h->e.bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->e.sum_us, (uint64_t)us, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->e.count, 1, memory_order_relaxed);
}

/* Writes {label="value"} (with extra, a second label such as le="0.1"), or nothing when there is no label. */
static void metrics_labels(httpd_reply *r, const metrics_entry *e, const char *extra) {
    if (!e->label[0] && !extra) return;
    httpd_printf(r, "{");
    if (e->label[0]) httpd_printf(r, "%s=\"%s\"%s", e->label, e->value, extra ? "," : "");
    if (extra) httpd_printf(r, "%s", extra);
    httpd_printf(r, "}");
}

static void metrics_render_one(httpd_reply *r, const metrics_entry *e) {
    if (e->kind == MK_COUNTER) {
        httpd_printf(r, "%s", e->name), metrics_labels(r, e, NULL);
        httpd_printf(r, " %llu\n", (unsigned long long)atomic_load(&e->count));
    } else if (e->kind == MK_GAUGE) {
        uint64_t bits = atomic_load(&e->gauge_bits);
        double v;
        memcpy(&v, &bits, sizeof(v));
        httpd_printf(r, "%s", e->name), metrics_labels(r, e, NULL);
        httpd_printf(r, " %.17g\n", v);
    } else {
        uint64_t cumulative = 0;
        char le[32];
        for (int b = 0; b < METRICS_BUCKETS; b++) {
            cumulative += atomic_load(&e->bucket[b]);
            snprintf(le, sizeof(le), "le=\"%s\"", metrics_bounds_text[b]);
            httpd_printf(r, "%s_bucket", e->name), metrics_labels(r, e, le);
            httpd_printf(r, " %llu\n", (unsigned long long)cumulative);
        }
        uint64_t count = atomic_load(&e->count);
        httpd_printf(r, "%s_bucket", e->name), metrics_labels(r, e, "le=\"+Inf\"");
        httpd_printf(r, " %llu\n", (unsigned long long)count);
        httpd_printf(r, "%s_sum", e->name), metrics_labels(r, e, NULL);
        httpd_printf(r, " %.6f\n", (double)atomic_load(&e->sum_us) / 1e6);
        httpd_printf(r, "%s_count", e->name), metrics_labels(r, e, NULL);
        httpd_printf(r, " %llu\n", (unsigned long long)count);
    }
}

void metrics_render(httpd_reply *reply) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int n = metrics_count;
    for (int i = 0; i < n; i++) {
        const metrics_entry *e = &metrics_registry[i];
        /* One HELP and TYPE per family: the first entry of a name carries them. */
        int first = 1;
        for (int j = 0; j < i && first; j++) first = strcmp(metrics_registry[j].name, e->name) != 0;
        if (!first) continue;
        httpd_printf(reply, "# HELP %s %s\n# TYPE %s %s\n", e->name, e->help, e->name, types[e->kind]);
        for (int j = i; j < n; j++)
            if (strcmp(metrics_registry[j].name, e->name) == 0) metrics_render_one(reply, &metrics_registry[j]);
    }
}
