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
                                                "outcome", "verdict_version", "created_at", "model"};
#define TICKET_NFACTS 11

void ticket_keys(service *svc, const char *ticket_id, char key[STORE_KEY_LEN], char prefix[STORE_KEY_LEN]) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, ticket_id);
    char name[48];
    snprintf(name, sizeof(name), "ticket:%s", ticket_id);
    store_key(st, shard, name, key);
    store_shard_prefix(st, shard, prefix);
}

void ticket_read_args(service *svc, const char *function, const char *ticket_id, store_args *a) {
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    ticket_keys(svc, ticket_id, key, prefix);
    store_args_init(a);
    store_args_add(a, "FCALL_RO"), store_args_add(a, function), store_args_add(a, "1");
    store_args_addf(a, "%s", key), store_args_addf(a, "%s", prefix);
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
    for (size_t i = 0; i < TICKET_NFACTS; i++) store_args_add(&a, ticket_fact_names[i]);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r) return -1;
    int rc = 1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == TICKET_NFACTS && r->element[0]->type == REDIS_REPLY_STRING) {
        ticket_copy(out->id, sizeof(out->id), r->element[0]);
        ticket_copy(out->state, sizeof(out->state), r->element[1]);
        ticket_copy(out->kind, sizeof(out->kind), r->element[2]);
        ticket_copy(out->channel, sizeof(out->channel), r->element[3]);
        ticket_copy(out->customer_id, sizeof(out->customer_id), r->element[4]);
        ticket_copy(out->serial, sizeof(out->serial), r->element[5]);
        ticket_copy(out->centre, sizeof(out->centre), r->element[6]);
        ticket_copy(out->outcome, sizeof(out->outcome), r->element[7]);
        out->verdict_version = r->element[8]->type == REDIS_REPLY_STRING ? atoi(r->element[8]->str) : 0;
        out->created_at = r->element[9]->type == REDIS_REPLY_STRING ? atoll(r->element[9]->str) : 0;
        ticket_copy(out->model, sizeof(out->model), r->element[10]);
        rc = 0;
    } else if (r->type == REDIS_REPLY_ERROR) {
        err_set("HMGET %s: %s", key, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

int ticket_immobilisation_days(const ticket_facts *t, const char *requested_on) {
    char handed[CLOCK_DATE_LEN], today[CLOCK_DATE_LEN];
    clock_date_paris(t->created_at, handed);
    clock_date_paris(clock_now_ms(), today);
    const char *from = clock_date_valid(requested_on) == 0 && strcmp(requested_on, handed) > 0 ? requested_on : handed;
    return clock_date_diff_days(from, today);
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

/* Packs the TicketReady event of a step into `ready` (outcome from the step's fields); caller frees out. */
static int ticket_ready_pack(const ticket_step *step, envelope_buf *out) {
    Sav__TicketReady ready = SAV__TICKET_READY__INIT;
    ready.outcome = "";
    ready.step = (char *)lifecycle_event_name(step->ev);
    for (size_t i = 0; i < step->nfields; i++)
        if (strcmp(step->fields[2 * i], "outcome") == 0) ready.outcome = (char *)step->fields[2 * i + 1];
    out->len = sav__ticket_ready__get_packed_size(&ready);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        err_set("out of memory");
        return -1;
    }
    sav__ticket_ready__pack(&ready, out->data);
    return 0;
}

/* One attempt: returns the reply of ticket_step (NULL: Redis unavailable). */
static redisReply *ticket_step_call(service *svc, const ticket_step *step, const ticket_facts *t, const char *next,
                                    const envelope_buf *body) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, t->id);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], req[STORE_KEY_LEN], outbox[STORE_KEY_LEN], billing[STORE_KEY_LEN];
    envelope_buf ready = {0};
    if (strcmp(next, "ready") == 0 && ticket_ready_pack(step, &ready) != 0) return NULL;
    ticket_keys(svc, t->id, key, prefix);
    char scope[64];
    snprintf(scope, sizeof(scope), "%s/%s", t->id, lifecycle_event_name(step->ev));
    store_request_key(st, shard, scope, step->request_id, req);
    store_key(st, shard, "outbox:notification", outbox);
    store_key(st, shard, "outbox:billing", billing);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_step"), store_args_add(&a, "4");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, billing);
    store_args_add(&a, prefix), store_args_add(&a, t->id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, t->state), store_args_add(&a, next), store_args_add(&a, lifecycle_event_name(step->ev));
    store_args_add(&a, step->actor), store_args_add(&a, step->detail ? step->detail : "");
    if (step->notice && step->notice->event)
        store_args_addf(&a, "%s/%s/%u", t->id, step->notice->event, step->notice->version);
    else
        store_args_add(&a, "");
    store_args_addb(&a, body->data, body->len);
    store_args_add(&a, step->parts ? step->parts : "");
    store_args_addb(&a, ready.data, ready.len);
    store_args_add(&a, step->aux_hash ? step->aux_hash : "");
    for (size_t i = 0; i < 2 * step->nfields; i++) store_args_add(&a, step->fields[i]);
    if (step->aux_hash) {
        store_args_add(&a, "--");
        for (size_t i = 0; i < 2 * step->naux; i++) store_args_add(&a, step->aux_fields[i]);
    }
    redisReply *r = store_args_call(st, &a);
    envelope_buf_free(&ready);
    return r;
}

