/* deadline: diagnostics' timers. The 30-day limit of a repair under the
 * legal guarantee (C5): the centre is warned at day 25, the breach is
 * flagged at day 30 and the customer told their rights. And the parts
 * sweep: a ticket whose parts are all reserved does not wait in
 * waiting_parts because a process died before moving it on. */
#ifndef SAV_DEADLINE_H
#define SAV_DEADLINE_H

#include "service.h"

/* Runs the timers (every intake.scheduler_ms, on the injectable clock). */
void deadline_tick(service *svc);

#endif
