#include "contact.h"
#include "err.h"
#include "ticket.h"

#include <stdio.h>
#include <string.h>

static int contact_lang_ok(const char *lang) { return strcmp(lang, "fr") == 0 || strcmp(lang, "en") == 0; }

int contact_read_ahead(service *svc, const Sav__Envelope *event, store_args reads[SERVICE_READS_AHEAD]) {
    if (!event->ticket_id) return 0;
    ticket_read_args(svc, "ticket_contact", event->ticket_id, &reads[0]);
    return 1;
}

/* Calls ticket_contact (or takes its reply read ahead); NULL with reason when Redis is unreachable or refused. */
static redisReply *contact_fetch(service *svc, const char *ticket_id, char *reason, size_t reason_len) {
    store_args a;
    ticket_read_args(svc, "ticket_contact", ticket_id, &a);
    redisReply *r = service_read_ahead(svc, &a);
    if (!r) r = store_args_call(service_store(svc), &a);
    if (!r) snprintf(reason, reason_len, "redis unavailable: %s", err_get());
    if (r && r->type == REDIS_REPLY_ERROR) {
        snprintf(reason, reason_len, "redis refused ticket_contact: %s", r->str);
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* Points c's fields into the reply {ticket, customer}. */
static void contact_fill(contact *c, const redisReply *ticket, const redisReply *customer) {
    c->customer_id = store_field(ticket, "customer_id");
    c->model = store_field(ticket, "model");
    c->serial = store_field(ticket, "serial");
    c->invoice_id = store_field(ticket, "invoice_id");
    c->centre = store_field(ticket, "centre");
    c->name = store_field(customer, "name");
    c->phone = store_field(customer, "phone");
    c->email = store_field(customer, "email");
    c->consent_sms = store_field(customer, "consent_sms");
    c->consent_email = store_field(customer, "consent_email");
    /* The customer's current choice wins; the copy taken at open covers a record saved without one. */
    c->lang = store_field(customer, "lang");
    if (!contact_lang_ok(c->lang)) c->lang = store_field(ticket, "lang");
}

Sav__Ack__Status contact_read(service *svc, const char *ticket_id, contact *c, char *reason, size_t reason_len) {
    memset(c, 0, sizeof(*c));
    c->ticket_id = ticket_id;
    c->reply = contact_fetch(svc, ticket_id, reason, reason_len);
    if (!c->reply) return SAV__ACK__STATUS__RETRY;
    const redisReply *r = c->reply;
    if (r->type == REDIS_REPLY_NIL) {
        /* Events of one ticket may overtake its creation: wait for it. */
        snprintf(reason, reason_len, "ticket %s not found", ticket_id);
        return SAV__ACK__STATUS__RETRY;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(reason, reason_len, "ticket_contact: unexpected reply");
        return SAV__ACK__STATUS__RETRY;
    }
    contact_fill(c, r->element[0], r->element[1]);
    /* The ticket was opened for an existing customer: waiting will not bring a missing record back. */
    if (r->element[1]->elements == 0) {
        snprintf(reason, reason_len, "ticket %s has no customer record (customer_id \"%s\")", ticket_id,
                 c->customer_id);
        return SAV__ACK__STATUS__REJECT;
    }
    if (!contact_lang_ok(c->lang)) {
        snprintf(reason, reason_len, "customer %s has no language fr or en", c->customer_id);
        return SAV__ACK__STATUS__REJECT;
    }
    return SAV__ACK__STATUS__ACK;
}

int contact_routes(const contact *c, contact_route out[CONTACT_MAX_ROUTES]) {
    int n = 0;
    if (c->phone[0] && strcmp(c->consent_sms, "1") == 0)
        out[n++] = (contact_route){"sms", "sms", "recorded", c->phone};
    if (c->email[0] && strcmp(c->consent_email, "1") == 0)
        out[n++] = (contact_route){"email", "email", "recorded", c->email};
    /* A service message must reach the customer: the centre phones and reads the SMS text out. */
    if (n == 0) out[n++] = (contact_route){"call", "sms", "call_customer", c->customer_id};
    return n;
}

void contact_free(contact *c) {
    if (c->reply) freeReplyObject(c->reply);
    c->reply = NULL;
}
