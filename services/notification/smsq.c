#include "smsq.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SMSQ_RECEIPT_TTL "604800" /* message ids are matched to receipts for a week */

void smsq_count(const char *status) {
    static const char *const outcomes[] = {"sent", "delivered", "failed", "queued"};
    for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
        if (strcmp(status, outcomes[i]) == 0)
            metrics_add(metrics_counter_new("sav_sms_total", "SMS outcomes recorded (queued: to retry)", "outcome",
                                            outcomes[i]), 1);
}

int smsq_open(smsq *q, const settings *s) {
    memset(q, 0, sizeof(*q));
    q->cfg = s;
    if (settings_quiet_hours(s->sms_quiet_hours, &q->quiet_start, &q->quiet_end) != 0) return -1;
    q->st = store_open(s);
    if (!q->st) return -1;
    store_key(q->st, 0, "sms:queue", q->queue);
    store_key(q->st, 0, "sms:sending", q->sending);
    store_key(q->st, 0, "sms:busy", q->busy);
    store_shard_prefix(q->st, 0, q->prefix);
    return 0;
}

void smsq_close(smsq *q) {
    store_close(q->st);
    q->st = NULL;
}

int smsq_quiet(const smsq *q, int64_t now_ms) {
    if (q->quiet_start < 0) return 0;
    int minute = clock_minute_paris(now_ms);
    if (q->quiet_start < q->quiet_end) return minute >= q->quiet_start && minute < q->quiet_end;
    return minute >= q->quiet_start || minute < q->quiet_end;
}

int64_t smsq_backoff(const settings *s, int attempts) {
    int64_t backoff = 1000LL << (attempts < 20 && attempts > 0 ? attempts - 1 : 19);
    return backoff > s->sms_retry_max_ms ? s->sms_retry_max_ms : backoff;
}

redisReply *smsq_claim(smsq *q, int room, int turn_ms, int handover) {
    int64_t now = clock_now_ms();
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "sms_claim"), store_args_add(&a, "3");
    store_args_add(&a, q->queue), store_args_add(&a, q->sending), store_args_add(&a, q->busy);
    store_args_add(&a, q->prefix), store_args_addf(&a, "%lld", (long long)now), store_args_addf(&a, "%d", room);
    store_args_addf(&a, "%d", q->cfg->sms_stale_ms);
    store_args_add(&a, smsq_quiet(q, now) ? "1" : "0");
    store_args_addf(&a, "%d", turn_ms);
    store_args_add(&a, handover ? "1" : "0");
    redisReply *r = store_args_call(q->st, &a);
    if (r && (r->type != REDIS_REPLY_ARRAY || r->elements == 0)) {
        if (r->type == REDIS_REPLY_ERROR) log_warn(NULL, NULL, "SMS not claimed: %s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Builds the sms_done call of one outcome into a; returns the verdict it records (a retry that used up the
 * attempts of a refused SMS is a failure). */
static const char *smsq_done_args(smsq *q, const char *nid, const smsq_outcome *o, store_args *a) {
    const char *verdict = o->verdict;
    if (strcmp(verdict, "retry") == 0 && o->refused && o->attempts >= q->cfg->sms_max_attempts) verdict = "failed";
    char key[STORE_KEY_LEN], name[200];
    snprintf(name, sizeof(name), "notif:%s", nid);
    store_key(q->st, 0, name, key);
    store_args_init(a);
    store_args_add(a, "FCALL"), store_args_add(a, "sms_done"), store_args_add(a, "4");
    a->no_wait = 1; /* waiting would let the claim go stale on the master: see store_args */
    store_args_addf(a, "%s", key), store_args_add(a, q->queue), store_args_add(a, q->sending), store_args_add(a, q->busy);
    store_args_add(a, nid), store_args_addf(a, "%lld", (long long)clock_now_ms()), store_args_add(a, verdict);
    store_args_add(a, o->detail);
    store_args_addf(a, "%lld", (long long)(clock_now_ms() + smsq_backoff(q->cfg, o->attempts)));
    store_args_add(a, q->prefix), store_args_add(a, SMSQ_RECEIPT_TTL);
    for (int p = 0; strcmp(verdict, "sent") == 0 && p < o->nids; p++) store_args_add(a, o->ids[p]);
    return verdict;
}

/* Logs and counts what sms_done answered; 0, or -1 with err when Redis did not take it. */
static int smsq_done_reply(const char *nid, const char *verdict, const char *detail, const redisReply *r) {
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc != 0) {
        err_set("SMS %s not recorded: %s", verdict, r ? r->str : err_get());
        log_error(NULL, nid, "%s", err_get());
    } else {
        log_info(NULL, nid, "SMS %s: %s", r->str, detail);
        smsq_count(r->str);
    }
    return rc;
}

int smsq_done(smsq *q, const char *nid, const smsq_outcome *o) {
    store_args a;
    const char *verdict = smsq_done_args(q, nid, o, &a);
    redisReply *r = store_args_call(q->st, &a);
    int rc = smsq_done_reply(nid, verdict, o->detail, r);
    if (r) freeReplyObject(r);
    return rc;
}

static void smsq_receipt_args(smsq *q, const char *const *spellings, int n, const char *state, store_args *a) {
    store_args_init(a);
    store_args_add(a, "FCALL"), store_args_add(a, "sms_receipt"), store_args_add(a, "0");
    store_args_add(a, q->prefix), store_args_addf(a, "%lld", (long long)clock_now_ms()), store_args_add(a, state);
    store_args_add(a, SMSQ_RECEIPT_TTL);
    for (int i = 0; i < n; i++) store_args_add(a, spellings[i]);
}

