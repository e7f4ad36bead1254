#include "facts.h"
#include "err.h"
#include "ticket.h"

#include <stdlib.h>
#include <string.h>

static void facts_contracts(coverage_facts *f, const redisReply *list) {
    for (size_t i = 0; i < list->elements && f->in.ncontracts < COVERAGE_MAX_CONTRACTS; i++) {
        const redisReply *c = list->element[i];
        coverage_contract *k = &f->contracts[f->in.ncontracts++];
        k->type = store_field(c, "type");
        k->start = store_field(c, "start");
        k->end = store_field(c, "end");
        k->covers = store_field(c, "covers");
    }
    f->in.contracts = f->contracts;
}

static void facts_history(coverage_facts *f, const redisReply *list) {
    for (size_t i = 0; i < list->elements && f->in.nhistory < COVERAGE_MAX_HISTORY; i++) {
        const redisReply *h = list->element[i];
        coverage_past *p = &f->history[f->in.nhistory++];
        p->basis = h->element[1]->str;
        p->outcome = h->element[2]->str;
        p->immobilisation_days = atoi(h->element[3]->str);
    }
    f->in.history = f->history;
}

/* Fills the rule inputs from the ticket, product and catalog. */
static int facts_fill(service *svc, coverage_facts *f) {
    const redisReply *t = f->reply->element[0], *p = f->reply->element[1];
    const catalog_model *m = catalog_model_find(service_catalog(svc), store_field(p, "model"));
    const catalog_centre *c = catalog_centre_find(service_catalog(svc), store_field(t, "centre"));
    if ((!m || !c) && service_catalog_sync(svc) == 0) {
        /* A catalog published a moment ago may name them: fetch it before deciding. */
        m = catalog_model_find(service_catalog(svc), store_field(p, "model"));
        c = catalog_centre_find(service_catalog(svc), store_field(t, "centre"));
    }
    if (!m || !c) {
        err_set("the catalog has no %s \"%s\"", m ? "centre" : "model", m ? store_field(t, "centre") : store_field(p, "model"));
        return -1;
    }
    f->centre = c->id;
    f->customer_id = store_field(t, "customer_id");
    f->serial = store_field(t, "serial");
    f->state = store_field(t, "state");
    f->in.kind = store_field(t, "kind");
    f->in.business = strcmp(store_field(t, "business"), "1") == 0;
    f->in.second_hand = strcmp(store_field(p, "second_hand"), "1") == 0;
    f->in.delivered_on = store_field(p, "delivered_on");
    f->in.replacement_after_repair_request = strcmp(store_field(p, "replacement_after_repair_request"), "1") == 0;
    f->in.requested_on = store_field(t, "requested_on");
    f->in.commercial_warranty_months = m->commercial_warranty_months;
    f->in.cause = "";
    f->in.labour_rate_cents = c->labour_rate_cents;
    f->in.travel_cents = strcmp(store_field(t, "channel"), "on_site") == 0 ? c->travel_fee_cents : 0;
    f->in.vat_basis_points = service_settings(svc)->vat_basis_points;
    f->in.lang = store_field(t, "lang");
    facts_contracts(f, f->reply->element[2]);
    facts_history(f, f->reply->element[3]);
    return 0;
}

int facts_read_ahead(service *svc, const Sav__Envelope *event, store_args reads[SERVICE_READS_AHEAD]) {
    if (!event->ticket_id) return 0;
    ticket_read_args(svc, "coverage_facts", event->ticket_id, &reads[0]);
    return 1;
}

int facts_load(service *svc, const char *ticket_id, coverage_facts *f) {
    memset(f, 0, sizeof(*f));
    store_args a;
    ticket_read_args(svc, "coverage_facts", ticket_id, &a);
    f->reply = service_read_ahead(svc, &a);
    if (!f->reply) f->reply = store_args_call(service_store(svc), &a);
    if (!f->reply) return -1;
    if (f->reply->type == REDIS_REPLY_NIL) return 1;
    /* More elements than these would come from a newer library: read what this build knows. */
    if (f->reply->type != REDIS_REPLY_ARRAY || f->reply->elements < 5 || f->reply->element[4]->type != REDIS_REPLY_ARRAY) {
        err_set("coverage_facts: %s", f->reply->type == REDIS_REPLY_ERROR ? f->reply->str : "unexpected reply");
        return -1;
    }
    f->coverage = f->reply->element[4];
    return facts_fill(svc, f);
}

void facts_free(coverage_facts *f) {
    if (f->reply) freeReplyObject(f->reply);
    f->reply = NULL;
}
