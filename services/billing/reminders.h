/* reminders: billing's timers (every intake.scheduler_ms, injectable clock):
 * a pending quote's reminder before it expires and its expiry; payment
 * reminders on the configured schedule past the due date, then the formal
 * notice (mise en demeure). Each happens once (ticket_mark under a dedup key). */
#ifndef SAV_REMINDERS_H
#define SAV_REMINDERS_H

#include "service.h"

/* Runs billing's timers. */
void reminders_tick(service *svc);

#endif
