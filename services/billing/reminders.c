#include "reminders.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "money.h"
#include "quote.h"
#include "invoice.h"
#include "ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reminders_mark(service *svc, const char *tid, const char *dedup, const char *event, const char *detail,
                           const ticket_notice *notice, const char *hash, const char **fields, size_t nfields) {
    ticket_mark m = {tid, dedup, event, "billing", detail, notice, NULL, 0, hash, fields, nfields};
    ticket_mark_once(svc, &m);
}

static redisReply *reminders_index(service *svc, const char *name, const char *max) {
    char key[STORE_KEY_LEN];
    store_key(service_store(svc), 0, name, key);
    const char *argv[] = {"ZRANGEBYSCORE", key, "-inf", max, "LIMIT", "0", "10000"};
    size_t lens[7];
    for (int i = 0; i < 7; i++) lens[i] = strlen(argv[i]);
    redisReply *r = store_call(service_store(svc), 7, argv, lens);
    if (r && r->type != REDIS_REPLY_ARRAY) freeReplyObject(r), r = NULL;
    return r;
}

/* One pending quote: reminder before expiry, then expiry. */
static void reminders_quote(service *svc, const char *tid, const char *today) {
    redisReply *q = quote_read(svc, tid);
    if (q && (q->elements == 0 || strcmp(quote_field(q, "status"), "pending") != 0)) {
        /* Accepted, refused or expired: no longer pending. */
        char key[STORE_KEY_LEN];
        store_key(service_store(svc), 0, "quotes:pending", key);
        const char *argv[] = {"ZREM", key, tid};
        size_t lens[] = {4, strlen(key), strlen(tid)};
        redisReply *r = store_call(service_store(svc), 3, argv, lens);
        if (r) freeReplyObject(r);
    }
    if (!q || q->elements == 0 || strcmp(quote_field(q, "status"), "pending") != 0) {
        if (q) freeReplyObject(q);
        return;
    }
    char remind_on[CLOCK_DATE_LEN], dedup[96], hash[64], total[48], lang[4] = "fr";
    const char *until = quote_field(q, "valid_until"), *version = quote_field(q, "version");
    clock_date_add_days(until, -service_settings(svc)->quote_reminder_days, remind_on);
    money_format(atoll(quote_field(q, "gross_cents")), lang, total, sizeof(total));
    snprintf(hash, sizeof(hash), "quote:%s", tid);
    if (strcmp(today, until) > 0) {
        snprintf(dedup, sizeof(dedup), "done:%s:quote_expired:%s", tid, version);
        const char *fields[] = {"status", "expired"};
        reminders_mark(svc, tid, dedup, "quote.expired", version, NULL, hash, fields, 1);
    } else if (strcmp(today, remind_on) >= 0) {
        snprintf(dedup, sizeof(dedup), "done:%s:quote_reminder:%s", tid, version);
        const char *vars[] = {"total", total, "valid_until", until};
        ticket_notice notice = {"quote_expiring", (unsigned)atoi(version), vars, 2};
        const char *fields[] = {"reminded", "1"};
        reminders_mark(svc, tid, dedup, "quote.reminder", version, &notice, hash, fields, 1);
    }
    freeReplyObject(q);
}

/* One unpaid invoice past its due date: the latest due reminder, then the formal notice. */
static void reminders_invoice(service *svc, const char *id, const char *today) {
    redisReply *inv = invoice_read(svc, id);
    if (!inv || inv->elements == 0 || atoll(quote_field(inv, "balance_cents")) <= 0) {
        if (inv) freeReplyObject(inv);
        return;
    }
    const settings_days *days = &service_settings(svc)->payment_reminders;
    const char *tid = quote_field(inv, "ticket"), *due = quote_field(inv, "due_on");
    int late = clock_date_diff_days(due, today), level = atoi(quote_field(inv, "reminder_level")), reached = 0;
    while (reached < days->n && late >= days->day[reached]) reached++;
    char hash[64], dedup[96], level_s[16], balance[48], lang[4] = "fr";
    snprintf(hash, sizeof(hash), "invoice:%s", id);
    money_format(atoll(quote_field(inv, "balance_cents")), lang, balance, sizeof(balance));
    if (reached > level) {
        snprintf(level_s, sizeof(level_s), "%d", reached);
        snprintf(dedup, sizeof(dedup), "done:%s:payment_reminder:%d", id, reached);
        const char *vars[] = {"invoice_id", id, "balance", balance, "due_on", due, "reminder_number", level_s};
        ticket_notice notice = {"payment_reminder", (unsigned)reached, vars, 4};
        const char *fields[] = {"reminder_level", level_s};
        reminders_mark(svc, tid, dedup, "payment.reminder", id, &notice, hash, fields, 1);
    }
    /* After the last reminder: the formal notice (mise en demeure), once. */
    if (days->n > 0 && reached == days->n && strcmp(quote_field(inv, "formal_notice"), "1") != 0) {
        snprintf(dedup, sizeof(dedup), "done:%s:formal_notice", id);
        const char *vars[] = {"invoice_id", id, "balance", balance, "due_on", due};
        ticket_notice notice = {"formal_notice", 1, vars, 3};
        const char *fields[] = {"formal_notice", "1", "formal_notice_on", today};
        reminders_mark(svc, tid, dedup, "payment.formal_notice", id, &notice, hash, fields, 2);
    }
    freeReplyObject(inv);
}

void reminders_tick(service *svc) {
    char today[CLOCK_DATE_LEN], horizon[CLOCK_DATE_LEN], max[16];
    clock_date_paris(clock_now_ms(), today);
    clock_date_add_days(today, service_settings(svc)->quote_reminder_days, horizon);
    snprintf(max, sizeof(max), "%ld", clock_date_score(horizon));
    redisReply *quotes = reminders_index(svc, "quotes:pending", max);
    for (size_t i = 0; quotes && i < quotes->elements; i++) reminders_quote(svc, quotes->element[i]->str, today);
    if (quotes) freeReplyObject(quotes);
    snprintf(max, sizeof(max), "(%ld", clock_date_score(today));
    redisReply *unpaid = reminders_index(svc, "invoices:unpaid", max);
    for (size_t i = 0; unpaid && i < unpaid->elements; i++) reminders_invoice(svc, unpaid->element[i]->str, today);
    if (unpaid) freeReplyObject(unpaid);
}
