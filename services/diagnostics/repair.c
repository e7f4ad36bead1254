/* Repair steps recorded by technicians: start, done, exchange, impossible.
 * The state machine is common/lifecycle.c; the parts reserved at the verdict
 * are consumed by a done repair and given back otherwise, in the same step. */
#include "repair.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

static const char *repair_request(const Sav__Command *cmd) {
    return cmd->request_id ? cmd->request_id : "";
}

void repair_start(service *svc, const Sav__Command *cmd, service_reply *reply) {
    ticket_notice notice = {"repair_started", 1, NULL, 0};
    ticket_step step = {repair_request(cmd), command_arg(cmd, "id") ?: "", LC_REPAIR_START, service_actor(svc), "",
                        &notice, "", NULL, 0, NULL, NULL, 0};
    ticket_step_reply(svc, &step, reply);
}

/* Ends the repair with an outcome: the ticket becomes ready, the customer is told, parts are settled. */
static void repair_finish(service *svc, const Sav__Command *cmd, const char *outcome, const char *note,
                          const char *parts, const char **extra, size_t nextra, service_reply *reply) {
    const char *tid = command_arg(cmd, "id") ?: "";
    ticket_facts t;
    char requested[CLOCK_DATE_LEN] = "", immob[16] = "0";
    if (validate_ticket_id(tid) == 0 && ticket_read(svc, tid, &t) == 0) {
        char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
        ticket_keys(svc, tid, key, prefix);
        const char *argv[] = {"HGET", key, "requested_on"};
        size_t lens[] = {4, strlen(key), 12};
        redisReply *r = store_call(service_store(svc), 3, argv, lens);
        if (r && r->type == REDIS_REPLY_STRING) snprintf(requested, sizeof(requested), "%s", r->str);
        if (r) freeReplyObject(r);
        snprintf(immob, sizeof(immob), "%d", ticket_immobilisation_days(&t, requested));
    }
    const char *vars[] = {"outcome", outcome, "note", note ? note : ""};
    ticket_notice notice = {"ready_for_pickup", 1, vars, 2};
    const char *fields[8] = {"outcome", outcome, "repair_note", note ? note : "", "immobilisation_days", immob};
    size_t nfields = 3;
    for (size_t i = 0; i < nextra && nfields < 4; i++, nfields++)
        fields[2 * nfields] = extra[2 * i], fields[2 * nfields + 1] = extra[2 * i + 1];
    ticket_step step = {repair_request(cmd), tid, LC_REPAIR_DONE, service_actor(svc), note ? note : outcome, &notice,
                        parts, fields, nfields, NULL, NULL, 0};
    ticket_step_reply(svc, &step, reply);
}

void repair_done(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *note = command_arg(cmd, "note");
    if (note && validate_text("note", note, 1000, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    repair_finish(svc, cmd, "repaired", note, "consume", NULL, 0, reply);
}

void repair_impossible(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *why = command_arg(cmd, "reason");
    if (!why || validate_text("reason", why, 1000, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", why ? err_get() : "--reason is required");
        return;
    }
    repair_finish(svc, cmd, "unrepaired", why, "release", NULL, 0, reply);
}

/* Registers the replacement unit to the customer, linked both ways to the one it replaces (C4 for a repair). */
static int repair_register_replacement(service *svc, const Sav__Command *cmd, const ticket_facts *t, const char *serial,
                                       const char *model) {
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], pkey[STORE_KEY_LEN], ckey[STORE_KEY_LEN], okey[STORE_KEY_LEN], name[160], today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    store_request_key(st, 0, "repair.exchange.replacement", cmd->request_id, req);
    snprintf(name, sizeof(name), "product:%s", serial), store_key(st, 0, name, pkey);
    snprintf(name, sizeof(name), "customer:%s", t->customer_id), store_key(st, 0, name, ckey);
    snprintf(name, sizeof(name), "product:%s", t->serial), store_key(st, 0, name, okey);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "product_add"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, pkey), store_args_add(&a, ckey);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, serial), store_args_add(&a, t->customer_id);
    store_args_add(&a, "model"), store_args_add(&a, model), store_args_add(&a, "delivered_on"), store_args_add(&a, today);
    store_args_add(&a, "second_hand"), store_args_add(&a, "0"), store_args_add(&a, "replaces"), store_args_add(&a, t->serial);
    store_args_add(&a, "replacement_after_repair_request"), store_args_add(&a, strcmp(t->kind, "repair") == 0 ? "1" : "0");
    store_args_addf(&a, "bought_at"), store_args_addf(&a, "exchange of %s (%s)", t->serial, t->id);
    redisReply *r = store_args_call(st, &a);
    int ok = r && r->type == REDIS_REPLY_ARRAY;
    if (!ok) err_set("%s", !r ? err_get() : r->type == REDIS_REPLY_ERROR ? r->str + (strncmp(r->str, "REFUSED ", 8) ? 0 : 8) : "?");
    if (r) freeReplyObject(r);
    if (!ok) return -1;
    /* The old unit points to its replacement; setting it again is harmless. */
    const char *argv[] = {"HSET", okey, "replaced_by", serial};
    size_t lens[] = {4, strlen(okey), 11, strlen(serial)};
    r = store_call(st, 4, argv, lens);
    ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r) freeReplyObject(r);
    return ok ? 0 : -1;
}

void repair_exchange(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "id"), *serial = command_arg(cmd, "new_serial"), *model = command_arg(cmd, "model");
    ticket_facts t;
    if (validate_ticket_id(tid) != 0 || validate_token("new serial number", serial) != 0 || !cmd->request_id ||
        validate_token("request id", cmd->request_id) != 0 || (model && !catalog_model_find(service_catalog(svc), model))) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", model && !catalog_model_find(service_catalog(svc), model)
                                                                        ? "the replacement's model is not in the catalog"
                                                                        : err_get());
        return;
    }
    int found = ticket_read(svc, tid, &t);
    if (found != 0) {
        service_reply_error(reply, found < 0 ? SAV__ERROR_CODE__ERR_UNAVAILABLE : SAV__ERROR_CODE__ERR_NOT_FOUND,
                            found < 0 ? "redis unavailable: %s" : "no ticket %s", found < 0 ? err_get() : tid);
        return;
    }
    char scope[64];
    snprintf(scope, sizeof(scope), "%s/%s", tid, lifecycle_event_name(LC_REPAIR_DONE));
    if (ticket_request_seen(svc, scope, cmd->request_id)) {
        /* Already applied: the step replays its first answer. */
        const char *extra[] = {"new_serial", serial};
        repair_finish(svc, cmd, "exchanged", NULL, "release", extra, 1, reply);
        return;
    }
    if (!lifecycle_next(t.kind, t.state, LC_REPAIR_DONE)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s: start the repair before the exchange (%s)", tid, err_get());
        return;
    }
    char old_model[65] = "";
    char key[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "product:%s", t.serial), store_key(service_store(svc), 0, name, key);
    const char *argv[] = {"HGET", key, "model"};
    size_t lens[] = {4, strlen(key), 5};
    redisReply *r = store_call(service_store(svc), 3, argv, lens);
    if (r && r->type == REDIS_REPLY_STRING) snprintf(old_model, sizeof(old_model), "%s", r->str);
    if (r) freeReplyObject(r);
    if (repair_register_replacement(svc, cmd, &t, serial, model ? model : old_model) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "replacement not registered: %s", err_get());
        return;
    }
    const char *extra[] = {"new_serial", serial};
    repair_finish(svc, cmd, "exchanged", NULL, "release", extra, 1, reply);
}
