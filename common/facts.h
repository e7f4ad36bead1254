/* facts: what the coverage rules (common/coverage.h) need about a ticket,
 * read from Redis in one call: the ticket, its product, the product's
 * contracts, and the earlier tickets of the unit (and of the unit it
 * replaced). The strings point into the Redis reply kept here. */
#ifndef SAV_FACTS_H
#define SAV_FACTS_H

#include "coverage.h"
#include "service.h"

typedef struct coverage_facts {
    redisReply *reply;
    coverage_input in;
    coverage_contract contracts[COVERAGE_MAX_CONTRACTS];
    coverage_past history[COVERAGE_MAX_HISTORY];
    const char *centre;       /* the ticket's centre */
    const char *customer_id;
    const char *serial;
    const char *state;
    const redisReply *coverage; /* the ticket's coverage hash as it stands (flat HGETALL), in the same read */
} coverage_facts;

/* Loads the facts of a ticket, with the model's warranty and the centre's rate from the catalog.
 * 0 loaded, 1 no such ticket, -1 Redis unavailable or the catalog lacks the model/centre (err set).
 * Free with facts_free. */
int facts_load(service *svc, const char *ticket_id, coverage_facts *f);

/* The read facts_load starts with, for an event's ticket: a service_read_ahead_fn for the routes whose handler
 * loads the facts of the event's ticket. */
int facts_read_ahead(service *svc, const Sav__Envelope *event, store_args reads[SERVICE_READS_AHEAD]);

/* Releases what facts_load kept. */
void facts_free(coverage_facts *f);

#endif
