#include "verdict.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "facts.h"
#include "log.h"
#include "money.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERDICT_MAX_PARTS 16

static const char *const verdict_causes[] = {"manufacturing", "wear", "misuse", "accident", "external", "no_fault", NULL};
static const char *const verdict_actions[] = {"repair", "replace_parts", "exchange", "none", NULL};

typedef struct verdict_part {
    char ref[65];
    int quantity;
} verdict_part;

/* The verdict as given, checked against the catalog. */
typedef struct verdict {
    const char *cause, *action, *note, *tech;
    long labour;
    verdict_part parts[VERDICT_MAX_PARTS];
    int nparts;
    int64_t parts_cents;
} verdict;

/* Parses one --part REF[:QTY]; adds to an existing line of the same part. */
static int verdict_part_parse(service *svc, verdict *v, const char *spec) {
    char ref[65];
    int qty = 1;
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= sizeof(ref)) goto bad;
    memcpy(ref, spec, len), ref[len] = '\0';
    if (colon) {
        char *end;
        long q = strtol(colon + 1, &end, 10);
        if (*end || q < 1 || q > 100) goto bad;
        qty = (int)q;
    }
    const catalog_part *p = catalog_part_find(service_catalog(svc), ref);
    if (!p) {
        err_set("part \"%s\" is not in the catalog", ref);
        return -1;
    }
    for (int i = 0; i < v->nparts; i++)
        if (strcmp(v->parts[i].ref, ref) == 0) {
            v->parts[i].quantity += qty;
            v->parts_cents += p->price_cents * qty;
            return 0;
        }
    if (v->nparts == VERDICT_MAX_PARTS) {
        err_set("at most %d different parts", VERDICT_MAX_PARTS);
        return -1;
    }
    snprintf(v->parts[v->nparts].ref, sizeof(v->parts[0].ref), "%s", ref);
    v->parts[v->nparts++].quantity = qty;
    v->parts_cents += p->price_cents * qty;
    return 0;
bad:
    err_set("--part must be REF or REF:QTY with QTY from 1 to 100, got \"%s\"", spec);
    return -1;
}

static int verdict_parse(service *svc, const Sav__Command *cmd, verdict *v) {
    memset(v, 0, sizeof(*v));
    v->cause = command_arg(cmd, "cause"), v->action = command_arg(cmd, "action");
    v->note = command_arg(cmd, "note"), v->tech = service_actor(svc);
    if (validate_choice("cause", v->cause, verdict_causes) != 0 || validate_choice("action", v->action, verdict_actions) != 0 ||
        command_int(cmd, "labour", 0, 10000, 0, &v->labour) != 0 || (v->note && validate_text("note", v->note, 2000, 1) != 0))
        return -1;
    const char *specs[VERDICT_MAX_PARTS * 2];
    size_t n = command_args(cmd, "part", specs, VERDICT_MAX_PARTS * 2);
    for (size_t i = 0; i < n && i < VERDICT_MAX_PARTS * 2; i++)
        if (verdict_part_parse(svc, v, specs[i]) != 0) return -1;
    int no_fault = strcmp(v->cause, "no_fault") == 0, none = strcmp(v->action, "none") == 0;
    if (no_fault != none) {
        err_set(no_fault ? "a no_fault verdict takes --action none" : "--action none is for no_fault verdicts; use "
                                                                      "repair impossible for a product that cannot be repaired");
        return -1;
    }
    if (strcmp(v->action, "replace_parts") == 0 && v->nparts == 0) {
        err_set("--action replace_parts needs at least one --part");
        return -1;
    }
    if ((none || strcmp(v->action, "exchange") == 0) && v->nparts > 0) {
        err_set("--action %s takes no --part", v->action);
        return -1;
    }
    return 0;
}

/* The states after the verdict, each checked against the lifecycle. 0 or -1 with err. */
static int verdict_targets(const char *kind, const char *state, const coverage_decision *d, const verdict *v,
                           const char **complete, const char **missing) {
    const char *from = state;
    if (lifecycle_skips_diagnosis(kind)) {
        err_set("%s tickets are not diagnosed", kind);
        return -1;
    }
    if (strcmp(state, "in_diagnosis") != 0 && !(from = lifecycle_next(kind, state, LC_VERDICT_CORRECTED))) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("a verdict can be given or corrected only until repair starts (%s)", why);
        return -1;
    }
    if (strcmp(v->cause, "no_fault") == 0) {
        *complete = *missing = lifecycle_next(kind, from, LC_NO_FAULT);
    } else if (d->customer_pays) {
        /* The quote comes first; parts wait reserved (or backordered) meanwhile. */
        *complete = *missing = lifecycle_next(kind, from, LC_QUOTE_SENT);
    } else {
        *complete = from;
        *missing = lifecycle_next(kind, from, LC_PARTS_MISSING);
    }
    return *complete && *missing ? 0 : -1;
}

