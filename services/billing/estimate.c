#include "estimate.h"
#include "catalog.h"
#include "facts.h"
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t estimate_parts_cents(const Sav__PrediagnosisDone *p) {
    int64_t total = 0;
    for (size_t i = 0; i < p->n_parts; i++)
        total += (p->parts[i]->has_unit_price_cents ? p->parts[i]->unit_price_cents : 0) * p->parts[i]->quantity;
    return total;
}

/* Records the estimate: the coverage rules with the defect presumed to be a lack of conformity. */
static Sav__Ack__Status estimate_record(service *svc, const Sav__Envelope *ev, const Sav__PrediagnosisDone *p,
                                        coverage_facts *f, char *reason, size_t reason_len) {
    f->in.parts_cents = estimate_parts_cents(p);
    f->in.labour_minutes = p->has_labour_minutes ? (int)p->labour_minutes : 0;
    coverage_decision out;
    if (coverage_decide(&f->in, &out) != 0) {
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
                            "extended_until", out.extended_until,
                            "rule", out.rule,
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
        .unless_decided = 1,
    };
    return service_apply_event(svc, ev, &c, reason, reason_len);
}

static const char *estimate_get(const redisReply *flat, const char *name) {
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (strcmp(flat->element[i]->str, name) == 0) return flat->element[i + 1]->str;
    return "";
}

/* The technician decided before this estimate ran: tell the customer the decision, overwrite nothing. */
static Sav__Ack__Status estimate_decided(service *svc, const Sav__Envelope *ev, const redisReply *cov, char *reason,
                                         size_t reason_len) {
    Sav__CoverageEstimated msg = SAV__COVERAGE_ESTIMATED__INIT;
    msg.basis = (char *)estimate_get(cov, "basis");
    msg.customer_pays = strcmp(estimate_get(cov, "customer_pays"), "1") == 0;
    msg.estimate_cents = atoll(estimate_get(cov, "estimate_cents"));
    msg.legal_until = estimate_get(cov, "legal_until")[0] ? (char *)estimate_get(cov, "legal_until") : NULL;
    msg.commercial_until = estimate_get(cov, "commercial_until")[0] ? (char *)estimate_get(cov, "commercial_until") : NULL;
    msg.reason = (char *)estimate_get(cov, "reason");
    service_change c = {
        .section = "coverage",
        .fields = NULL,
        .nfields = 0,
        .need_state = "",
        .new_state = "",
        .event = "coverage.estimated",
        .detail = "already decided",
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
    coverage_facts f;
    int found = ev->ticket_id ? facts_load(svc, ev->ticket_id, &f) : -2;
    if (found == -2) {
        snprintf(reason, reason_len, "prediagnosis.done without a ticket id");
        status = SAV__ACK__STATUS__REJECT;
    } else if (found != 0) {
        snprintf(reason, reason_len, "%s", found > 0 ? "ticket not found yet" : err_get());
    } else if (strcmp(estimate_get(f.coverage, "status"), "decided") == 0) {
        status = estimate_decided(svc, ev, f.coverage, reason, reason_len);
    } else {
        status = estimate_record(svc, ev, p, &f, reason, reason_len);
    }
    if (found != -2) facts_free(&f);
    sav__prediagnosis_done__free_unpacked(p, NULL);
    return status;
}
