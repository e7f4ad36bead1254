/* Lifecycle commands served by intake: cancel and pickup. The state
 * machine itself is common/lifecycle.c; ticket_step_reply applies it. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
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

/* A consumer pays at pickup: refuses (0 = go) while the ticket's invoice due today or earlier is unpaid. */
static int steps_unpaid(service *svc, const char *tid, service_reply *reply) {
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], ikey[STORE_KEY_LEN], name[64], today[CLOCK_DATE_LEN];
    if (validate_ticket_id(tid) != 0) return 0;
    ticket_keys(svc, tid, key, prefix);
    const char *argv[] = {"HGET", key, "invoice_id"};
    size_t lens[] = {4, strlen(key), 10};
    redisReply *r = store_call(service_store(svc), 3, argv, lens);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return 0;
    }
    snprintf(name, sizeof(name), "invoice:%s", r->str), store_key(service_store(svc), 0, name, ikey);
    freeReplyObject(r);
    const char *hargv[] = {"HMGET", ikey, "id", "balance_cents", "due_on"};
    size_t hlens[] = {5, strlen(ikey), 2, 13, 6};
    r = store_call(service_store(svc), 5, hargv, hlens);
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

void steps_ticket_pickup(service *svc, const Sav__Command *cmd, service_reply *reply) {
    if (steps_unpaid(svc, command_arg(cmd, "id") ?: "", reply)) return;
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    const char *fields[] = {"picked_up_at", now};
    ticket_step step = {cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_PICKUP,
                        service_actor(svc), "collected by the customer", NULL, "", fields, 1, NULL, NULL, 0};
    ticket_step_reply(svc, &step, reply);
}