/* Returns the stored answer of an earlier identical request (malloc'd state), NULL if none; *failed on error. */
static char *ticket_replayed(service *svc, const ticket_step *step, int *failed) {
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], scope[64];
    snprintf(scope, sizeof(scope), "%s/%s", step->ticket_id, lifecycle_event_name(step->ev));
    store_request_key(st, store_ticket_shard(st, step->ticket_id), scope, step->request_id, req);
    const char *argv[] = {"GET", req};
    size_t lens[] = {3, strlen(req)};
    redisReply *r = store_call(st, 2, argv, lens);
    *failed = r == NULL;
    char *state = r && r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;
    if (r) freeReplyObject(r);
    return state;
}

/* Result codes of one attempt besides the error codes. */
#define TICKET_AGAIN -1

static int ticket_apply_once(service *svc, const ticket_step *step, const envelope_buf *body, json_t **result) {
    ticket_facts t;
    int failed, found = ticket_read(svc, step->ticket_id, &t);
    if (found != 0) {
        if (found > 0) err_set("no ticket %s", step->ticket_id);
        return found < 0 ? SAV__ERROR_CODE__ERR_UNAVAILABLE : SAV__ERROR_CODE__ERR_NOT_FOUND;
    }
    char *replayed = ticket_replayed(svc, step, &failed);
    if (failed) return SAV__ERROR_CODE__ERR_UNAVAILABLE;
    if (replayed) {
        *result = json_pack("{s:s,s:s,s:n,s:b}", "id", t.id, "state", replayed, "previous_state", "replayed", 1);
        free(replayed);
        return 0;
    }
    const char *next = lifecycle_next(t.kind, t.state, step->ev);
    if (!next) {
        char why[384];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("%s: %s", t.id, why);
        return SAV__ERROR_CODE__ERR_REJECTED;
    }
    redisReply *r = ticket_step_call(svc, step, &t, next, body);
    if (!r) return SAV__ERROR_CODE__ERR_UNAVAILABLE;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CONFLICT", 8) == 0) {
        rc = TICKET_AGAIN;
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOTFOUND", 8) == 0) {
        err_set("no ticket %s", t.id);
        rc = SAV__ERROR_CODE__ERR_NOT_FOUND;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        err_set("the step could not be recorded: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        log_error(t.id, NULL, "ticket_step: %s", err_get());
        rc = SAV__ERROR_CODE__ERR_INTERNAL;
    } else {
        *result = json_pack("{s:s,s:s,s:s,s:b}", "id", t.id, "state", r->element[0]->str, "previous_state", t.state,
                            "replayed", r->element[1]->integer == 1);
        ticket_resume_parts(svc, r->element[2]);
        if (service_relay(svc, SVC_NOTIFICATION)) relay_poke(service_relay(svc, SVC_NOTIFICATION));
        if (service_relay(svc, SVC_BILLING)) relay_poke(service_relay(svc, SVC_BILLING));
    }
    freeReplyObject(r);
    return rc;
}

int ticket_apply(service *svc, const ticket_step *step, json_t **result) {
    *result = NULL;
    if (validate_ticket_id(step->ticket_id) != 0 || validate_token("request id", step->request_id) != 0)
        return SAV__ERROR_CODE__ERR_REJECTED;
    envelope_buf body = {0};
    if (step->notice && step->notice->event && ticket_notice_pack(step->notice, &body) != 0)
        return SAV__ERROR_CODE__ERR_INTERNAL;
    int rc = TICKET_AGAIN;
    for (int attempt = 0; attempt < TICKET_STEP_TRIES && rc == TICKET_AGAIN; attempt++)
        rc = ticket_apply_once(svc, step, &body, result);
    if (rc == TICKET_AGAIN) {
        err_set("%s is changing concurrently: try again", step->ticket_id);
        rc = SAV__ERROR_CODE__ERR_REJECTED;
    }
    envelope_buf_free(&body);
    return rc;
}

void ticket_step_reply(service *svc, const ticket_step *step, service_reply *reply) {
    json_t *result;
    int rc = ticket_apply(svc, step, &result);
    if (rc == 0)
        service_reply_json(reply, result);
    else if (rc == SAV__ERROR_CODE__ERR_UNAVAILABLE)
        service_reply_error(reply, rc, "redis unavailable: %s", err_get());
    else
        service_reply_error(reply, rc, "%s", err_get());
}

