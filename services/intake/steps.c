/* Lifecycle commands served by intake: cancel and pickup. The state
 * machine itself is common/lifecycle.c; ticket_step_reply applies it. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

/* The operator's name for the timeline (roles and identities come with access control). */
static const char *steps_actor(const Sav__Command *cmd) {
    const char *actor = command_arg(cmd, "actor");
    return actor && validate_token("actor", actor) == 0 ? actor : "front_desk";
}

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
                        steps_actor(cmd), reason, &notice, "release", fields, 2};
    ticket_step_reply(svc, &step, reply);
}

void steps_ticket_pickup(service *svc, const Sav__Command *cmd, service_reply *reply) {
    char now[24];
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    const char *fields[] = {"picked_up_at", now};
    ticket_step step = {cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_PICKUP,
                        steps_actor(cmd), "collected by the customer", NULL, "", fields, 1};
    ticket_step_reply(svc, &step, reply);
}
