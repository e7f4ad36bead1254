/* invoice: invoices issued when billable work is over (from the accepted
 * quote) or a paid diagnostic is owed after a refusal; warranty claims to
 * the manufacturer for free repairs; payments and credit notes (B2-B4). */
#ifndef SAV_INVOICE_H
#define SAV_INVOICE_H

#include "service.h"

/* TicketReady: issues the invoice or the warranty claim the ticket's end calls for, once. */
Sav__Ack__Status invoice_on_ready(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

/* Commands. */
void invoice_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void invoice_list_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void invoice_credit_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void invoice_export_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void payment_record_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void claim_list_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void claim_decide_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);

/* Reads an invoice hash (flat HGETALL), NULL with err; an empty array when it does not exist. */
redisReply *invoice_read(service *svc, const char *invoice_id);

/* Reads the invoice a command's "id" names; NULL after answering reply with the error (bad id, none, Redis). */
redisReply *invoice_load_cmd(service *svc, const Sav__Command *cmd, service_reply *reply, const char **id);

/* The late-payment figures of an unpaid invoice on a date: B3 penalties and indemnity for businesses, B4 legal
 * interest from the formal notice for consumers (new JSON object). */
json_t *invoice_lateness(service *svc, const redisReply *inv, const char *today);

#endif