/* Packs the diagnosis_done notice; parts_missing says whether the customer waits for parts. */
static int verdict_notice(const char *tid, const verdict *v, const coverage_decision *d, const char *lang, int version,
                          int parts_missing, envelope_buf *out) {
    char amount[48];
    money_format(d->estimate_cents, lang, amount, sizeof(amount));
    const char *vars[] = {"cause", v->cause, "action", v->action, "basis", d->basis,
                          "customer_pays", d->customer_pays ? "1" : "0", "coverage", d->reason,
                          "estimate", d->customer_pays ? amount : "", "waiting_parts", parts_missing ? "1" : "0"};
    ticket_notice notice = {"diagnosis_done", (unsigned)version, vars, 7};
    (void)tid;
    return ticket_notice_pack(&notice, out);
}

/* Builds and runs verdict_record. */
static redisReply *verdict_call(service *svc, const Sav__Command *cmd, const ticket_facts *t, const coverage_facts *f,
                                const verdict *v, const coverage_decision *d, const char *complete,
                                const char *missing, const envelope_buf *notices, const envelope_buf *billing_body) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], req[STORE_KEY_LEN], outbox[STORE_KEY_LEN], billing[STORE_KEY_LEN];
    char scope[64];
    ticket_keys(svc, t->id, key, prefix);
    snprintf(scope, sizeof(scope), "%s/diagnose", t->id);
    store_request_key(st, 0, scope, cmd->request_id, req);
    store_key(st, 0, "outbox:notification", outbox);
    store_key(st, 0, "outbox:billing", billing);
    char cents[24], labour[16], immob[16];
    snprintf(cents, sizeof(cents), "%lld", (long long)d->estimate_cents);
    snprintf(labour, sizeof(labour), "%ld", v->labour);
    snprintf(immob, sizeof(immob), "%d", ticket_immobilisation_days(t, f->in.requested_on));
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "verdict_record"), store_args_add(&a, "4");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, billing);
    store_args_add(&a, prefix);
    store_args_add(&a, t->id), store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_addf(&a, "%s:%d", t->state, t->verdict_version);
    store_args_add(&a, complete), store_args_add(&a, missing), store_args_add(&a, v->tech);
    store_args_addf(&a, "%s/%s %s", v->cause, v->action, d->basis);
    store_args_addb(&a, notices[0].data, notices[0].len), store_args_addb(&a, notices[1].data, notices[1].len);
    if (strcmp(d->basis, "legal_conformity") == 0) store_args_addf(&a, "%ld", clock_date_score(f->in.requested_on));
    else store_args_add(&a, "");
    store_args_addf(&a, "%d", v->nparts);
    for (int i = 0; i < v->nparts; i++) store_args_add(&a, v->parts[i].ref), store_args_addf(&a, "%d", v->parts[i].quantity);
    store_args_addb(&a, billing_body->data, billing_body->len);
    store_args_add(&a, "cause"), store_args_add(&a, v->cause), store_args_add(&a, "action"), store_args_add(&a, v->action);
    store_args_add(&a, "labour_minutes"), store_args_add(&a, labour), store_args_add(&a, "note"), store_args_add(&a, v->note);
    store_args_add(&a, "parts");
    char parts[VERDICT_MAX_PARTS * 72] = "";
    for (int i = 0, pos = 0; i < v->nparts; i++)
        pos += snprintf(parts + pos, sizeof(parts) - (size_t)pos, "%s%s:%d", i ? "," : "", v->parts[i].ref, v->parts[i].quantity);
    store_args_add(&a, parts), store_args_add(&a, "--");
    store_args_add(&a, "basis"), store_args_add(&a, d->basis), store_args_add(&a, "customer_pays");
    store_args_add(&a, d->customer_pays ? "1" : "0"), store_args_add(&a, "burden_of_proof");
    store_args_add(&a, d->burden_of_proof), store_args_add(&a, "legal_until"), store_args_add(&a, d->legal_until);
    store_args_add(&a, "commercial_until"), store_args_add(&a, d->commercial_until);
    store_args_add(&a, "extended_until"), store_args_add(&a, d->extended_until), store_args_add(&a, "rule");
    store_args_add(&a, d->rule), store_args_add(&a, "estimate_cents"), store_args_add(&a, cents);
    store_args_add(&a, "reason"), store_args_add(&a, d->reason), store_args_add(&a, "--");
    if (strcmp(complete, "ready") == 0) {
        store_args_add(&a, "outcome"), store_args_add(&a, "no_fault");
        store_args_add(&a, "immobilisation_days"), store_args_add(&a, immob);
    }
    return store_args_call(st, &a);
}

