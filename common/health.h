/* health: what a service reports about itself (savctl ping and status, the HTTP probes /health/...): whether it
 * reaches Redis, the messages waiting in its outboxes and the age of the oldest, the dead letters, and the
 * replication role of the Redis it writes to with its replicas' lag. Read from Redis; no state of its own. */
#ifndef SAV_HEALTH_H
#define SAV_HEALTH_H

#include <stdint.h>

#include "httpd.h"
#include "store.h"

typedef struct health_facts {
    int redis_ok;
    uint64_t outbox_depth;      /* entries not yet acknowledged by their destination */
    int64_t oldest_pending_ms;  /* age of the oldest of them, 0 when none */
    uint64_t dead_letters;
    char redis_role[16];        /* master or slave, "" when unknown */
    int64_t redis_lag_ms;       /* a master: its slowest replica's lag; a replica: since it last heard; -1 unknown */
    int64_t at_ms;              /* when these were read (UTC) */
} health_facts;

/* Reads the facts; outboxes names the outbox streams of the service (n of them). Never fails: an unreachable
 * Redis gives redis_ok 0 and the rest zero. */
void health_read(store *st, const char *const *outboxes, int n, health_facts *out);

/* Appends the facts as the members of a JSON object (no braces) to reply. */
void health_json(const health_facts *h, httpd_reply *reply);

#endif
