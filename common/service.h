/* service: what the four services have in common. Command line, config,
 * Redis, the ROUTER every client and peer talks to, the relays of the
 * service's outboxes, and one poll loop that serves requests, applies events
 * and drives the relays until SIGTERM or SIGINT.
 *
 * With security.curve on, every request is authorised first: the connection's
 * identity (set by the ZAP handler) must still be authorised, and its role
 * must allow the action (common/auth.c); a refusal is an ERR_FORBIDDEN
 * reply, logged with the identity and the action.
 *
 * A request handler answers with service_reply_msg or service_reply_error.
 * An event handler applies the event (atomically, deduplicated by message id)
 * and returns the Ack status the sender's relay gets. */
#ifndef SAV_SERVICE_H
#define SAV_SERVICE_H

#include <stddef.h>

#include <jansson.h>

#include "catalog.h"
#include "envelope.h"
#include "httpd.h"
#include "relay.h"
#include "settings.h"
#include "store.h"

typedef struct service service;

/* A reply being built by a request handler. */
typedef struct service_reply {
    Sav__MessageType type;
    envelope_buf body; /* the packed reply message */
    int later;         /* sent once a queued write is done (service_reply_after) */
} service_reply;

/* An event handler's answer that is not known yet: its write is queued (service_ack_after). */
#define SERVICE_ACK_LATER ((Sav__Ack__Status)-1)

/* Builds a request's reply from the answer to its queued write (r NULL with err: Redis unreachable; the caller
 * frees r) and frees ctx. */
typedef void (*service_finish_fn)(service *svc, const redisReply *r, void *ctx, service_reply *reply);

typedef void (*service_request_fn)(service *svc, const Sav__Envelope *req, service_reply *reply);
typedef Sav__Ack__Status (*service_event_fn)(service *svc, const Sav__Envelope *event, char *reason, size_t reason_len);

#define SERVICE_READS_AHEAD 2

/* Builds into reads[0..] the read-only commands a message's handler starts with (at most SERVICE_READS_AHEAD);
 * returns how many (0: none). The service sends the reads of a whole burst in one round trip before it handles
 * its messages, and each handler finds its replies with service_read_ahead. */
typedef int (*service_read_ahead_fn)(service *svc, const Sav__Envelope *msg, store_args reads[SERVICE_READS_AHEAD]);

/* An operator command served by a service: its name, the argument names it accepts, its handler. */
typedef struct service_command {
    const char *name;
    const char *const *args; /* NULL-terminated */
    void (*run)(service *svc, const Sav__Command *cmd, service_reply *reply);
} service_command;

/* One entry of a service's dispatch table: exactly one of on_request and on_event is set; read_ahead is optional. */
typedef struct service_route {
    Sav__MessageType type;
    service_request_fn on_request;
    service_event_fn on_event;
    service_read_ahead_fn read_ahead;
} service_route;

typedef struct service_def {
    enum service_id id;
    const service_route *routes;
    size_t nroutes;
    const service_command *commands;     /* operator commands (message type COMMAND) */
    size_t ncommands;
    const enum service_id *destinations; /* services this one emits events to */
    size_t ndestinations;
    int uses_catalog;                    /* keep the catalog published in Redis (see service_catalog) */
    void (*tick)(service *svc);          /* timers, run at start and every intake.scheduler_ms */
    int (*init)(service *svc);           /* loads what the handlers need; 0 or -1 with err */
    void (*cleanup)(service *svc);
} service_def;

/* Runs a service: parses argv (--config, --check-config, --help, --version), serves until stopped; returns the exit code. */
int service_main(const service_def *def, int argc, char **argv);

/* Adds a route to the service's HTTP listener (SERVICE.http_listen; with /health, /health/live, /health/ready and
 * /metrics); its handler runs in the listener's thread. Call it from the init hook: the listener starts after it.
 * 0 or -1 with err. */
int service_http_route(service *svc, const char *path, httpd_handler handler, void *ctx);

/* Returns the service's settings. */
const settings *service_settings(const service *svc);

/* Returns who acts, for timelines and records: the authenticated identity of the request being served ("anonymous"
 * when security.curve is off), or the service's own name outside a request (timers); owned by the service. */
const char *service_actor(const service *svc);

/* Returns the service's Redis connection. */
store *service_store(service *svc);

/* Returns the reply to the read `a` when the route of the message being handled sent exactly that read ahead
 * with the rest of its burst (the caller frees it; it may be an error reply), else NULL: the caller then sends
 * the read itself. Nothing earlier in the burst could have changed what was read: no message of the same ticket,
 * and no command, came before it. */
