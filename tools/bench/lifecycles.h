/* lifecycles: complete chargeable repairs driven through the services' request API, many at once, each as a front
 * desk and a technician would: ticket.open, diagnose (normal wear: the customer pays; one spare part), quote.accept,
 * repair.done, ticket.show until the invoice is issued, payment.record of its balance, ticket.pickup. The pipeline
 * between two steps is asynchronous (billing writes the quote once the verdict reached it, the invoice once the
 * ticket's readiness did): a step that follows it (diagnose, quote.accept, repair.done, ticket.show) answered
 * "rejected" or "not found", a ticket shown without its invoice yet, or any step answered "unavailable", is a wait,
 * not an error: the step goes again after a short pause (10 ms, doubling up to 200 ms), for at most a minute. A
 * step's first attempt comes three quarters of the time the pipeline lately took to make it possible after the
 * previous step (a moving average), so that a slow pipeline is not polled for nothing. Each step keeps its request
 * id across those attempts, bench-RUN-STEP-INDEX (STEP: t, d, a, r, p, k for ticket.open, diagnose, quote.accept,
 * repair.done, payment.record, ticket.pickup). */
#ifndef SAV_BENCH_LIFECYCLES_H
#define SAV_BENCH_LIFECYCLES_H

#include <stdio.h>

#include "settings.h"
#include "workload.h"

/* Returns the spare part the verdict on a workload ticket replaces (by its model; owned by the module). */
const char *bench_lifecycles_part(const bench_ticket *t);

/* Receives at the default centre (intake.default_centre, where the tickets go) as many of each part as the
 * workload's verdicts will reserve, so that no ticket waits for parts; 0 or -1 with err. */
int bench_lifecycles_stock(const settings *cfg, const bench_workload *w, const char *run);

/* Drives every ticket of w (its customers registered, their products too) through its lifecycle with at most
 * window lifecycles in flight. Prints one JSON line per step and one for the whole ("phase": "lifecycles"), and
 * writes to out (unless NULL) one CSV line per finished lifecycle: ticket id, invoice id, workload index, UTC
 * microseconds of its first request and of the pickup's answer, waits. A lifecycle that failed is counted and its
 * first error printed, not fatal; 0, or -1 with err when the run itself broke (a socket, no answer for a minute). */
int bench_lifecycles_run(const settings *cfg, const bench_workload *w, const char *run, int window, FILE *out);

#endif
