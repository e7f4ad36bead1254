/* Repair steps recorded by technicians: start, done. (Verdicts, parts and
 * exchanges build on these.) The state machine is common/lifecycle.c. */
#include "repair.h"
#include "command.h"
#include "err.h"
#include "ticket.h"
#include "validate.h"

#include <string.h>

static const char *repair_actor(const Sav__Command *cmd) {
    const char *tech = command_arg(cmd, "tech");
    return tech && validate_token("technician", tech) == 0 ? tech : "technician";
}

void repair_start(service *svc, const Sav__Command *cmd, service_reply *reply) {
    ticket_notice notice = {"repair_started", 1, NULL, 0};
    ticket_step_reply(svc, cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_REPAIR_START,
                      repair_actor(cmd), "", &notice, NULL, 0, reply);
}

void repair_done(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *note = command_arg(cmd, "note");
    if (note && validate_text("note", note, 1000, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    const char *vars[] = {"outcome", "repaired", "note", note ? note : ""};
    ticket_notice notice = {"ready_for_pickup", 1, vars, 2};
    const char *fields[] = {"outcome", "repaired", "repair_note", note ? note : ""};
    ticket_step_reply(svc, cmd->request_id ? cmd->request_id : "", command_arg(cmd, "id") ?: "", LC_REPAIR_DONE,
                      repair_actor(cmd), note ? note : "", &notice, fields, 2, reply);
}