redisReply *service_read_ahead(service *svc, const store_args *a);

/* Returns the relay towards dest (poke it after writing to its outbox), or NULL if the service has none. */
relay *service_relay(service *svc, enum service_id dest);

/* Returns the catalog in force (NULL unless the service uses one); owned by the service. The catalog lives in
 * Redis; a service reloads it within catalog.check_ms of a `savctl catalog load`. At the first start on an
 * empty Redis, catalog.path is published; while Redis is unreachable, that file is used as it is. */
const catalog *service_catalog(const service *svc);

/* Publishes a validated catalog document to Redis (only_if_absent: unless one is there) and creates missing
 * stock; sets *version to the version in force. 0 or -1 with err (Redis unavailable or refused). */
int service_catalog_publish(service *svc, const char *json, size_t len, const catalog *parsed, int only_if_absent,
                            long long *version);

/* Fetches the catalog from Redis now if it changed; 0 or -1 with err. */
int service_catalog_sync(service *svc);

/* Returns the version of the catalog in force (0 when it came from the file, not Redis). */
long long service_catalog_version(const service *svc);

/* Stores and returns the service-specific state the init hook created. */
void service_set_state(service *svc, void *state);
void *service_state(service *svc);

/* Packs msg as the reply of type `type`. */
void service_reply_msg(service_reply *reply, Sav__MessageType type, const ProtobufCMessage *msg);

/* Makes the reply a CommandResult holding result (the reference is taken over). */
void service_reply_json(service_reply *reply, json_t *result);

/* Answers reply with the failure a Function's reply stands for: NULL (Redis unavailable), "NOTFOUND ..." (no
 * <what>), "REFUSED <reason>" (rejected with the reason), any other error (internal). Returns 1 if it answered,
 * 0 when r is a normal reply the caller answers itself. */
int service_reply_failure(service_reply *reply, const redisReply *r, const char *what);

/* Makes the reply an ErrorReply with a code and a sentence. */
void service_reply_error(service_reply *reply, Sav__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What one service concluded from an event: recorded and emitted atomically by service_apply_event. */
typedef struct service_change {
    const char *section;        /* the ticket's hash this service owns: "<section>:<ticket>" */
    const char **fields;        /* name/value pairs written to that hash */
    size_t nfields;             /* number of pairs */
    const char *need_state;     /* the state the transition starts from ("" = any) */
    const char *new_state;      /* the state after it ("" = unchanged) */
    const char *event;          /* timeline event, also the name of the emitted message */
    const char *detail;         /* timeline detail, no personal data */
    int unless_decided;         /* refuse (retry later) when the section's status is already "decided" */
    enum service_id dest;       /* who receives the emitted message; SVC_COUNT = nothing emitted */
    Sav__MessageType out_type;
    const ProtobufCMessage *out_body;
} service_change;

/* Applies an incoming event's change once (deduplicated by its message id) and pokes the relay;
 * returns the Ack status for the sender, with reason set when it is not ACK. */
Sav__Ack__Status service_apply_event(service *svc, const Sav__Envelope *in, const service_change *c, char *reason,
                                     size_t reason_len);

/* Ends an event handler with the write whose answer decides the acknowledgement: the service queues it with the
 * other writes of the burst of messages in hand, sends them to Redis in one round trip (with appendfsync always:
 * one fsync for all), then acknowledges each event and wakes the relay towards poke (SVC_COUNT: none) for those
 * applied. Returns SERVICE_ACK_LATER (the ack follows), or an Ack status with reason set when it cannot queue. */
Sav__Ack__Status service_ack_after(service *svc, const Sav__Envelope *in, const store_args *a, enum service_id poke,
                                   char *reason, size_t reason_len);

/* Ends a request handler the same way: its write is queued, and finish(ctx) builds the reply from the answer once
 * the burst's writes are done (reply is then sent by the service). feeds: the service whose outbox the write may
 * append to (its relay reads it in the same round trip), or SVC_COUNT. */
void service_reply_after(service *svc, const store_args *a, enum service_id feeds, service_finish_fn finish,
                         void *ctx, service_reply *reply);

/* Writes the dedup key of an incoming message for this service into out. */
void service_seen_key(service *svc, const Sav__Envelope *in, char out[STORE_KEY_LEN]);

/* Interprets a Function's 'applied' / 'duplicate' / 'retry:<why>' answer as an Ack status. */
Sav__Ack__Status service_ack_status(service *svc, const Sav__Envelope *in, redisReply *r, char *reason,
                                    size_t reason_len);

#endif
