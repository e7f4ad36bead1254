/* bus: ZeroMQ sockets configured the one safe way (small LINGER, bounded
 * MAXMSGSIZE and HWMs, heartbeats, ROUTER_MANDATORY), multipart frame I/O,
 * and the client side of request/reply with timeouts and retries.
 * Frame layout on every socket: [identity (ROUTER side only)] [empty] [envelope]. */
#ifndef SAV_BUS_H
#define SAV_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "settings.h"

#define BUS_MAX_FRAMES 4

/* One received multipart message; sizes beyond BUS_MAX_FRAMES are counted in nframes but not kept. */
typedef struct bus_msg {
    void *frame[BUS_MAX_FRAMES]; /* zmq_msg_t, opaque here */
    int nframes;                 /* frames received, possibly > BUS_MAX_FRAMES */
} bus_msg;

/* Returns the process's ZeroMQ context, created on first use; NULL with err. */
void *bus_context(void);

/* Closes every socket's context at exit; call after closing all sockets. */
void bus_shutdown(void);

/* Creates a socket (ZMQ_ROUTER or ZMQ_DEALER) with the safety options from s; NULL with err. */
void *bus_socket(int type, const settings *s);

/* Returns 0 if nobody serves endpoint yet, -1 with err if another process does: an ipc:// socket that accepts a
 * connection (libzmq would silently take its path over; a tcp:// endpoint in use fails at bind by itself). */
int bus_endpoint_free(const char *endpoint);

/* Receives one multipart message without blocking; 1 received, 0 nothing waiting, -1 error. Free with bus_msg_close. */
int bus_recv(void *sock, bus_msg *m);

/* Returns frame i's bytes and sets *len; NULL if the frame was not kept. */
const uint8_t *bus_frame(const bus_msg *m, int i, size_t *len);

/* Releases a received message's frames. */
void bus_msg_close(bus_msg *m);

/* Sends frames (NULL data with len 0 sends an empty frame) as one multipart message, not blocking; 0 or -1 with err. */
int bus_send(void *sock, int nframes, const void *const *data, const size_t *len);

/* Sends a request to endpoint and waits for the reply envelope, retrying with a fresh socket.
 * Returns the reply (free with envelope_free) or NULL with err naming the endpoint when nobody answered. */
Sav__Envelope *bus_request(const settings *s, const char *endpoint, const envelope_buf *request,
                           const char *message_id, int timeout_ms, int attempts);

#endif
