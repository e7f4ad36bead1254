#include "workload.h"
#include "clock.h"
#include "err.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Models of the sample catalog with one of their fault codes each (deploy/local/catalog.json). */
static const char *const bench_models[][2] = {
    {"WM-7000", "E21"}, {"WM-7000", "E10"}, {"DW-450", "E09"}, {"FR-300", "F2"}, {"OV-900", "F9"}, {"BO-24", "E01"},
};
static const char *const bench_first[] = {"Jeanne", "Paul", "Élodie", "François", "Chloé", "Noël", "Anaïs", "Marc"};
static const char *const bench_last[] = {"Martin", "Durand", "Lefèvre", "Rousseau", "Garçon", "Dupré", "Moreau"};

static int bench_alloc(bench_workload *w, long ntickets, long ncustomers) {
    memset(w, 0, sizeof(*w));
    w->tickets = calloc((size_t)(ntickets ? ntickets : 1), sizeof(*w->tickets));
    w->customers = calloc((size_t)(ncustomers ? ncustomers : 1), sizeof(*w->customers));
    if (!w->tickets || !w->customers) {
        bench_workload_free(w);
        err_set("out of memory for %ld tickets", ntickets);
        return -1;
    }
    return 0;
}

int bench_workload_generate(bench_workload *w, long n, int per_customer, const char *run) {
    long ncust = (n + per_customer - 1) / per_customer;
    if (bench_alloc(w, n, ncust) != 0) return -1;
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    for (long c = 0; c < ncust; c++) {
        bench_customer *bc = &w->customers[c];
        snprintf(bc->name, sizeof(bc->name), "%s %s", bench_first[c % 8], bench_last[c % 7]);
        /* Half reached by SMS and e-mail, a quarter by each alone. */
        if (c % 4 != 3) snprintf(bc->phone, sizeof(bc->phone), "+336%08ld", c % 100000000);
        if (c % 4 != 2) snprintf(bc->email, sizeof(bc->email), "client%ld.%s@bench.example", c, run);
    }
    for (long i = 0; i < n; i++) {
        bench_ticket *t = &w->tickets[i];
        const char *const *m = bench_models[i % 6];
        t->customer = i / per_customer;
        snprintf(t->model, sizeof(t->model), "%s", m[0]);
        snprintf(t->fault, sizeof(t->fault), "%s", m[1]);
        snprintf(t->serial, sizeof(t->serial), "BN%s-%08ld", run, i);
        /* Delivered from 3 months to 6 years ago: under the legal guarantee, a warranty, or billable. */
        clock_date_add_months(today, -(3 + (int)(i % 70)), t->purchased);
        snprintf(t->description, sizeof(t->description), "%s", i % 2 ? "ne chauffe plus" : "fuite d'eau");
    }
    w->ntickets = n, w->ncustomers = ncust;
    return 0;
}

static int bench_copy(char *dst, size_t cap, json_t *obj, const char *key, int required, long line) {
    json_t *v = json_object_get(obj, key);
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s || !*s) {
        if (required) {
            err_set("line %ld: \"%s\" is missing or not a string", line, key);
            return -1;
        }
        dst[0] = '\0';
        return 0;
    }
    if (strlen(s) >= cap) {
        err_set("line %ld: \"%s\" is longer than %zu bytes", line, key, cap - 1);
        return -1;
    }
    memcpy(dst, s, strlen(s) + 1);
    return 0;
}

/* The customer with this phone and e-mail (linear: a workload names a few thousand customers at most). */
static long bench_customer_of(bench_workload *w, const bench_customer *c) {
    for (long i = w->ncustomers - 1; i >= 0; i--)
        if (strcmp(w->customers[i].phone, c->phone) == 0 && strcmp(w->customers[i].email, c->email) == 0) return i;
    w->customers[w->ncustomers] = *c;
    return w->ncustomers++;
}

static int bench_read_line(bench_workload *w, const char *text, long line) {
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    if (!json_is_object(obj)) {
        err_set("line %ld: not a JSON object (%s)", line, obj ? "another value" : jerr.text);
        json_decref(obj);
        return -1;
    }
    bench_customer c = {0};
    bench_ticket *t = &w->tickets[w->ntickets];
    int rc = bench_copy(c.name, sizeof(c.name), obj, "customer", 1, line) ||
             bench_copy(c.phone, sizeof(c.phone), obj, "phone", 0, line) ||
             bench_copy(c.email, sizeof(c.email), obj, "email", 0, line) ||
             bench_copy(t->model, sizeof(t->model), obj, "model", 1, line) ||
             bench_copy(t->serial, sizeof(t->serial), obj, "serial", 1, line) ||
             bench_copy(t->purchased, sizeof(t->purchased), obj, "purchased", 1, line) ||
             bench_copy(t->reported, sizeof(t->reported), obj, "reported", 0, line) ||
             bench_copy(t->fault, sizeof(t->fault), obj, "fault", 0, line) ||
             bench_copy(t->description, sizeof(t->description), obj, "description", 1, line);
    json_decref(obj);
    if (rc) return -1;
    if (!c.phone[0] && !c.email[0]) {
        err_set("line %ld: the customer needs a phone or an e-mail", line);
        return -1;
    }
    t->customer = bench_customer_of(w, &c);
    w->ntickets++;
    return 0;
}

int bench_workload_read(bench_workload *w, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    long lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    rewind(f);
    if (bench_alloc(w, lines + 1, lines + 1) != 0) {
        fclose(f);
        return -1;
    }
    char text[4096];
    long line = 0;
    int rc = 0;
    while (rc == 0 && fgets(text, sizeof(text), f)) {
        line++;
        if (!strchr(text, '\n') && !feof(f)) {
            err_set("line %ld is longer than %zu bytes", line, sizeof(text) - 2);
            rc = -1;
        } else if (strspn(text, " \t\r\n") != strlen(text)) {
            rc = bench_read_line(w, text, line);
        }
    }
    fclose(f);
    if (rc == 0 && w->ntickets == 0) {
        err_set("%s holds no ticket", path);
        rc = -1;
    }
    if (rc != 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s: %s", path, err_get());
        err_set("%s", why);
        bench_workload_free(w);
    }
    return rc;
}

void bench_workload_free(bench_workload *w) {
    free(w->tickets);
    free(w->customers);
    memset(w, 0, sizeof(*w));
}
