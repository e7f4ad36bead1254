/* intake: the front desk. Opens tickets (validated, stored and announced to
 * diagnostics in one atomic Redis call) and shows them. */
#ifndef SAV_INTAKE_H
#define SAV_INTAKE_H

#include "service.h"

/* ticket.open: validates, stores the ticket, emits TicketReceived; replays the answer for a known request id. */
void intake_on_ticket_open(service *svc, const Sav__Envelope *req, service_reply *reply);

/* ticket.show: everything every service recorded about a ticket. */
void intake_on_ticket_show(service *svc, const Sav__Envelope *req, service_reply *reply);

#endif
