/* contact: who a ticket's messages go to, and on which channels. The ticket
 * and its customer's record are read in one round trip (Function
 * ticket_contact). A channel is used only when the customer gave both the
 * address and the consent for it; a customer who can be reached on none is
 * called by the centre instead, so that no service message is silently lost. */
#ifndef SAV_CONTACT_H
#define SAV_CONTACT_H

#include <stddef.h>

#include "service.h"

#define CONTACT_MAX_ROUTES 2

/* The facts of a ticket and its customer that messages need; every string is "" when absent. */
typedef struct contact {
    redisReply *reply; /* owns every string below */
    const char *ticket_id, *customer_id, *name, *phone, *email, *lang;
    const char *model, *serial, *centre;
    const char *invoice_id; /* the ticket's latest invoice, drawn by billing inside Redis */
    const char *consent_sms, *consent_email;
} contact;

/* One way to reach the customer: the recorded channel and the template that renders its text. */
typedef struct contact_route {
    const char *channel;          /* "sms", "email" or "call" */
    const char *template_channel; /* "sms" or "email"; a call reads the SMS text out */
    const char *status;           /* "recorded", or "call_customer" for a call */
    const char *recipient;        /* phone, e-mail, or the customer id for a call; owned by the contact */
} contact_route;

/* Reads the ticket and its customer into c (free with contact_free); returns ACK when c is usable, else RETRY
 * (ticket not there yet, Redis down) or REJECT (no customer record, no language) with reason set. */
Sav__Ack__Status contact_read(service *svc, const char *ticket_id, contact *c, char *reason, size_t reason_len);

/* The read contact_read starts with, for an event's ticket: the read_ahead of notification's routes. */
int contact_read_ahead(service *svc, const Sav__Envelope *event, store_args reads[SERVICE_READS_AHEAD]);

/* Fills out with the channels the customer consented to, or one "call" route; returns how many (1 or 2). */
int contact_routes(const contact *c, contact_route out[CONTACT_MAX_ROUTES]);

/* Frees what contact_read read (a zeroed contact is fine). */
void contact_free(contact *c);

#endif