int ticket_parts_complete(service *svc, const char *tid) {
    char need[STORE_KEY_LEN], held[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "parts_need:%s", tid), store_key(service_store(svc), 0, name, need);
    snprintf(name, sizeof(name), "parts_held:%s", tid), store_key(service_store(svc), 0, name, held);
    const char *a1[] = {"HGETALL", need}, *a2[] = {"HGETALL", held};
    size_t l1[] = {7, strlen(need)}, l2[] = {7, strlen(held)};
    const int argc[] = {2, 2};
    const char **argv[] = {a1, a2};
    const size_t *lens[] = {l1, l2};
    redisReply *r[2];
    if (store_pipeline(service_store(svc), 2, argc, argv, lens, r) != 0) return 0;
    int complete = r[0]->type == REDIS_REPLY_ARRAY && r[1]->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; complete && i + 1 < r[0]->elements; i += 2) {
        int got = 0;
        for (size_t j = 0; j + 1 < r[1]->elements; j += 2)
            if (strcmp(r[1]->element[j]->str, r[0]->element[i]->str) == 0) got = atoi(r[1]->element[j + 1]->str);
        complete = got >= atoi(r[0]->element[i + 1]->str);
    }
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return complete;
}

void ticket_resume_parts(service *svc, const redisReply *tickets) {
    for (size_t i = 0; tickets && tickets->type == REDIS_REPLY_ARRAY && i < tickets->elements; i++) {
        const char *tid = tickets->element[i]->str;
        ticket_facts t;
        if (ticket_read(svc, tid, &t) != 0 || strcmp(t.state, "waiting_parts") != 0 || !ticket_parts_complete(svc, tid))
            continue;
        char rid[96];
        snprintf(rid, sizeof(rid), "parts-arrived-%s-v%d", tid, t.verdict_version);
        ticket_step step = {rid, tid, LC_PARTS_ARRIVED, "stock", "all parts reserved", NULL, "", NULL, 0, NULL, NULL, 0};
        json_t *result;
        if (ticket_apply(svc, &step, &result) == 0)
            json_decref(result);
        else
            log_warn(tid, NULL, "parts arrived, ticket not moved on: %s", err_get());
    }
}

int ticket_mark_once(service *svc, const ticket_mark *m) {
    store *st = service_store(svc);
    char dedup[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], outbox[STORE_KEY_LEN];
    store_key(st, store_ticket_shard(st, m->ticket), m->dedup, dedup);
    ticket_keys(svc, m->ticket, key, prefix);
    store_key(st, store_ticket_shard(st, m->ticket), "outbox:notification", outbox);
    if (strlen(m->dedup) >= ENVELOPE_ID_LEN) {
        log_error(m->ticket, NULL, "%s: mark name %s is too long for a message id", m->event, m->dedup);
        return -1;
    }
    envelope_buf body = {0};
    if (m->notice && ticket_notice_pack(m->notice, &body) != 0) return -1;
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_mark"), store_args_add(&a, "3");
    store_args_add(&a, dedup), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, prefix);
    store_args_add(&a, m->ticket), store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, "0");
    store_args_add(&a, m->event), store_args_add(&a, m->actor), store_args_add(&a, m->detail);
    /* The dedup name is unique per mark: it is the notice's message id. */
    store_args_add(&a, m->notice ? m->dedup : "");
    store_args_addb(&a, body.data, body.len);
    store_args_add(&a, m->zset ? m->zset : ""), store_args_addf(&a, "%lld", m->score);
    store_args_add(&a, m->hash ? m->hash : "");
    for (size_t i = 0; i < 2 * m->nfields; i++) store_args_add(&a, m->fields[i]);
    redisReply *r = store_args_call(st, &a);
    envelope_buf_free(&body);
    int rc = -1;
    if (!r)
        log_warn(m->ticket, NULL, "%s not recorded: %s", m->event, err_get());
    else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
        rc = strcmp(r->str, "applied") == 0;
    else
        log_error(m->ticket, NULL, "%s: %s", m->event, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r) freeReplyObject(r);
    if (rc == 1) {
        log_info(m->ticket, NULL, "%s (%s)", m->event, m->detail);
        if (m->notice && service_relay(svc, SVC_NOTIFICATION)) relay_poke(service_relay(svc, SVC_NOTIFICATION));
    }
    return rc;
}

int ticket_request_seen(service *svc, const char *scope, const char *request_id) {
    store *st = service_store(svc);
    char req[STORE_KEY_LEN];
    store_request_key(st, 0, scope, request_id, req);
    const char *argv[] = {"EXISTS", req};
    size_t lens[] = {6, strlen(req)};
    redisReply *r = store_call(st, 2, argv, lens);
    int seen = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r) freeReplyObject(r);
    return seen;
}
