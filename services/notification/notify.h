/* notify: turns ticket events into customer notifications, one per channel
 * the customer can be reached on, identified by (ticket, event, channel,
 * version) so that a replayed event never produces a second one. */
#ifndef SAV_NOTIFY_H
#define SAV_NOTIFY_H

#include "service.h"

/* Loads and validates the templates; 0 or -1 with err. */
int notify_init(service *svc);

/* Frees the templates. */
void notify_cleanup(service *svc);

/* CoverageEstimated: renders and records the "ticket received" messages. */
Sav__Ack__Status notify_on_coverage_estimated(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

#endif
