/* repair: the technician's repair steps on a ticket. */
#ifndef SAV_REPAIR_H
#define SAV_REPAIR_H

#include "service.h"

/* repair.start: in_diagnosis (or received, for kinds without diagnosis) -> in_repair; tells the customer. */
void repair_start(service *svc, const Sav__Command *cmd, service_reply *reply);

/* repair.done: in_repair -> ready with outcome repaired; tells the customer where to collect it. */
void repair_done(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
