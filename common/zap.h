/* zap: the ZeroMQ authentication handler (RFC 27) of a service process.
 * libzmq asks it, on inproc://zeromq.zap.01, about every client that opens
 * a CURVE connection to a server socket of the process; it admits only the
 * public keys of the identity table and names the identity in the reply's
 * user id, which every message of that connection then carries ("User-Id").
 * It must be bound before any server socket: without a handler, libzmq lets
 * every CURVE client in. Refusals are logged (the key and the address, at
 * most once per key every ZAP_LOG_INTERVAL_MS, with the count since). It is
 * polled in the service's loop: one thread owns the table. */
#ifndef SAV_ZAP_H
#define SAV_ZAP_H

#include "auth.h"

#define ZAP_DOMAIN "sav"
#define ZAP_LOG_INTERVAL_MS 10000

typedef struct zap zap;

/* Binds the handler in ctx, admitting the identities of table (borrowed: it must outlive the handler);
 * NULL with err. */
zap *zap_new(void *ctx, const auth_table *table);

/* Returns the handler's socket, for zmq_poll. */
void *zap_socket(zap *z);

/* Answers every waiting request: 200 with the identity's name for a known key, 400 otherwise. */
void zap_on_readable(zap *z);

/* Closes the socket and frees the handler (NULL is fine). */
void zap_free(zap *z);

#endif
