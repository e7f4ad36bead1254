#include "notify.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "money.h"
#include "template.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_VERSION "1"

static const char *const notify_received_fields[] = {"customer_name", "ticket_id", "model", "serial", "coverage",
                                                     "coverage_short", NULL};
static const template_event notify_events[] = {
    {"ticket_received", notify_received_fields},
};

int notify_init(service *svc) {
    char dir[PATH_MAX];
    settings_resolve_path(service_settings(svc), service_settings(svc)->templates_dir, dir, sizeof(dir));
    template_set *t = template_load(dir, notify_events, sizeof(notify_events) / sizeof(notify_events[0]));
    if (!t) return -1;
    service_set_state(svc, t);
    return 0;
}

void notify_cleanup(service *svc) {
    template_free(service_state(svc));
}

/* The contact and product facts of a ticket, by position. */
enum { NT_NAME, NT_PHONE, NT_EMAIL, NT_LANG, NT_MODEL, NT_SERIAL, NT_COUNT };
static const char *const notify_ticket_fields[NT_COUNT] = {"customer_name", "phone", "email", "lang", "model",
                                                           "serial"};

static redisReply *notify_read_ticket(service *svc, const char *ticket_id, char *reason, size_t reason_len) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "ticket:%s", ticket_id);
    store_key(st, store_ticket_shard(st, ticket_id), name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "HMGET"), store_args_add(&a, key);
    for (int i = 0; i < NT_COUNT; i++) store_args_add(&a, notify_ticket_fields[i]);
    redisReply *r = store_args_call(st, &a);
    if (!r) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != NT_COUNT || r->element[NT_LANG]->type != REDIS_REPLY_STRING) {
        snprintf(reason, reason_len, "ticket %s not readable yet", ticket_id);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static const char *notify_str(const redisReply *t, int i) {
    return t->element[i]->type == REDIS_REPLY_STRING ? t->element[i]->str : "";
}

/* One rendered notification. */
typedef struct notify_message {
    char id[96];
    const char *channel;
    const char *recipient;
    char *subject;
    char *body;
} notify_message;

/* The coverage in a few words, for an SMS: the full reason is for the e-mail. */
static void notify_coverage_short(const Sav__CoverageEstimated *cov, const char *lang, char *out, size_t len) {
    int en = strcmp(lang, "en") == 0;
    char amount[48];
    if (!cov->customer_pays && strcmp(cov->basis, "legal_conformity") == 0)
        snprintf(out, len, en ? "Likely free: legal guarantee." : "Prise en charge probable : garantie légale, gratuite.");
    else if (!cov->customer_pays)
        snprintf(out, len, en ? "Likely free: manufacturer's warranty." : "Prise en charge probable : garantie fabricant, gratuite.");
    else if (cov->estimate_cents > 0) {
        money_format(cov->estimate_cents, lang, amount, sizeof(amount));
        snprintf(out, len, en ? "Chargeable, estimate %s incl. VAT; quote to follow." : "Payant, estimation %s TTC ; devis à suivre.", amount);
    } else
        snprintf(out, len, en ? "Chargeable; quote to follow." : "Payant ; devis à suivre.");
}

static int notify_render(service *svc, const char *ticket_id, const redisReply *t, const Sav__CoverageEstimated *cov,
                         notify_message *out, int *count) {
    char coverage_short[160];
    notify_coverage_short(cov, notify_str(t, NT_LANG), coverage_short, sizeof(coverage_short));
    const char *values[] = {notify_str(t, NT_NAME), ticket_id, notify_str(t, NT_MODEL), notify_str(t, NT_SERIAL),
                            cov->reason, coverage_short};
    const char *channels[2] = {"sms", "email"};
    const char *recipients[2] = {notify_str(t, NT_PHONE), notify_str(t, NT_EMAIL)};
    *count = 0;
    for (int c = 0; c < 2; c++) {
        if (!recipients[c][0]) continue;
        notify_message *m = &out[(*count)++];
        snprintf(m->id, sizeof(m->id), "%s:ticket_received:%s:%s", ticket_id, channels[c], NOTIFY_VERSION);
        m->channel = channels[c];
        m->recipient = recipients[c];
        if (template_render(service_state(svc), "ticket_received", channels[c], notify_str(t, NT_LANG), values,
                            &m->subject, &m->body) != 0)
            return -1;
    }
    return 0;
}

static Sav__Ack__Status notify_record(service *svc, const Sav__Envelope *ev, const redisReply *t,
                                      const notify_message *msgs, int count, char *reason, size_t reason_len) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, ev->ticket_id);
    char seen[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    service_seen_key(svc, ev, seen);
    store_shard_prefix(st, shard, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "notification_record"), store_args_add(&a, "1");
    store_args_add(&a, seen), store_args_add(&a, prefix), store_args_add(&a, ev->ticket_id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, "ticket_received");
    store_args_addf(&a, "%d", count);
    for (int i = 0; i < count; i++) {
        store_args_add(&a, msgs[i].id), store_args_add(&a, msgs[i].channel), store_args_add(&a, "recorded");
        store_args_add(&a, msgs[i].recipient), store_args_add(&a, msgs[i].subject ? msgs[i].subject : "");
        store_args_add(&a, msgs[i].body), store_args_add(&a, notify_str(t, NT_LANG));
        store_args_add(&a, NOTIFY_VERSION);
    }
    return service_ack_status(svc, ev, store_args_call(st, &a), reason, reason_len);
}

Sav__Ack__Status notify_on_coverage_estimated(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__CoverageEstimated *cov = (Sav__CoverageEstimated *)envelope_body(ev, &sav__coverage_estimated__descriptor);
    if (!cov || !ev->ticket_id) {
        snprintf(reason, reason_len, "%s", cov ? "coverage.estimated without a ticket id" : err_get());
        if (cov) sav__coverage_estimated__free_unpacked(cov, NULL);
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status = SAV__ACK__STATUS__RETRY;
    notify_message msgs[2] = {0};
    int count = 0;
    redisReply *t = notify_read_ticket(svc, ev->ticket_id, reason, reason_len);
    if (t && notify_render(svc, ev->ticket_id, t, cov, msgs, &count) != 0) {
        snprintf(reason, reason_len, "%s", err_get());
        status = SAV__ACK__STATUS__REJECT;
    } else if (t) {
        status = notify_record(svc, ev, t, msgs, count, reason, reason_len);
    }
    for (int i = 0; i < 2; i++) free(msgs[i].subject), free(msgs[i].body);
    if (t) freeReplyObject(t);
    sav__coverage_estimated__free_unpacked(cov, NULL);
    return status;
}
