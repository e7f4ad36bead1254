/* relay: delivers one service's outbox to one destination service
 * (messaging.md, step 2). It reads the outbox stream of every shard through
 * a consumer group, sends each entry over a DEALER, and removes the entry
 * only when the destination ACKs its message id. Unanswered messages are
 * sent again with exponential backoff; after relay.max_attempts, or when the
 * destination REJECTs a message, the entry moves to the dead-letter stream.
 * A restarted relay (same service.instance) first re-sends its own pending
 * entries, so nothing waits on a process that died. */
#ifndef SAV_RELAY_H
#define SAV_RELAY_H

#include <stdint.h>

#include "bus.h"
#include "settings.h"
#include "store.h"

typedef struct relay relay;

/* Creates the relay from service `self` to service `dest` and connects its socket to peer (the destination's
 * endpoint, and its CURVE key with ours when security.curve is on); NULL with err. Reports handshake failures
 * (a destination that does not admit our key) in the log, at most every 10 s. */
relay *relay_new(store *st, const settings *s, enum service_id self, enum service_id dest, const bus_peer *peer);

/* Closes the socket and frees everything; pending entries stay in Redis for the next run. */
void relay_free(relay *r);

/* Returns the DEALER socket, for zmq_poll. */
void *relay_socket(relay *r);

/* Tells the relay that new entries were just written to its outbox. */
void relay_poke(relay *r);

/* Queues, behind the writes waiting in the store (store_defer), what the relay has for Redis, so that the one
 * round trip of store_flush carries it too: the removal of the entries acknowledged since, and when fed (those
 * writes may append to its outbox), the read of its new entries, which then sees them. */
void relay_queue(relay *r, int fed);

/* Reads ACK/RETRY/REJECT replies waiting on the socket. */
void relay_on_readable(relay *r);

/* Does what is due: read new entries, resend the unanswered, flush acknowledgements. */
void relay_tick(relay *r);

/* Returns the monotonic time (ms) of the next thing the relay must do. */
int64_t relay_next_due(const relay *r);

/* Returns the number of messages sent and not yet acknowledged. */
int relay_in_flight(const relay *r);

/* Returns the outbox stream key name (without prefix and shard) this relay reads: "outbox:<dest>". */
const char *relay_stream_name(const relay *r);

#endif
