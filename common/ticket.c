#include "ticket.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A concurrent step between our read and our write is retried from a fresh read this many times. */
#define TICKET_STEP_TRIES 3

static const char *const ticket_fact_names[] = {"id", "state", "kind", "channel", "customer_id", "serial", "centre",
                                                "outcome"};

void ticket_keys(service *svc, const char *ticket_id, char key[STORE_KEY_LEN], char prefix[STORE_KEY_LEN]) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, ticket_id);
    char name[48];
    snprintf(name, sizeof(name), "ticket:%s", ticket_id);
    store_key(st, shard, name, key);
    store_shard_prefix(st, shard, prefix);
}

static void ticket_copy(char *dst, size_t len, const redisReply *v) {
    snprintf(dst, len, "%s", v->type == REDIS_REPLY_STRING ? v->str : "");
}

int ticket_read(service *svc, const char *ticket_id, ticket_facts *out) {
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    ticket_keys(svc, ticket_id, key, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "HMGET"), store_args_add(&a, key);
    for (size_t i = 0; i < 8; i++) store_args_add(&a, ticket_fact_names[i]);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r) return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 8 && r->element[0]->type == REDIS_REPLY_STRING) {
        ticket_copy(out->id, sizeof(out->id), r->element[0]);
        ticket_copy(out->state, sizeof(out->state), r->element[1]);
        ticket_copy(out->kind, sizeof(out->kind), r->element[2]);
        ticket_copy(out->channel, sizeof(out->channel), r->element[3]);
        ticket_copy(out->customer_id, sizeof(out->customer_id), r->element[4]);
        ticket_copy(out->serial, sizeof(out->serial), r->element[5]);
        ticket_copy(out->centre, sizeof(out->centre), r->element[6]);
        ticket_copy(out->outcome, sizeof(out->outcome), r->element[7]);
        rc = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        err_set("HMGET %s: %s", key, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int ticket_notice_pack(const ticket_notice *n, envelope_buf *out) {
    Sav__CustomerNotice notice = SAV__CUSTOMER_NOTICE__INIT;
    Sav__Field cells[16], *ptrs[16];
    if (n->nvars > 16) {
        err_set("too many notice variables");
        return -1;
    }
    for (size_t i = 0; i < n->nvars; i++) {
        sav__field__init(&cells[i]);
        cells[i].name = (char *)n->vars[2 * i];
        cells[i].value = (char *)(n->vars[2 * i + 1] ? n->vars[2 * i + 1] : "");
        ptrs[i] = &cells[i];
    }
    notice.event = (char *)n->event;
    notice.version = n->version;
    notice.n_vars = n->nvars;
    notice.vars = ptrs;
    out->len = sav__customer_notice__get_packed_size(&notice);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        err_set("out of memory");
        return -1;
    }
    sav__customer_notice__pack(&notice, out->data);
    return 0;
}

/* One attempt: returns the reply of ticket_step (NULL: Redis unavailable). */
static redisReply *ticket_step_call(service *svc, const char *request_id, const ticket_facts *t, const char *next,
                                    enum lifecycle_event ev, const char *actor, const char *detail,
                                    const ticket_notice *notice, const envelope_buf *body, const char **fields,
                                    size_t nfields) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, t->id);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], req[STORE_KEY_LEN], outbox[STORE_KEY_LEN], name[128];
    ticket_keys(svc, t->id, key, prefix);
    snprintf(name, sizeof(name), "req:%s", request_id);
    store_key(st, shard, name, req);
    store_key(st, shard, "outbox:notification", outbox);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_step"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, outbox);
    store_args_add(&a, prefix), store_args_add(&a, t->id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, t->state), store_args_add(&a, next), store_args_add(&a, lifecycle_event_name(ev));
    store_args_add(&a, actor), store_args_add(&a, detail);
    if (notice && notice->event)
        store_args_addf(&a, "%s/%s/%u", t->id, notice->event, notice->version);
    else
        store_args_add(&a, "");
    store_args_addb(&a, body->data, body->len);
    for (size_t i = 0; i < 2 * nfields; i++) store_args_add(&a, fields[i]);
    return store_args_call(st, &a);
}

