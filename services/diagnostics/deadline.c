#include "deadline.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLINE_WARN_DAYS 25
#define DEADLINE_DAYS 30

static redisReply *deadline_index(service *svc, const char *name) {
    char key[STORE_KEY_LEN];
    store_key(service_store(svc), 0, name, key);
    const char *argv[] = {"ZRANGE", key, "0", "9999"};
    size_t lens[] = {6, strlen(key), 1, 4};
    redisReply *r = store_call(service_store(svc), 4, argv, lens);
    if (r && r->type != REDIS_REPLY_ARRAY) freeReplyObject(r), r = NULL;
    return r;
}

static void deadline_mark(service *svc, const char *tid, const char *what, const char *detail, const ticket_notice *notice,
                          const char **fields, size_t nfields) {
    char dedup[96];
    snprintf(dedup, sizeof(dedup), "done:%s:%s", tid, what);
    ticket_mark m = {tid, dedup, what, "diagnostics", detail, notice, NULL, 0, NULL, fields, nfields};
    if (ticket_mark_once(svc, &m) == 1) log_warn(tid, NULL, "%s: %s", what, detail);
}

/* C5 for one ticket repaired under the legal guarantee. */
static void deadline_check(service *svc, const char *tid, const char *today) {
    ticket_facts t;
    if (ticket_read(svc, tid, &t) != 0 || lifecycle_state_final(t.state) || strcmp(t.state, "ready") == 0) return;
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    ticket_keys(svc, tid, key, prefix);
    const char *argv[] = {"HGET", key, "requested_on"};
    size_t lens[] = {4, strlen(key), 12};
    redisReply *r = store_call(service_store(svc), 3, argv, lens);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return;
    }
    char requested[CLOCK_DATE_LEN], limit[CLOCK_DATE_LEN], days_s[16];
    snprintf(requested, sizeof(requested), "%s", r->str);
    freeReplyObject(r);
    int days = clock_date_diff_days(requested, today);
    clock_date_add_days(requested, DEADLINE_DAYS, limit);
    snprintf(days_s, sizeof(days_s), "%d", days);
    if (days >= DEADLINE_WARN_DAYS)
        deadline_mark(svc, tid, "deadline.warning", "day 25 of the 30 days of a legal-guarantee repair (L217-10)", NULL,
                      NULL, 0);
    if (days >= DEADLINE_DAYS) {
        const char *vars[] = {"requested_on", requested, "deadline", limit, "days", days_s};
        ticket_notice notice = {"repair_deadline_breached", 1, vars, 3};
        const char *fields[] = {"legal_deadline_breached", "1"};
        deadline_mark(svc, tid, "deadline.breached", "30 days passed: the consumer may ask for a price reduction or "
                                                     "cancel the sale (L217-10)", &notice, fields, 1);
    }
}

void deadline_tick(service *svc) {
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    redisReply *legal = deadline_index(svc, "legal_repairs");
    for (size_t i = 0; legal && i < legal->elements; i++) deadline_check(svc, legal->element[i]->str, today);
    if (legal) freeReplyObject(legal);
    redisReply *waiting = deadline_index(svc, "state:waiting_parts");
    if (waiting) ticket_resume_parts(svc, waiting);
    if (waiting) freeReplyObject(waiting);
}
