#include "request.h"
#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>

#define BENCH_REQUEST_MAX_ARGS 16

int bench_request_command(const char *name, const char *request_id, const char *const *kv, size_t npairs,
                          const char *mid, envelope_buf *frame) {
    if (npairs > BENCH_REQUEST_MAX_ARGS) {
        err_set("%s: at most %d arguments", name, BENCH_REQUEST_MAX_ARGS);
        return -1;
    }
    Sav__Field f[BENCH_REQUEST_MAX_ARGS], *fp[BENCH_REQUEST_MAX_ARGS];
    for (size_t i = 0; i < npairs; i++) {
        f[i] = (Sav__Field)SAV__FIELD__INIT;
        f[i].name = (char *)kv[2 * i], f[i].value = (char *)kv[2 * i + 1];
        fp[i] = &f[i];
    }
    Sav__Command cmd = SAV__COMMAND__INIT;
    cmd.name = (char *)name, cmd.request_id = (char *)request_id;
    cmd.args = fp, cmd.n_args = npairs;
    return envelope_pack(SAV__MESSAGE_TYPE__COMMAND, mid, NULL, "sav-bench", clock_now_ms(), &cmd.base, frame);
}

int bench_request_open(const bench_ticket *t, const char *customer_id, const char *request_id, const char *mid,
                       envelope_buf *frame) {
    Sav__TicketOpen open = SAV__TICKET_OPEN__INIT;
    char *faults[1] = {(char *)t->fault};
    open.request_id = (char *)request_id, open.serial = (char *)t->serial, open.model = (char *)t->model;
    open.kind = "repair", open.channel = "drop_off", open.symptom = (char *)t->description;
    open.customer_id = (char *)customer_id;
    if (t->fault[0]) open.fault_codes = faults, open.n_fault_codes = 1;
    if (t->reported[0]) open.requested_on = (char *)t->reported;
    return envelope_pack(SAV__MESSAGE_TYPE__TICKET_OPEN, mid, NULL, "sav-bench", clock_now_ms(), &open.base, frame);
}

int bench_request_show(const char *ticket_id, const char *mid, envelope_buf *frame) {
    Sav__TicketShow show = SAV__TICKET_SHOW__INIT;
    show.ticket_id = (char *)ticket_id;
    return envelope_pack(SAV__MESSAGE_TYPE__TICKET_SHOW, mid, ticket_id, "sav-bench", clock_now_ms(), &show.base,
                         frame);
}

json_t *bench_reply_json(const Sav__Envelope *reply) {
    if (reply->type != SAV__MESSAGE_TYPE__COMMAND_RESULT) return NULL;
    Sav__CommandResult *res = (Sav__CommandResult *)envelope_body(reply, &sav__command_result__descriptor);
    json_t *doc = res ? json_loads(res->json, 0, NULL) : NULL;
    if (res) sav__command_result__free_unpacked(res, NULL);
    return doc;
}

int bench_reply_error(const Sav__Envelope *reply, char *msg, size_t cap) {
    if (reply->type != SAV__MESSAGE_TYPE__ERROR_REPLY) return 0;
    Sav__ErrorReply *e = (Sav__ErrorReply *)envelope_body(reply, &sav__error_reply__descriptor);
    if (!e) {
        snprintf(msg, cap, "undecodable error reply: %s", err_get());
        return SAV__ERROR_CODE__ERR_INTERNAL;
    }
    int code = e->code ? (int)e->code : SAV__ERROR_CODE__ERR_INTERNAL;
    snprintf(msg, cap, "%s", e->message);
    sav__error_reply__free_unpacked(e, NULL);
    return code;
}