/* Interprets ticket_step's answer; returns 1 when the caller should re-read and try again. */
static int ticket_step_answer(service *svc, redisReply *r, const ticket_facts *t, service_reply *reply) {
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CONFLICT", 8) == 0) return 1;
    if (r->type == REDIS_REPLY_ERROR && strcmp(r->str, "NOTFOUND") == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no ticket %s", t->id);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        log_error(t->id, NULL, "ticket_step: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "the step could not be recorded");
    } else {
        service_reply_json(reply, json_pack("{s:s,s:s,s:s,s:b}", "id", t->id, "state", r->element[0]->str,
                                            "previous_state", t->state, "replayed", r->element[1]->integer == 1));
        if (service_relay(svc, SVC_NOTIFICATION)) relay_poke(service_relay(svc, SVC_NOTIFICATION));
    }
    return 0;
}

/* Returns the stored answer of an earlier identical request (malloc'd state), NULL if none; -1 in *failed. */
static char *ticket_replayed(service *svc, const char *request_id, const char *ticket_id, int *failed) {
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], name[128];
    snprintf(name, sizeof(name), "req:%s", request_id);
    store_key(st, store_ticket_shard(st, ticket_id), name, req);
    const char *argv[] = {"GET", req};
    size_t lens[] = {3, strlen(req)};
    redisReply *r = store_call(st, 2, argv, lens);
    *failed = r == NULL;
    char *state = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r) freeReplyObject(r);
    return state;
}

/* Makes one attempt; returns 1 when a concurrent step moved the ticket and the caller should try again. */
static int ticket_step_once(service *svc, const char *request_id, const char *ticket_id, enum lifecycle_event ev,
                            const char *actor, const char *detail, const ticket_notice *notice,
                            const envelope_buf *body, const char **fields, size_t nfields, service_reply *reply) {
    ticket_facts t;
    int failed, found = ticket_read(svc, ticket_id, &t);
    if (found != 0) {
        if (found < 0)
            service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        else
            service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no ticket %s", ticket_id);
        return 0;
    }
    char *replayed = ticket_replayed(svc, request_id, ticket_id, &failed);
    if (failed || replayed) {
        if (failed)
            service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        else
            service_reply_json(reply, json_pack("{s:s,s:s,s:n,s:b}", "id", t.id, "state", replayed, "previous_state",
                                                "replayed", 1));
        free(replayed);
        return 0;
    }
    const char *next = lifecycle_next(t.kind, t.state, ev);
    if (!next) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s: %s", ticket_id, err_get());
        return 0;
    }
    redisReply *r = ticket_step_call(svc, request_id, &t, next, ev, actor, detail, notice, body, fields, nfields);
    if (!r) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return 0;
    }
    int again = ticket_step_answer(svc, r, &t, reply);
    freeReplyObject(r);
    return again;
}

void ticket_step_reply(service *svc, const char *request_id, const char *ticket_id, enum lifecycle_event ev,
                       const char *actor, const char *detail, const ticket_notice *notice, const char **fields,
                       size_t nfields, service_reply *reply) {
    if (validate_ticket_id(ticket_id) != 0 || validate_token("request id", request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    envelope_buf body = {0};
    if (notice && notice->event && ticket_notice_pack(notice, &body) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", err_get());
        return;
    }
    int attempt = 0;
    while (ticket_step_once(svc, request_id, ticket_id, ev, actor, detail, notice, &body, fields, nfields, reply) &&
           ++attempt < TICKET_STEP_TRIES)
        ;
    if (attempt == TICKET_STEP_TRIES)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s is changing concurrently: try again", ticket_id);
    envelope_buf_free(&body);
}
