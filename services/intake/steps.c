/* Lifecycle commands served by intake: cancel and pickup. The state
 * machine itself is common/lifecycle.c; ticket_step_reply applies it. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "pricing.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void steps_ticket_cancel(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *reason = command_arg(cmd, "reason");
    if (!reason || validate_text("reason", reason, 500, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", reason ? err_get() : "a cancellation needs --reason");
        return;
    }
    const char *vars[] = {"reason", reason};
    ticket_notice notice = {"ticket_cancelled", 1, vars, 1};
    const char *fields[] = {"outcome", "cancelled", "cancel_reason", reason};
    ticket_step step = {cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_CANCEL,
                        service_actor(svc), reason, &notice, "release", fields, 2, NULL, NULL, 0};
    ticket_step_reply(svc, &step, reply);
}

/* The facts a pickup is checked against: the ticket's invoice and customer type, and what billing will bill. */
typedef struct steps_billing {
    redisReply *ticket;   /* HMGET invoice_id business outcome centre */
    redisReply *coverage; /* HMGET customer_pays status */
    redisReply *quote;    /* HGET status */
} steps_billing;

static const char *steps_str(const redisReply *r, size_t i) {
    const redisReply *e = r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : r;
    return e->type == REDIS_REPLY_STRING ? e->str : "";
}

/* Reads a ticket's billing facts (one round trip); 0, or -1 (Redis unavailable: the step answers for itself). */
static int steps_billing_read(service *svc, const char *tid, steps_billing *b) {
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], ckey[STORE_KEY_LEN], qkey[STORE_KEY_LEN], name[64];
    ticket_keys(svc, tid, key, prefix);
    int shard = store_ticket_shard(service_store(svc), tid);
    snprintf(name, sizeof(name), "coverage:%s", tid), store_key(service_store(svc), shard, name, ckey);
    snprintf(name, sizeof(name), "quote:%s", tid), store_key(service_store(svc), shard, name, qkey);
    const char *targv[] = {"HMGET", key, "invoice_id", "business", "outcome", "centre"};
    const char *cargv[] = {"HMGET", ckey, "customer_pays", "status"};
    const char *qargv[] = {"HGET", qkey, "status"};
    size_t tlens[6], clens[4], qlens[3];
    for (int i = 0; i < 6; i++) tlens[i] = strlen(targv[i]);
    for (int i = 0; i < 4; i++) clens[i] = strlen(cargv[i]);
    for (int i = 0; i < 3; i++) qlens[i] = strlen(qargv[i]);
    const int argc[] = {6, 4, 3};
    const char **argv[] = {targv, cargv, qargv};
    const size_t *lens[] = {tlens, clens, qlens};
    redisReply *out[3];
    if (store_pipeline(service_store(svc), 3, argc, argv, lens, out) != 0) return -1;
    *b = (steps_billing){out[0], out[1], out[2]};
    return 0;
}

static void steps_billing_free(steps_billing *b) {
    freeReplyObject(b->ticket), freeReplyObject(b->coverage), freeReplyObject(b->quote);
}

/* The invoice of a ticket due today or earlier and unpaid: 1 (reply filled), else 0. */
static int steps_invoice_unpaid(service *svc, const char *invoice_id, service_reply *reply) {
    char ikey[STORE_KEY_LEN], name[64], today[CLOCK_DATE_LEN];
    snprintf(name, sizeof(name), "invoice:%s", invoice_id), store_key(service_store(svc), 0, name, ikey);
    const char *hargv[] = {"HMGET", ikey, "id", "balance_cents", "due_on"};
    size_t hlens[] = {5, strlen(ikey), 2, 13, 6};
    redisReply *r = store_call(service_store(svc), 5, hargv, hlens);
    clock_date_paris(clock_now_ms(), today);
    int unpaid = r && r->type == REDIS_REPLY_ARRAY && r->element[1]->type == REDIS_REPLY_STRING &&
                 atoll(r->element[1]->str) > 0 && r->element[2]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[2]->str, today) <= 0;
    if (unpaid)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "invoice %s is unpaid (%s cents due): record the "
                            "payment before the pickup", r->element[0]->str, r->element[1]->str);
    if (r) freeReplyObject(r);
    return unpaid;
}

/* A consumer pays at pickup: refuses (0 = go) while the ticket's invoice due today or earlier is unpaid, or while
 * the invoice billing is about to issue (it does so once the ticket is ready) is not there yet. */
static int steps_unpaid(service *svc, const char *tid, service_reply *reply) {
    steps_billing b;
    if (validate_ticket_id(tid) != 0 || steps_billing_read(svc, tid, &b) != 0) return 0;
    int refused = 0;
    if (steps_str(b.ticket, 0)[0]) {
        refused = steps_invoice_unpaid(svc, steps_str(b.ticket, 0), reply);
    } else if (strcmp(steps_str(b.ticket, 1), "1") != 0) {
        const catalog_centre *c = catalog_centre_find(service_catalog(svc), steps_str(b.ticket, 3));
        int pays = strcmp(steps_str(b.coverage, 0), "1") == 0 && strcmp(steps_str(b.coverage, 1), "decided") == 0;
        const char *kind = pricing_invoice_kind(pays, steps_str(b.quote, 0), steps_str(b.ticket, 2),
                                                c ? c->diagnostic_fee_cents : 0);
        if (kind) {
            service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s: billing has not issued its %s invoice "
                                "yet, which the customer pays at pickup: try again in a moment", tid, kind);
            refused = 1;
        }
    }
    steps_billing_free(&b);
    return refused;
}

void steps_ticket_pickup(service *svc, const Sav__Command *cmd, service_reply *reply) {
    if (steps_unpaid(svc, command_arg(cmd, "id") ?: "", reply)) return;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    const char *fields[] = {"picked_up_at", now};
    ticket_step step = {cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_PICKUP,
                        service_actor(svc), "collected by the customer", NULL, "", fields, 1, NULL, NULL, 0};
    ticket_step_reply(svc, &step, reply);
}
