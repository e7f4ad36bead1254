#include "parts.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <string.h>

/* Checks the centre and the part against the catalog; 0 or -1 with err. */
static int parts_check(service *svc, const char *centre, const char *ref) {
    if (!centre || !catalog_centre_find(service_catalog(svc), centre)) {
        err_set("service centre \"%s\" is not in the catalog", centre ? centre : "");
        return -1;
    }
    if (ref && !catalog_part_find(service_catalog(svc), ref)) {
        err_set("part \"%s\" is not in the catalog", ref);
        return -1;
    }
    return 0;
}

void parts_stock_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *centre = command_arg(cmd, "centre");
    if (parts_check(svc, centre, NULL) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "stock:%s", centre), store_key(service_store(svc), 0, name, key);
    store_shard_prefix(service_store(svc), 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL_RO"), store_args_add(&a, "parts_stock"), store_args_add(&a, "1"), store_args_add(&a, key);
    store_args_add(&a, prefix), store_args_add(&a, centre);
    const catalog_part *p;
    for (size_t i = 0; (p = catalog_part_at(service_catalog(svc), i)) != NULL; i++) store_args_add(&a, p->ref);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", r ? r->str : err_get());
        if (r) freeReplyObject(r);
        return;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i];
        const catalog_part *part = catalog_part_find(service_catalog(svc), e->element[0]->str);
        json_array_append_new(rows, json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:I}", "part", e->element[0]->str, "name",
                                              part ? part->name : "", "on_hand", atoi(e->element[1]->str), "reserved",
                                              atoi(e->element[2]->str), "received", atoi(e->element[3]->str), "consumed",
                                              atoi(e->element[4]->str), "adjusted", atoi(e->element[5]->str),
                                              "tickets_waiting", (json_int_t)e->element[6]->integer));
    }
    freeReplyObject(r);
    service_reply_json(reply, json_pack("{s:s,s:o}", "centre", centre, "parts", rows));
}

/* Moves stock (received or adjusted) and moves on the tickets whose parts became complete. */
static void parts_move(service *svc, const Sav__Command *cmd, long delta, const char *kind, const char *reason,
                       service_reply *reply) {
    const char *centre = command_arg(cmd, "centre"), *ref = command_arg(cmd, "part");
    if (parts_check(svc, centre, ref) != 0 || !cmd->request_id || validate_token("request id", cmd->request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", cmd->request_id ? err_get() : "request id missing");
        return;
    }
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[128];
    store_request_key(st, 0, cmd->name, cmd->request_id, req);
    snprintf(name, sizeof(name), "stock:%s", centre), store_key(st, 0, name, key);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "parts_move"), store_args_add(&a, "2");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, prefix), store_args_add(&a, centre);
    store_args_add(&a, ref), store_args_addf(&a, "%ld", delta), store_args_add(&a, kind);
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, reason);
    store_args_add(&a, service_actor(svc));
    redisReply *r = store_args_call(st, &a);
    if (service_reply_failure(reply, r, "such part")) {
        if (r) freeReplyObject(r);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    } else {
        json_t *served = json_array();
        for (size_t i = 0; i < r->element[2]->elements; i++) json_array_append_new(served, json_string(r->element[2]->element[i]->str));
        ticket_resume_parts(svc, r->element[2]);
        service_reply_json(reply, json_pack("{s:s,s:s,s:I,s:b,s:o}", "centre", centre, "part", ref, "on_hand",
                                            (json_int_t)r->element[0]->integer, "replayed", r->element[1]->integer == 1,
                                            "tickets_completed", served));
    }
    freeReplyObject(r);
}

void parts_receive_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long qty;
    if (command_int(cmd, "quantity", 1, 100000, 0, &qty) != 0 || qty == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", qty ? err_get() : "a quantity is required");
        return;
    }
    parts_move(svc, cmd, qty, "received", command_arg(cmd, "reason") ?: "delivery", reply);
}

void parts_adjust_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long delta;
    const char *reason = command_arg(cmd, "reason");
    if (command_int(cmd, "delta", -100000, 100000, 0, &delta) != 0 || delta == 0 || !reason ||
        validate_text("reason", reason, 500, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s",
                            !reason ? "an adjustment needs --reason" : delta == 0 ? "the change must not be 0" : err_get());
        return;
    }
    parts_move(svc, cmd, delta, "adjusted", reason, reply);
}
