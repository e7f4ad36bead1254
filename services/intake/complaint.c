/* Complaints and disputes (D2, D3): a customer's written complaint about a
 * ticket, its deadline, escalation before it expires, its resolution, and
 * for consumers the mediator's contact when it stays unresolved. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const complaint_reasons[] = {"not_repaired", "extra_costs", "not_returned", "damaged", NULL};
static const char *const complaint_resolutions[] = {"repair", "goodwill_credit", "refund", "rejected", NULL};

/* The complaint's deadline: --notice-deadline, else today + intake.complaint_deadline_days. */
static int complaint_deadline(service *svc, const char *given, char out[CLOCK_DATE_LEN]) {
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    if (!given) return clock_date_add_days(today, service_settings(svc)->complaint_deadline_days, out);
    if (clock_date_valid(given) != 0) return -1;
    if (strcmp(given, today) < 0) {
        err_set("the notice deadline %s is already past", given);
        return -1;
    }
    snprintf(out, CLOCK_DATE_LEN, "%s", given);
    return 0;
}

/* Answers {"id", "replayed"} for the complaint id (or the refusal of a complaint Function). */
static void complaint_answer(redisReply *r, const char *id, const char *what, service_reply *reply) {
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CONFLICT", 8) == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s is already resolved", what);
    else if (service_reply_failure(reply, r, what))
        ;
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    else
        service_reply_json(reply, json_pack("{s:s,s:b}", "id", id ? id : r->element[0]->str, "replayed",
                                            r->element[1]->integer == 1));
    if (r) freeReplyObject(r);
}

void complaint_open_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "ticket"), *reason = command_arg(cmd, "reason"), *text = command_arg(cmd, "text");
    char deadline[CLOCK_DATE_LEN];
    ticket_facts t;
    if (validate_ticket_id(tid) != 0 || validate_choice("reason", reason, complaint_reasons) != 0 ||
        validate_text("complaint text", text, 4000, 1) != 0 || !cmd->request_id ||
        validate_token("request id", cmd->request_id) != 0 ||
        complaint_deadline(svc, command_arg(cmd, "notice_deadline"), deadline) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", cmd->request_id ? err_get() : "request id missing");
        return;
    }
    int found = ticket_read(svc, tid, &t);
    if (found != 0) {
        service_reply_error(reply, found < 0 ? SAV__ERROR_CODE__ERR_UNAVAILABLE : SAV__ERROR_CODE__ERR_NOT_FOUND,
                            found < 0 ? "redis unavailable: %s" : "no ticket %s", found < 0 ? err_get() : tid);
        return;
    }
    char type[16] = "consumer";
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], req[STORE_KEY_LEN], seq[STORE_KEY_LEN], outbox[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "customer:%s", t.customer_id), store_key(st, 0, name, key);
    const char *hargv[] = {"HGET", key, "type"};
    size_t hlens[] = {4, strlen(key), 4};
    redisReply *c = store_call(st, 3, hargv, hlens);
    if (c && c->type == REDIS_REPLY_STRING) snprintf(type, sizeof(type), "%s", c->str);
    if (c) freeReplyObject(c);
    ticket_keys(svc, tid, key, prefix);
    store_request_key(st, 0, "complaint.open", cmd->request_id, req);
    store_key(st, 0, "seq:complaint", seq);
    store_key(st, 0, "outbox:notification", outbox);
    const char *incr[] = {"INCR", seq};
    size_t incr_lens[] = {4, strlen(seq)};
    redisReply *n = store_call(st, 2, incr, incr_lens);
    if (!n || n->type != REDIS_REPLY_INTEGER) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", n ? "INCR refused" : err_get());
        if (n) freeReplyObject(n);
        return;
    }
    char id[24];
    snprintf(id, sizeof(id), "CMP-%06lld", n->integer);
    freeReplyObject(n);
    const char *vars[] = {"complaint_id", id, "reason", reason, "deadline", deadline};
    ticket_notice notice = {"complaint_acknowledged", 1, vars, 3};
    envelope_buf body = {0};
    if (ticket_notice_pack(&notice, &body) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", err_get());
        return;
    }
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "complaint_open"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, outbox);
    store_args_add(&a, prefix), store_args_add(&a, tid);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_addf(&a, "%ld", clock_date_score(deadline));
    store_args_add(&a, service_actor(svc));
    store_args_addb(&a, body.data, body.len);
    store_args_add(&a, id);
    store_args_add(&a, "reason"), store_args_add(&a, reason), store_args_add(&a, "text"), store_args_add(&a, text);
    store_args_add(&a, "deadline"), store_args_add(&a, deadline), store_args_add(&a, "customer_id");
    store_args_add(&a, t.customer_id), store_args_add(&a, "customer_type"), store_args_add(&a, type);
    char what[64];
    snprintf(what, sizeof(what), "ticket %s", tid);
    complaint_answer(store_args_call(st, &a), NULL, what, reply);
    envelope_buf_free(&body);
    relay_poke(service_relay(svc, SVC_NOTIFICATION));
}

void complaint_resolve_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id"), *resolution = command_arg(cmd, "resolution"), *note = command_arg(cmd, "note");
    long amount;
    if (validate_token("complaint id", id) != 0 || validate_choice("resolution", resolution, complaint_resolutions) != 0 ||
        (note && validate_text("note", note, 2000, 1) != 0) || command_int(cmd, "amount", 0, 100000000, 0, &amount) != 0 ||
        !cmd->request_id || validate_token("request id", cmd->request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", cmd->request_id ? err_get() : "request id missing");
        return;
    }
    if (strcmp(resolution, "rejected") == 0 && !note) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "a rejected complaint needs --note with the reason");
        return;
    }
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], req[STORE_KEY_LEN], outbox[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "complaint:%s", id), store_key(st, 0, name, key);
    store_request_key(st, 0, "complaint.resolve", cmd->request_id, req);
    store_key(st, 0, "outbox:notification", outbox);
    store_shard_prefix(st, 0, prefix);
    const char *vars[] = {"complaint_id", id, "resolution", resolution, "note", note ? note : ""};
    ticket_notice notice = {"complaint_resolved", 1, vars, 3};
    envelope_buf body = {0};
    if (ticket_notice_pack(&notice, &body) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", err_get());
        return;
    }
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "complaint_resolve"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, service_actor(svc));
    store_args_addb(&a, body.data, body.len);
    store_args_add(&a, "resolution"), store_args_add(&a, resolution);
    store_args_add(&a, "resolution_note"), store_args_add(&a, note ? note : "");
    store_args_add(&a, "amount_cents"), store_args_addf(&a, "%ld", amount);
    char what[64];
    snprintf(what, sizeof(what), "complaint %s", id);
    complaint_answer(store_args_call(st, &a), id, what, reply);
    envelope_buf_free(&body);
    relay_poke(service_relay(svc, SVC_NOTIFICATION));
}

void complaint_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id");
    if (validate_token("complaint id", id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    char name[96];
    snprintf(name, sizeof(name), "complaint:%s", id);
    redisReply *r = store_hgetall(service_store(svc), 0, name);
    if (!r) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no complaint %s", id);
    else
        service_reply_json(reply, views_object(r, NULL));
    freeReplyObject(r);
}
