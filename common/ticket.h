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
    int verdict_version;
    int64_t created_at;
    char model[65];
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

/* A lifecycle step to apply. */
typedef struct ticket_step {
    const char *request_id;     /* makes it idempotent */
    const char *ticket_id;
    enum lifecycle_event ev;
    const char *actor;
    const char *detail;         /* timeline detail */
    const ticket_notice *notice; /* NULL: none */
    const char *parts;          /* "" untouched, "consume" or "release" the ticket's reserved parts */
    const char **fields;        /* extra ticket fields, nfields name/value pairs */
    size_t nfields;
    const char *aux_hash;       /* another hash of the ticket's shard written in the same step ("quote:T"), or NULL */
    const char **aux_fields;    /* its naux name/value pairs */
    size_t naux;
} ticket_step;

/* A step into `ready` also tells billing (TicketReady with the step's "outcome" field), in the same atomic call.
 * Applies a step: 0 with *result = {"id","state","previous_state","replayed"} (caller decrefs), or an error
 * code (Sav__ErrorCode) with err set to a sentence naming the current state. Tickets whose parts became
 * complete are moved on (ticket_resume_parts). */
int ticket_apply(service *svc, const ticket_step *step, json_t **result);

/* Applies a step for a client request and answers reply with the result or the error. */
void ticket_step_reply(service *svc, const ticket_step *step, service_reply *reply);

/* Returns 1 if a request with this id was already applied in this scope ("<ticket>/<step>"), 0 otherwise. */
int ticket_request_seen(service *svc, const char *scope, const char *request_id);

/* Returns 1 if every part the ticket needs is reserved for it (0 also when Redis fails). */
int ticket_parts_complete(service *svc, const char *ticket_id);

/* Moves each listed ticket (a Redis array of ids) that waits for parts and now holds them all on to in_repair. */
void ticket_resume_parts(service *svc, const redisReply *tickets);

/* Days the product has been immobilised: from the request (or the hand-over, if later) to today (C6). */
int ticket_immobilisation_days(const ticket_facts *t, const char *requested_on);

/* Something that happens to a ticket once, without changing its state (a reminder, a flag, a deadline). */
typedef struct ticket_mark {
    const char *ticket;
    const char *dedup;           /* key name (without prefix) that makes it happen once, e.g. done:<T>:unclaimed */
    const char *event;           /* timeline event */
    const char *actor;
    const char *detail;
    const ticket_notice *notice; /* NULL: none */
    const char *zset;            /* index to add the ticket to, or NULL */
    long long score;
    const char *hash;            /* hash (name without prefix) to write the fields to; NULL = the ticket */
    const char **fields;         /* nfields name/value pairs */
    size_t nfields;
} ticket_mark;

/* Applies a mark once (ticket_mark Function): 1 applied now, 0 applied before, -1 failed (logged). */
int ticket_mark_once(service *svc, const ticket_mark *m);

/* Returns the ticket's key and its shard prefix (same hash tag). */
void ticket_keys(service *svc, const char *ticket_id, char key[STORE_KEY_LEN], char prefix[STORE_KEY_LEN]);

/* Builds into a the read-only Function call `function` on a ticket (FCALL_RO function 1 <its hash> <its shard
 * prefix>, the form of coverage_facts and ticket_contact); the keys are copied into a's scratch space. */
void ticket_read_args(service *svc, const char *function, const char *ticket_id, store_args *a);

#endif
