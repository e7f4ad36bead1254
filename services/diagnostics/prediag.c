#include "prediag.h"
#include "catalog.h"
#include "err.h"
#include "lifecycle.h"

#include <stdio.h>
#include <string.h>

/* The first of the ticket's fault codes the catalog knows for the model's family, or NULL. */
static const catalog_fault *prediag_match(const catalog *cat, const catalog_model *model, const Sav__TicketReceived *t) {
    for (size_t i = 0; model && i < t->n_fault_codes; i++) {
        const catalog_fault *f = catalog_fault_find(cat, model->family, t->fault_codes[i]);
        if (f) return f;
    }
    return NULL;
}

typedef struct prediag_result {
    char parts[CATALOG_MAX_FAULT_PARTS * 80];
    char labour[16], years[16], detail[160];
    Sav__PartLine lines[CATALOG_MAX_FAULT_PARTS];
    Sav__PartLine *line_ptrs[CATALOG_MAX_FAULT_PARTS];
} prediag_result;

static void prediag_parts(const catalog *cat, const catalog_fault *f, prediag_result *r, Sav__PrediagnosisDone *done) {
    size_t pos = 0;
    for (int i = 0; f && i < f->nparts; i++) {
        const catalog_part *p = catalog_part_find(cat, f->parts[i].ref);
        pos += (size_t)snprintf(r->parts + pos, sizeof(r->parts) - pos, "%s%s:%d", i ? "," : "", f->parts[i].ref,
                                f->parts[i].quantity);
        sav__part_line__init(&r->lines[i]);
        r->lines[i].reference = (char *)f->parts[i].ref;
        r->lines[i].quantity = (uint32_t)f->parts[i].quantity;
        r->lines[i].has_unit_price_cents = 1;
        r->lines[i].unit_price_cents = p->price_cents;
        r->line_ptrs[i] = &r->lines[i];
    }
    done->n_parts = f ? (size_t)f->nparts : 0;
    done->parts = r->line_ptrs;
}

static Sav__Ack__Status prediag_record(service *svc, const Sav__Envelope *ev, const Sav__TicketReceived *t,
                                       char *reason, size_t reason_len) {
    /* A model intake accepted may come from a catalog published a moment ago: fetch it before deciding. */
    if (!catalog_model_find(service_catalog(svc), t->model) && service_catalog_sync(svc) == 0 &&
        !catalog_model_find(service_catalog(svc), t->model)) {
        snprintf(reason, reason_len, "model %s is not in catalog version %lld yet", t->model, service_catalog_version(svc));
        return SAV__ACK__STATUS__RETRY;
    }
    const catalog *cat = service_catalog(svc);
    const catalog_model *model = catalog_model_find(cat, t->model);
    const catalog_fault *f = prediag_match(cat, model, t);
    prediag_result r = {0};
    Sav__PrediagnosisDone done = SAV__PREDIAGNOSIS_DONE__INIT;
    done.family = model ? (char *)model->family : "unknown";
    done.matched = f != NULL;
    if (f) {
        done.fault_code = (char *)f->code;
        done.likely_cause = (char *)f->cause;
        done.has_labour_minutes = 1, done.labour_minutes = (uint32_t)f->labour_minutes;
    }
    prediag_parts(cat, f, &r, &done);
    snprintf(r.labour, sizeof(r.labour), "%d", f ? f->labour_minutes : 0);
    snprintf(r.years, sizeof(r.years), "%d", model ? model->parts_availability_years : 0);
    snprintf(r.detail, sizeof(r.detail), "%s", f ? f->code : "no known fault code: technician diagnosis needed");
    const char *fields[] = {"family", done.family,
                            "matched", f ? "1" : "0",
                            "fault_code", f ? f->code : "",
                            "symptom", f ? f->symptom : "",
                            "likely_cause", f ? f->cause : "",
                            "parts", r.parts,
                            "labour_minutes", r.labour,
                            "parts_availability_years", r.years};
    /* Installation, commissioning and maintenance visits skip diagnosis: the ticket stays received. */
    int skips = lifecycle_skips_diagnosis(t->kind);
    if (skips) snprintf(r.detail, sizeof(r.detail), "no diagnosis for %s", t->kind);
    service_change c = {
        .section = "prediag",
        .fields = fields,
        .nfields = sizeof(fields) / sizeof(fields[0]) / 2,
        .need_state = "received",
        .new_state = skips ? "" : "in_diagnosis",
        .event = "prediagnosis.done",
        .detail = r.detail,
        .dest = SVC_BILLING,
        .out_type = SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE,
        .out_body = &done.base,
    };
    return service_apply_event(svc, ev, &c, reason, reason_len);
}

Sav__Ack__Status prediag_on_ticket_received(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__TicketReceived *t = (Sav__TicketReceived *)envelope_body(ev, &sav__ticket_received__descriptor);
    if (!t) {
        snprintf(reason, reason_len, "%s", err_get());
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status = prediag_record(svc, ev, t, reason, reason_len);
    sav__ticket_received__free_unpacked(t, NULL);
    return status;
}
