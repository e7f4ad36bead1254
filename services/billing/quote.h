/* quote: the quote (devis) of a chargeable verdict, with every mention of
 * B1 (arrêté of 24 January 2017); the customer's acceptance or refusal moves
 * the ticket on; a newer verdict supersedes a pending quote. */
#ifndef SAV_QUOTE_H
#define SAV_QUOTE_H

#include "service.h"

/* VerdictRecorded: a chargeable verdict produces its quote (once per verdict version). */
Sav__Ack__Status quote_on_verdict(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

/* quote.show, quote.accept, quote.refuse commands. */
void quote_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void quote_accept_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);
void quote_refuse_cmd(service *svc, const Sav__Command *cmd, service_reply *reply);

/* Reads a ticket's current quote hash; NULL with err (Redis) or an empty array when there is none. */
redisReply *quote_read(service *svc, const char *ticket_id);

/* Returns a field of a flat HGETALL reply, "" if absent. */
const char *quote_field(const redisReply *flat, const char *name);

#endif
