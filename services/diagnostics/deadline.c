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

/* Marks a ticket once (ticket_mark under dedup), with an optional notice. */
static void deadline_mark(service *svc, const char *tid, const char *what, const char *detail, const ticket_notice *notice,
                          const char **fields, size_t nfields) {
    store *st = service_store(svc);
    char dedup[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], outbox[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "done:%s:%s", tid, what), store_key(st, 0, name, dedup);
    ticket_keys(svc, tid, key, prefix);
    store_key(st, 0, "outbox:notification", outbox);
    envelope_buf body = {0};
    if (notice && ticket_notice_pack(notice, &body) != 0) return;
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_mark"), store_args_add(&a, "3");
    store_args_add(&a, dedup), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, prefix);
    store_args_add(&a, tid), store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, "0");
    store_args_add(&a, what), store_args_add(&a, "diagnostics"), store_args_add(&a, detail);
    if (notice) store_args_addf(&a, "%s/%s/1", tid, notice->event);
    else store_args_add(&a, "");
    store_args_addb(&a, body.data, body.len);
    store_args_add(&a, ""), store_args_add(&a, "0"), store_args_add(&a, "");
    for (size_t i = 0; i < 2 * nfields; i++) store_args_add(&a, fields[i]);
    redisReply *r = store_args_call(st, &a);
    if (r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && strcmp(r->str, "applied") == 0) {
        log_warn(tid, NULL, "%s: %s", what, detail);
        relay_poke(service_relay(svc, SVC_NOTIFICATION));
    } else if (!r || r->type == REDIS_REPLY_ERROR) {
        log_warn(tid, NULL, "%s not recorded: %s", what, r ? r->str : err_get());
    }
    if (r) freeReplyObject(r);
    envelope_buf_free(&body);
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