/* Logs and counts what sms_receipt answered; 0, or -1 with err when Redis did not take it. */
static int smsq_receipt_reply(const char *id, const char *state, const redisReply *r) {
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc != 0) err_set("%s", r ? r->str : err_get());
    else log_info(NULL, NULL, "receipt %s %s: %s", id, state, r->str);
    if (rc == 0 && (strcmp(r->str, "delivered") == 0 || strcmp(r->str, "failed") == 0)) smsq_count(r->str);
    return rc;
}

int smsq_receipt(smsq *q, const char *const *spellings, int n, const char *state) {
    store_args a;
    smsq_receipt_args(q, spellings, n, state, &a);
    redisReply *r = store_args_call(q->st, &a);
    int rc = smsq_receipt_reply(spellings[0], state, r);
    if (r) freeReplyObject(r);
    return rc;
}

/* A call queued for smsq_flush: what its reply is read against, and who hears of it. */
typedef struct smsq_later {
    int receipt;              /* sms_receipt, else sms_done */
    char id[SMSQ_ID_LEN];     /* the notification, or the receipt's message id */
    char verdict[16], state[16];
    char detail[256];
    smsq_result_fn fn;
    void *ctx;
} smsq_later;

static void smsq_later_done(void *ctx, redisReply *r) {
    smsq_later *l = ctx;
    int rc = l->receipt ? smsq_receipt_reply(l->id, l->state, r) : smsq_done_reply(l->id, l->verdict, l->detail, r);
    if (r) freeReplyObject(r);
    l->fn(l->ctx, rc);
    free(l);
}

static int smsq_queue(smsq *q, smsq_later *l, const store_args *a) {
    if (store_defer(q->st, a, smsq_later_done, l) == 0) return 0;
    free(l);
    return -1;
}

int smsq_done_later(smsq *q, const char *nid, const smsq_outcome *o, smsq_result_fn fn, void *ctx) {
    smsq_later *l = calloc(1, sizeof(*l));
    if (!l) {
        err_set("out of memory");
        return -1;
    }
    store_args a;
    snprintf(l->verdict, sizeof(l->verdict), "%s", smsq_done_args(q, nid, o, &a));
    snprintf(l->id, sizeof(l->id), "%s", nid);
    snprintf(l->detail, sizeof(l->detail), "%s", o->detail);
    l->fn = fn, l->ctx = ctx;
    return smsq_queue(q, l, &a);
}

int smsq_receipt_later(smsq *q, const char *const *spellings, int n, const char *state, smsq_result_fn fn,
                       void *ctx) {
    smsq_later *l = calloc(1, sizeof(*l));
    if (!l) {
        err_set("out of memory");
        return -1;
    }
    store_args a;
    smsq_receipt_args(q, spellings, n, state, &a);
    l->receipt = 1;
    snprintf(l->id, sizeof(l->id), "%s", spellings[0]);
    snprintf(l->state, sizeof(l->state), "%s", state);
    l->fn = fn, l->ctx = ctx;
    return smsq_queue(q, l, &a);
}

int smsq_flush(smsq *q) {
    return store_deferred(q->st) ? store_flush(q->st) : 0;
}

int smsq_renew(smsq *q, const char *const *nids, int n) {
    if (n == 0) return 0;
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "ZADD"), store_args_add(&a, q->sending), store_args_add(&a, "XX");
    a.no_wait = 1;
    for (int i = 0; i < n; i++) store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, nids[i]);
    redisReply *r = store_args_call(q->st, &a);
    int rc = r && r->type != REDIS_REPLY_ERROR ? 0 : -1;
    if (rc != 0) log_warn(NULL, NULL, "SMS claims not renewed: %s", r ? r->str : err_get());
    if (r) freeReplyObject(r);
    return rc;
}

int smsq_is_stop(const char *text, size_t len) {
    while (len > 0 && isspace((unsigned char)*text)) text++, len--;
    while (len > 0 && isspace((unsigned char)text[len - 1])) len--;
    return len == 4 && strncasecmp(text, "STOP", 4) == 0;
}

long smsq_stop(smsq *q, const char *from) {
    /* SMSCs write the sender as international digits without '+' (TON 1), with '+', or in national form. */
    char typed[40], number[24];
    snprintf(typed, sizeof(typed), "%s%s", isdigit((unsigned char)from[0]) && from[0] != '0' ? "+" : "", from);
    if (validate_phone(typed, number, sizeof(number)) != 0) {
        log_warn(NULL, NULL, "STOP from a number that is no phone number ignored: %s", err_get());
        return 0;
    }
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "sms_stop"), store_args_add(&a, "0");
    store_args_add(&a, q->prefix), store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, number);
    redisReply *r = store_args_call(q->st, &a);
    long n = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    char masked[LOG_MASK_LEN];
    log_mask(number, masked);
    if (n < 0) err_set("STOP from %s not recorded: %s", masked, r ? r->str : err_get());
    else if (n == 0) log_warn(NULL, NULL, "STOP from %s matches no customer's phone: nothing changed", masked);
    else log_info(NULL, NULL, "STOP from %s: %ld customer(s) leave marketing messages", masked, n);
    if (r) freeReplyObject(r);
    return n;
}
