/* repair: the technician's repair steps on a ticket. */
#ifndef SAV_REPAIR_H
#define SAV_REPAIR_H

#include "service.h"

/* repair.start: in_diagnosis (or received, for kinds without diagnosis) -> in_repair; tells the customer. */
void repair_start(service *svc, const Sav__Command *cmd, service_reply *reply);

/* repair.done: in_repair -> ready, outcome repaired, reserved parts consumed; tells the customer where to collect it. */
void repair_done(service *svc, const Sav__Command *cmd, service_reply *reply);

/* repair.impossible: in_repair -> ready, outcome unrepaired, reserved parts given back. */
void repair_impossible(service *svc, const Sav__Command *cmd, service_reply *reply);

/* repair.exchange: registers the replacement unit (its own guarantees, C4), in_repair -> ready, outcome exchanged. */
void repair_exchange(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
