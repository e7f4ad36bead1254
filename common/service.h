/* service: what the four services have in common. Command line, config,
 * Redis, the ROUTER every client and peer talks to, the relays of the
 * service's outboxes, and one poll loop that serves requests, applies events
 * and drives the relays until SIGTERM or SIGINT.
 *
 * A request handler answers with service_reply_msg or service_reply_error.
 * An event handler applies the event (atomically, deduplicated by message id)
 * and returns the Ack status the sender's relay gets. */
#ifndef SAV_SERVICE_H
#define SAV_SERVICE_H

#include <stddef.h>

#include "envelope.h"
#include "relay.h"
#include "settings.h"
#include "store.h"

typedef struct service service;

/* A reply being built by a request handler. */
typedef struct service_reply {
    Sav__MessageType type;
    envelope_buf body; /* the packed reply message */
} service_reply;

typedef void (*service_request_fn)(service *svc, const Sav__Envelope *req, service_reply *reply);
typedef Sav__Ack__Status (*service_event_fn)(service *svc, const Sav__Envelope *event, char *reason, size_t reason_len);

/* One entry of a service's dispatch table: exactly one of on_request and on_event is set. */
typedef struct service_route {
    Sav__MessageType type;
    service_request_fn on_request;
    service_event_fn on_event;
} service_route;

typedef struct service_def {
    enum service_id id;
    const service_route *routes;
    size_t nroutes;
    const enum service_id *destinations; /* services this one emits events to */
    size_t ndestinations;
    int (*init)(service *svc);           /* loads what the handlers need; 0 or -1 with err */
    void (*cleanup)(service *svc);
} service_def;

/* Runs a service: parses argv (--config, --check-config, --help, --version), serves until stopped; returns the exit code. */
int service_main(const service_def *def, int argc, char **argv);

/* Returns the service's settings. */
const settings *service_settings(const service *svc);

/* Returns the service's Redis connection. */
store *service_store(service *svc);

/* Returns the relay towards dest (poke it after writing to its outbox), or NULL if the service has none. */
relay *service_relay(service *svc, enum service_id dest);

/* Stores and returns the service-specific state the init hook created. */
void service_set_state(service *svc, void *state);
void *service_state(service *svc);

/* Packs msg as the reply of type `type`. */
void service_reply_msg(service_reply *reply, Sav__MessageType type, const ProtobufCMessage *msg);

/* Makes the reply an ErrorReply with a code and a sentence. */
void service_reply_error(service_reply *reply, Sav__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs an FCALL (name, keys, args) with binary-safe args; returns the reply or NULL with err (Redis unreachable). */
redisReply *service_fcall(service *svc, const char *name, int nkeys, int nargs, const char **args, const size_t *lens);

#endif
