/* ticket: what every service that moves tickets shares: reading a ticket's
 * core facts, and applying a lifecycle step (common/lifecycle.c decides,
 * Redis applies with a compare-and-set on the state, together with the
 * timeline entry and the customer notice, once per request id). */
#ifndef SAV_TICKET_H
#define SAV_TICKET_H

#include <jansson.h>
#include <stddef.h>

#include "lifecycle.h"
#include "service.h"

typedef struct ticket_facts {
    char id[16];
    char state[24];
    char kind[32];
    char channel[16];
    char customer_id[16];
    char serial[65];
    char centre[65];
    char outcome[24];
} ticket_facts;

/* Reads a ticket's core facts: 0 found, 1 no such ticket, -1 Redis unavailable (err set). */
int ticket_read(service *svc, const char *ticket_id, ticket_facts *out);

/* A customer notice to emit with a step: event, version and name/value pairs (NULL event = none). */
typedef struct ticket_notice {
    const char *event;
    unsigned version;
    const char **vars; /* nvars name/value pairs */
    size_t nvars;
} ticket_notice;

/* Packs a CustomerNotice body; caller frees out. 0 or -1 with err. */
int ticket_notice_pack(const ticket_notice *n, envelope_buf *out);

/* Applies lifecycle event ev to a ticket for a client request (request_id makes it idempotent), with extra
 * ticket fields (name/value pairs) and an optional notice; answers reply with {"id","state","previous_state",
 * "replayed"} or an error naming the current state. */
void ticket_step_reply(service *svc, const char *request_id, const char *ticket_id, enum lifecycle_event ev,
                       const char *actor, const char *detail, const ticket_notice *notice, const char **fields,
                       size_t nfields, service_reply *reply);

/* Returns the ticket's key and its shard prefix (same hash tag). */
void ticket_keys(service *svc, const char *ticket_id, char key[STORE_KEY_LEN], char prefix[STORE_KEY_LEN]);

#endif
