/* prediag: the automatic pre-diagnosis of a new ticket, from its fault
 * codes and the catalog's fault table (likely cause, parts, labour). The
 * technician's verdict comes later and may differ. */
#ifndef SAV_PREDIAG_H
#define SAV_PREDIAG_H

#include "service.h"

/* TicketReceived: records the pre-diagnosis, moves the ticket to in_diagnosis, emits PrediagnosisDone. */
Sav__Ack__Status prediag_on_ticket_received(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

#endif
