#include "quote.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "facts.h"
#include "log.h"
#include "money.h"
#include "pricing.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *quote_field(const redisReply *flat, const char *name) {
    for (size_t i = 0; flat && i + 1 < flat->elements; i += 2)
        if (strcmp(flat->element[i]->str, name) == 0) return flat->element[i + 1]->str;
    return "";
}

redisReply *quote_read(service *svc, const char *ticket_id) {
    char name[64];
    snprintf(name, sizeof(name), "quote:%s", ticket_id);
    return store_hgetall(service_store(svc), store_ticket_shard(service_store(svc), ticket_id), name);
}

/* The lines of a verdict's quote: parts at the catalog price, labour at the centre's rate, travel for on-site work. */
static int quote_lines(service *svc, const Sav__VerdictRecorded *v, const catalog_centre *centre, int on_site,
                       pricing_line *lines, int *n) {
    int vat = service_settings(svc)->vat_basis_points;
    *n = 0;
    for (size_t i = 0; i < v->n_parts && *n < PRICING_MAX_LINES - 2; i++) {
        const catalog_part *p = catalog_part_find(service_catalog(svc), v->parts[i]->reference);
        if (!p) {
            err_set("part %s is not in the catalog", v->parts[i]->reference);
            return -1;
        }
        pricing_line *l = &lines[(*n)++];
        memset(l, 0, sizeof(*l));
        snprintf(l->kind, sizeof(l->kind), "part"), snprintf(l->ref, sizeof(l->ref), "%s", p->ref);
        snprintf(l->label, sizeof(l->label), "%s (%s)", p->name, p->ref);
        l->quantity = v->parts[i]->quantity, l->unit_cents = p->price_cents, l->vat_bp = vat;
    }
    pricing_line *l = &lines[(*n)++];
    memset(l, 0, sizeof(*l));
    snprintf(l->kind, sizeof(l->kind), "labour"), snprintf(l->label, sizeof(l->label), "Main d'oeuvre");
    l->quantity = v->labour_minutes, l->unit_cents = centre->labour_rate_cents, l->vat_bp = vat;
    if (on_site) {
        l = &lines[(*n)++];
        memset(l, 0, sizeof(*l));
        snprintf(l->kind, sizeof(l->kind), "travel"), snprintf(l->label, sizeof(l->label), "Déplacement");
        l->quantity = 1, l->unit_cents = centre->travel_fee_cents, l->vat_bp = vat;
    }
    return 0;
}

/* The frozen document: lines, totals per VAT rate, and the B1 mentions. */
static json_t *quote_document(service *svc, const pricing_line *lines, int n, const pricing_totals *t,
                              const catalog_centre *centre, const char *valid_until, const Sav__VerdictRecorded *v) {
    const settings *cfg = service_settings(svc);
    json_t *jl = json_array(), *jr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(jl, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:i}", "kind", lines[i].kind, "ref", lines[i].ref,
                                            "label", lines[i].label, "quantity", (json_int_t)lines[i].quantity,
                                            "unit_cents", (json_int_t)lines[i].unit_cents, "amount_cents",
                                            (json_int_t)lines[i].amount_cents, "vat_bp", lines[i].vat_bp));
    for (int i = 0; i < t->nrates; i++)
        json_array_append_new(jr, json_pack("{s:i,s:I,s:I}", "vat_bp", t->rates[i].vat_bp, "base_cents",
                                            (json_int_t)t->rates[i].base_cents, "vat_cents",
                                            (json_int_t)t->rates[i].vat_cents));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:b,s:s,s:I,s:s}", "seller", cfg->company_name,
                     "seller_address", cfg->company_address, "seller_siret", cfg->company_siret, "centre", centre->name,
                     "centre_address", centre->address, "work", v->action, "lines", jl, "vat", jr, "net_cents",
                     (json_int_t)t->net_cents, "vat_cents", (json_int_t)t->vat_cents, "gross_cents",
                     (json_int_t)t->gross_cents, "hourly_rate_cents", (json_int_t)centre->labour_rate_cents,
                     "diagnostic_fee_cents", (json_int_t)centre->diagnostic_fee_cents, "diagnostic_fee_waived_if_accepted",
                     cfg->diagnostic_fee_waived != 0, "valid_until", valid_until, "quote_price_cents", (json_int_t)0,
                     "quote_price", "devis gratuit");
}

