/* notify: turns ticket events into customer notifications, one per channel
 * the customer consented to (or one "call" for the centre when there is
 * none), identified by (ticket, event, channel, version) so that a replayed
 * event never produces a second one. */
#ifndef SAV_NOTIFY_H
#define SAV_NOTIFY_H

#include "service.h"

/* Loads and validates the templates of every event; 0 or -1 with err. The set is owned by the service state. */
int notify_init(service *svc);

/* Frees the templates. */
void notify_cleanup(service *svc);

/* CoverageEstimated: renders and records the "ticket received" messages. */
Sav__Ack__Status notify_on_coverage_estimated(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

/* CustomerNotice: renders and records the messages of its event; REJECT for an unknown event or undeclared var. */
Sav__Ack__Status notify_on_customer_notice(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

#endif