/* Packs the VerdictRecorded event billing turns into a quote; caller frees out. */
static int verdict_billing_event(const verdict *v, const coverage_decision *d, int version, envelope_buf *out) {
    Sav__PartLine lines[VERDICT_MAX_PARTS], *ptrs[VERDICT_MAX_PARTS];
    for (int i = 0; i < v->nparts; i++) {
        sav__part_line__init(&lines[i]);
        lines[i].reference = (char *)v->parts[i].ref;
        lines[i].quantity = (uint32_t)v->parts[i].quantity;
        ptrs[i] = &lines[i];
    }
    Sav__VerdictRecorded ev = SAV__VERDICT_RECORDED__INIT;
    ev.version = (uint32_t)version;
    ev.cause = (char *)v->cause;
    ev.action = (char *)v->action;
    ev.basis = (char *)d->basis;
    ev.customer_pays = d->customer_pays;
    ev.n_parts = (size_t)v->nparts;
    ev.parts = ptrs;
    ev.labour_minutes = (uint32_t)v->labour;
    out->len = sav__verdict_recorded__get_packed_size(&ev);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        err_set("out of memory");
        return -1;
    }
    sav__verdict_recorded__pack(&ev, out->data);
    return 0;
}

/* Answers the client with the state, the coverage and any missing parts. */
static void verdict_answer(service *svc, redisReply *r, const ticket_facts *t, const coverage_decision *d,
                           service_reply *reply) {
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "CONFLICT", 8) == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s changed meanwhile (now %s): try again", t->id, r->str + 9);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "verdict_record: %s",
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return;
    }
    json_t *missing = json_array();
    for (size_t i = 0; i < r->element[3]->elements; i++)
        json_array_append_new(missing, json_pack("{s:s,s:I}", "part", r->element[3]->element[i]->element[0]->str,
                                                 "short", (json_int_t)r->element[3]->element[i]->element[1]->integer));
    ticket_resume_parts(svc, r->element[4]);
    relay_poke(service_relay(svc, SVC_NOTIFICATION));
    relay_poke(service_relay(svc, SVC_BILLING));
    service_reply_json(reply, json_pack("{s:s,s:s,s:I,s:b,s:{s:s,s:b,s:s,s:o,s:o,s:o,s:s,s:I,s:s},s:o}", "id", t->id,
                                        "state", r->element[0]->str, "version", (json_int_t)r->element[2]->integer,
                                        "replayed", r->element[1]->integer == 1, "coverage", "basis", d->basis,
                                        "customer_pays", d->customer_pays, "burden_of_proof", d->burden_of_proof,
                                        "legal_until", command_json_str(d->legal_until), "commercial_until",
                                        command_json_str(d->commercial_until), "extended_until",
                                        command_json_str(d->extended_until), "rule", d->rule, "estimate_cents",
                                        (json_int_t)d->estimate_cents, "reason", d->reason, "missing_parts", missing));
}

/* Decides and records, once the verdict is valid and the facts are loaded. */
static void verdict_apply(service *svc, const Sav__Command *cmd, const ticket_facts *t, coverage_facts *f,
                          const verdict *v, service_reply *reply) {
    coverage_decision d;
    const char *complete = t->state, *missing = t->state;
    f->in.cause = v->cause;
    f->in.parts_cents = v->parts_cents;
    f->in.labour_minutes = (int)v->labour;
    /* A retried request gets its first answer from Redis, whatever the ticket became since. */
    char scope[64];
    snprintf(scope, sizeof(scope), "%s/diagnose", t->id);
    int replay = ticket_request_seen(svc, scope, cmd->request_id);
    if (coverage_decide(&f->in, &d) != 0 ||
        (!replay && verdict_targets(t->kind, t->state, &d, v, &complete, &missing) != 0)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s: %s", t->id, err_get());
        return;
    }
    envelope_buf notices[2] = {{0}}, billing = {0};
    if (verdict_notice(t->id, v, &d, f->in.lang, t->verdict_version + 1, 0, &notices[0]) != 0 ||
        verdict_notice(t->id, v, &d, f->in.lang, t->verdict_version + 1, 1, &notices[1]) != 0 ||
        verdict_billing_event(v, &d, t->verdict_version + 1, &billing) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", err_get());
    } else {
        redisReply *r = verdict_call(svc, cmd, t, f, v, &d, complete, missing, notices, &billing);
        if (!r)
            service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        else
            verdict_answer(svc, r, t, &d, reply), freeReplyObject(r);
    }
    envelope_buf_free(&notices[0]);
    envelope_buf_free(&notices[1]);
    envelope_buf_free(&billing);
}

void verdict_diagnose(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "id");
    verdict v;
    ticket_facts t;
    coverage_facts f = {0};
    if (validate_ticket_id(tid) != 0 || !cmd->request_id || validate_token("request id", cmd->request_id) != 0 ||
        verdict_parse(svc, cmd, &v) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", cmd->request_id ? err_get() : "request id missing");
        return;
    }
    int found = ticket_read(svc, tid, &t);
    if (found == 0) found = facts_load(svc, tid, &f);
    if (found != 0) {
        service_reply_error(reply, found < 0 ? SAV__ERROR_CODE__ERR_UNAVAILABLE : SAV__ERROR_CODE__ERR_NOT_FOUND, "%s",
                            found < 0 ? err_get() : "no such ticket");
    } else {
        verdict_apply(svc, cmd, &t, &f, &v, reply);
    }
    facts_free(&f);
}