static Sav__Ack__Status quote_create(service *svc, const Sav__Envelope *ev, const Sav__VerdictRecorded *v,
                                     coverage_facts *f, char *reason, size_t reason_len) {
    const catalog_centre *centre = catalog_centre_find(service_catalog(svc), f->centre);
    pricing_line lines[PRICING_MAX_LINES];
    pricing_totals t;
    int n;
    char today[CLOCK_DATE_LEN], valid_until[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    clock_date_add_days(today, service_settings(svc)->quote_validity_days, valid_until);
    ticket_facts tf;
    if (ticket_read(svc, ev->ticket_id, &tf) != 0) {
        snprintf(reason, reason_len, "ticket not readable: %s", err_get());
        return SAV__ACK__STATUS__RETRY;
    }
    if (quote_lines(svc, v, centre, strcmp(tf.channel, "on_site") == 0, lines, &n) != 0 || pricing_compute(lines, n, &t) != 0) {
        snprintf(reason, reason_len, "cannot price the quote: %s", err_get());
        return SAV__ACK__STATUS__REJECT;
    }
    json_t *doc = quote_document(svc, lines, n, &t, centre, valid_until, v);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    char total[48], version[16], gross[24];
    money_format(t.gross_cents, f->in.lang, total, sizeof(total));
    snprintf(version, sizeof(version), "%u", v->version);
    snprintf(gross, sizeof(gross), "%lld", (long long)t.gross_cents);
    const char *vars[] = {"total", total, "valid_until", valid_until, "quote_version", version};
    ticket_notice notice = {"quote_sent", v->version, vars, 3};
    envelope_buf body = {0};
    Sav__Ack__Status status = SAV__ACK__STATUS__RETRY;
    if (text && ticket_notice_pack(&notice, &body) == 0) {
        char seen[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], outbox[STORE_KEY_LEN];
        service_seen_key(svc, ev, seen);
        ticket_keys(svc, ev->ticket_id, key, prefix);
        store_key(service_store(svc), 0, "outbox:notification", outbox);
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "FCALL"), store_args_add(&a, "quote_create"), store_args_add(&a, "3");
        store_args_add(&a, seen), store_args_add(&a, key), store_args_add(&a, outbox), store_args_add(&a, prefix);
        store_args_add(&a, ev->ticket_id), store_args_addf(&a, "%lld", (long long)clock_now_ms());
        store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
        store_args_add(&a, version), store_args_addf(&a, "%ld", clock_date_score(valid_until));
        store_args_addb(&a, body.data, body.len);
        store_args_add(&a, "valid_until"), store_args_add(&a, valid_until), store_args_add(&a, "gross_cents");
        store_args_add(&a, gross), store_args_add(&a, "document"), store_args_add(&a, text);
        status = service_ack_status(svc, ev, store_args_call(service_store(svc), &a), reason, reason_len);
        if (status == SAV__ACK__STATUS__ACK) relay_poke(service_relay(svc, SVC_NOTIFICATION));
    }
    free(text);
    envelope_buf_free(&body);
    return status;
}

Sav__Ack__Status quote_on_verdict(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__VerdictRecorded *v = (Sav__VerdictRecorded *)envelope_body(ev, &sav__verdict_recorded__descriptor);
    if (!v || !ev->ticket_id) {
        snprintf(reason, reason_len, "%s", v ? "verdict.recorded without a ticket id" : err_get());
        if (v) sav__verdict_recorded__free_unpacked(v, NULL);
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status = SAV__ACK__STATUS__ACK; /* a free verdict has no quote: nothing to do */
    if (v->customer_pays) {
        coverage_facts f;
        int found = facts_load(svc, ev->ticket_id, &f);
        if (found != 0) {
            snprintf(reason, reason_len, "%s", found > 0 ? "ticket not found yet" : err_get());
            status = SAV__ACK__STATUS__RETRY;
        } else {
            status = quote_create(svc, ev, v, &f, reason, reason_len);
        }
        facts_free(&f);
    }
    sav__verdict_recorded__free_unpacked(v, NULL);
    return status;
}

void quote_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "id");
    if (validate_ticket_id(tid) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    redisReply *q = quote_read(svc, tid);
    if (!q) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return;
    }
    if (q->elements == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "ticket %s has no quote", tid);
    } else {
        json_t *doc = json_loads(quote_field(q, "document"), 0, NULL);
        service_reply_json(reply, json_pack("{s:s,s:i,s:s,s:s,s:o}", "ticket", tid, "version",
                                            atoi(quote_field(q, "version")), "status", quote_field(q, "status"),
                                            "valid_until", quote_field(q, "valid_until"), "document",
                                            doc ? doc : json_null()));
    }
    freeReplyObject(q);
}

