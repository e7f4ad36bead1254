/* bus: ZeroMQ sockets configured the one safe way (small LINGER, bounded
 * MAXMSGSIZE and HWMs, heartbeats, ROUTER_MANDATORY), CURVE on both sides
 * (servers in the ZAP domain, clients with the server's public key and their
 * own pair), handshake failures read from a socket monitor, multipart frame
 * I/O, and the client side of request/reply with timeouts and retries.
 * Frame layout on every socket: [identity (ROUTER side only)] [empty] [envelope]. */
#ifndef SAV_BUS_H
#define SAV_BUS_H

#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "keys.h"
#include "settings.h"

#define BUS_MAX_FRAMES 4

/* One received multipart message; sizes beyond BUS_MAX_FRAMES are counted in nframes but not kept. */
typedef struct bus_msg {
    void *frame[BUS_MAX_FRAMES]; /* zmq_msg_t, opaque here */
    int nframes;                 /* frames received, possibly > BUS_MAX_FRAMES */
} bus_msg;

/* Where a client socket connects, and as whom: without a server key the connection is plain (security.curve off). */
typedef struct bus_peer {
    const char *endpoint;   /* one endpoint, or several separated by commas */
    const char *server_key; /* the server's Z85 public key, or NULL */
    const keys_pair *self;  /* this client's key pair, when server_key is set */
} bus_peer;

/* A client's view of the service it talks to, as the configuration says: the endpoint and, with security.curve on,
 * the service's public key and the key pair of client.identity (both read from security.keys_dir into the
 * caller's self and server_key, which peer then points at). 0, or -1 with err naming what is missing. */
int bus_peer_load(const settings *s, enum service_id service, keys_pair *self, char server_key[KEYS_Z85_LEN + 1],
                  bus_peer *peer);

/* What a request came to. */
enum bus_result {
    BUS_REPLIED = 0, /* the reply is in hand */
    BUS_NO_ANSWER,   /* nobody answered in time (err says why, with the last handshake failure if any) */
    BUS_REFUSED,     /* the server's ZAP handler refused this client's key */
};

/* Returns the process's ZeroMQ context, created on first use; NULL with err. */
void *bus_context(void);

/* Closes every socket's context at exit; call after closing all sockets. */
void bus_shutdown(void);

/* Creates a socket (ZMQ_ROUTER or ZMQ_DEALER) with the safety options from s; NULL with err. */
void *bus_socket(int type, const settings *s);

/* Makes sock a CURVE server in ZAP domain "sav" with the key pair self (NULL: plain), then binds it to endpoint;
 * 0 or -1 with err. */
int bus_bind(void *sock, const char *endpoint, const keys_pair *self);

/* Makes sock a CURVE client of the peer when it has a server key, then connects it to each endpoint of the
 * peer's comma-separated list (the service's instances); 0 or -1 with err. */
int bus_connect(void *sock, const bus_peer *peer);

/* Starts reporting sock's handshake failures; returns the socket to read them from (bus_monitor_read), to close
 * with bus_monitor_close before sock; NULL with err. */
void *bus_monitor_open(void *sock);

/* Reads one handshake failure without blocking: 1 with *event (ZMQ_EVENT_HANDSHAKE_FAILED_*) and *value (the ZAP
 * status or the protocol error), 0 when none is waiting. */
int bus_monitor_read(void *monitor, int *event, int *value);

/* Stops reporting sock's handshake failures and closes monitor (NULL is fine). */
void bus_monitor_close(void *sock, void *monitor);

/* Writes a sentence saying what a handshake failure means into out. */
void bus_handshake_describe(int event, int value, char *out, size_t outlen);

/* Returns 0 if nobody serves endpoint yet, -1 with err if another process does: an ipc:// socket that accepts a
 * connection (libzmq would silently take its path over; a tcp:// endpoint in use fails at bind by itself). */
int bus_endpoint_free(const char *endpoint);

/* Receives one multipart message without blocking; 1 received, 0 nothing waiting, -1 error. Free with bus_msg_close. */
int bus_recv(void *sock, bus_msg *m);

/* Returns frame i's bytes and sets *len; NULL if the frame was not kept. */
const uint8_t *bus_frame(const bus_msg *m, int i, size_t *len);

/* Returns the identity the ZAP handler gave the connection m came from (its "User-Id"), or NULL; owned by m. */
const char *bus_msg_user_id(const bus_msg *m);

/* Releases a received message's frames. */
void bus_msg_close(bus_msg *m);

/* Sends frames (NULL data with len 0 sends an empty frame) as one multipart message, not blocking; 0 or -1 with err. */
int bus_send(void *sock, int nframes, const void *const *data, const size_t *len);

/* Sends a request to the peer and waits for the reply envelope, retrying with a fresh socket. BUS_REPLIED with
 * *reply set (free with envelope_free); otherwise *reply is NULL and err names the endpoint and why. */
enum bus_result bus_request(const settings *s, const bus_peer *peer, const envelope_buf *request,
                            const char *message_id, int timeout_ms, int attempts, Sav__Envelope **reply);

#endif
