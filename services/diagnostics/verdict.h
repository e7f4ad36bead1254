/* verdict: the technician's diagnosis of a ticket, its coverage decision
 * (common/coverage.h, French law C1-C9) and its spare parts, recorded in
 * one atomic step; correctable until repair starts, every version kept. */
#ifndef SAV_VERDICT_H
#define SAV_VERDICT_H

#include "service.h"

/* diagnose: records a verdict (cause, action, parts, labour), decides who pays, reserves the parts. */
void verdict_diagnose(service *svc, const Sav__Command *cmd, service_reply *reply);

#endif