/* Checks that the ticket's quote is pending and still valid; 0, or -1 after replying with the reason. */
static int quote_pending(service *svc, const char *tid, service_reply *reply, char version[16]) {
    redisReply *q = quote_read(svc, tid);
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    int rc = -1;
    if (!q)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    else if (q->elements == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "ticket %s has no quote", tid);
    else if (strcmp(quote_field(q, "status"), "pending") != 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "the quote of %s is %s", tid, quote_field(q, "status"));
    else if (strcmp(today, quote_field(q, "valid_until")) > 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "the quote of %s expired on %s: a new verdict makes a new one",
                            tid, quote_field(q, "valid_until"));
    else
        rc = 0, snprintf(version, 16, "%s", quote_field(q, "version"));
    if (q) freeReplyObject(q);
    return rc;
}

/* Returns 1 if this request already applied step ev to the ticket (its replay then answers from Redis). */
static int quote_replayed(service *svc, const char *tid, enum lifecycle_event ev, const Sav__Command *cmd) {
    char scope[64];
    snprintf(scope, sizeof(scope), "%s/%s", tid, lifecycle_event_name(ev));
    return cmd->request_id && ticket_request_seen(svc, scope, cmd->request_id);
}

void quote_accept_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "id");
    char version[16] = "", now[24], hash[64];
    if (validate_ticket_id(tid) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    int replay_ready = quote_replayed(svc, tid, LC_QUOTE_ACCEPTED, cmd);
    int replay_waiting = !replay_ready && quote_replayed(svc, tid, LC_PARTS_MISSING, cmd);
    if (!replay_ready && !replay_waiting && quote_pending(svc, tid, reply, version) != 0) return;
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    snprintf(hash, sizeof(hash), "quote:%s", tid);
    const char *aux[] = {"status", "accepted", "accepted_at", now};
    /* Accepted: the repair can start, or waits for the parts still on order. */
    enum lifecycle_event ev = replay_ready ? LC_QUOTE_ACCEPTED : replay_waiting ? LC_PARTS_MISSING
                              : ticket_parts_complete(svc, tid) ? LC_QUOTE_ACCEPTED : LC_PARTS_MISSING;
    ticket_step step = {cmd->request_id ? cmd->request_id : "", tid, ev, service_actor(svc), version, NULL, "", NULL, 0,
                        hash, aux, 2};
    ticket_step_reply(svc, &step, reply);
}

void quote_refuse_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *tid = command_arg(cmd, "id"), *why = command_arg(cmd, "reason");
    char version[16] = "", now[24], hash[64];
    if (validate_ticket_id(tid) != 0 || (why && validate_text("reason", why, 500, 0) != 0)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (!quote_replayed(svc, tid, LC_QUOTE_REFUSED, cmd) && quote_pending(svc, tid, reply, version) != 0) return;
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    snprintf(hash, sizeof(hash), "quote:%s", tid);
    const char *aux[] = {"status", "refused", "refused_at", now, "refusal_reason", why ? why : ""};
    const char *fields[] = {"outcome", "unrepaired"};
    const char *vars[] = {"outcome", "unrepaired", "note", why ? why : ""};
    ticket_notice notice = {"ready_for_pickup", 1, vars, 2};
    ticket_step step = {cmd->request_id ? cmd->request_id : "", tid, LC_QUOTE_REFUSED, service_actor(svc), version, &notice,
                        "release", fields, 1, hash, aux, 3};
    ticket_step_reply(svc, &step, reply);
}
