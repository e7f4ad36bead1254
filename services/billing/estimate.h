/* estimate: the first coverage estimate of a ticket, from the product's
 * dates, the customer's status and the pre-diagnosis (see common/coverage.h). */
#ifndef SAV_ESTIMATE_H
#define SAV_ESTIMATE_H

#include "service.h"

/* PrediagnosisDone: records the coverage estimate and emits CoverageEstimated to notification. */
Sav__Ack__Status estimate_on_prediagnosis(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len);

#endif
