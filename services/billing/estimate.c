#include "estimate.h"
#include "catalog.h"
#include "coverage.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The ticket facts the estimate needs; estimate_record reads them by position. */
static const char *const estimate_ticket_fields[] = {"kind", "business", "second_hand", "delivered_on",
                                                     "requested_on", "model", "lang", "centre"};
#define ESTIMATE_NFIELDS (sizeof(estimate_ticket_fields) / sizeof(estimate_ticket_fields[0]))

/* Reads the ticket's facts; NULL with reason set (retry later) when unavailable. */
static redisReply *estimate_read_ticket(service *svc, const char *ticket_id, char *reason, size_t reason_len) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "ticket:%s", ticket_id);
    store_key(st, store_ticket_shard(st, ticket_id), name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "HMGET"), store_args_add(&a, key);
    for (size_t i = 0; i < ESTIMATE_NFIELDS; i++) store_args_add(&a, estimate_ticket_fields[i]);
    redisReply *r = store_args_call(st, &a);
    if (!r) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
        return NULL;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != ESTIMATE_NFIELDS || r->element[0]->type != REDIS_REPLY_STRING) {
        snprintf(reason, reason_len, "ticket %s not readable yet", ticket_id);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static const char *estimate_str(const redisReply *r, size_t i) {
    return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

static int64_t estimate_parts_cents(const Sav__PrediagnosisDone *p) {
    int64_t total = 0;
    for (size_t i = 0; i < p->n_parts; i++)
        total += (p->parts[i]->has_unit_price_cents ? p->parts[i]->unit_price_cents : 0) * p->parts[i]->quantity;
    return total;
}

static Sav__Ack__Status estimate_record(service *svc, const Sav__Envelope *ev, const Sav__PrediagnosisDone *p,
                                        const redisReply *t, char *reason, size_t reason_len) {
    const settings *cfg = service_settings(svc);
    const catalog_model *model = catalog_model_find(service_catalog(svc), estimate_str(t, 5));
    const catalog_centre *centre = catalog_centre_find(service_catalog(svc), estimate_str(t, 7));
    if (!centre) {
        snprintf(reason, reason_len, "centre \"%s\" is not in the catalog", estimate_str(t, 7));
        return SAV__ACK__STATUS__RETRY;
    }
    coverage_input in = {
        .kind = estimate_str(t, 0),
        .business = strcmp(estimate_str(t, 1), "1") == 0,
        .second_hand = strcmp(estimate_str(t, 2), "1") == 0,
        .delivered_on = estimate_str(t, 3),
        .requested_on = estimate_str(t, 4),
        .commercial_warranty_months = model ? model->commercial_warranty_months : 0,
        .parts_cents = estimate_parts_cents(p),
        .labour_minutes = p->has_labour_minutes ? (int)p->labour_minutes : 0,
        .labour_rate_cents = centre->labour_rate_cents,
        .vat_basis_points = cfg->vat_basis_points,
        .lang = estimate_str(t, 6),
    };
    coverage_estimate out;
    if (coverage_estimate_compute(&in, &out) != 0) {
        snprintf(reason, reason_len, "cannot estimate coverage: %s", err_get());
        return SAV__ACK__STATUS__REJECT;
    }
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)out.estimate_cents);
    Sav__CoverageEstimated msg = SAV__COVERAGE_ESTIMATED__INIT;
    msg.basis = out.basis;
    msg.customer_pays = out.customer_pays;
    msg.estimate_cents = out.estimate_cents;
    msg.legal_until = out.legal_until[0] ? out.legal_until : NULL;
    msg.commercial_until = out.commercial_until[0] ? out.commercial_until : NULL;
    msg.reason = out.reason;
    const char *fields[] = {"basis", out.basis,
                            "customer_pays", out.customer_pays ? "1" : "0",
                            "burden_of_proof", out.burden_of_proof,
                            "legal_until", out.legal_until,
                            "commercial_until", out.commercial_until,
                            "estimate_cents", cents,
                            "reason", out.reason,
                            "status", "estimate"};
    service_change c = {
        .section = "coverage",
        .fields = fields,
        .nfields = sizeof(fields) / sizeof(fields[0]) / 2,
        .need_state = "",
        .new_state = "",
        .event = "coverage.estimated",
        .detail = out.basis,
        .dest = SVC_NOTIFICATION,
        .out_type = SAV__MESSAGE_TYPE__COVERAGE_ESTIMATED,
        .out_body = &msg.base,
    };
    return service_apply_event(svc, ev, &c, reason, reason_len);
}

Sav__Ack__Status estimate_on_prediagnosis(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__PrediagnosisDone *p = (Sav__PrediagnosisDone *)envelope_body(ev, &sav__prediagnosis_done__descriptor);
    if (!p) {
        snprintf(reason, reason_len, "%s", err_get());
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status = SAV__ACK__STATUS__RETRY;
    redisReply *t = ev->ticket_id ? estimate_read_ticket(svc, ev->ticket_id, reason, reason_len) : NULL;
    if (!ev->ticket_id) {
        snprintf(reason, reason_len, "prediagnosis.done without a ticket id");
        status = SAV__ACK__STATUS__REJECT;
    } else if (t) {
        status = estimate_record(svc, ev, p, t, reason, reason_len);
        freeReplyObject(t);
    }
    sav__prediagnosis_done__free_unpacked(p, NULL);
    return status;
}
