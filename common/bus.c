#include "bus.h"
#include "clock.h"
#include "err.h"
#include "zap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

/* Heartbeats detect a dead peer on an idle TCP connection within seconds. */
#define BUS_HEARTBEAT_IVL_MS 1000
#define BUS_HEARTBEAT_TIMEOUT_MS 5000
#define BUS_HWM 10000
#define BUS_LINGER_MS 100
#define BUS_HANDSHAKE_EVENTS                                                                                       \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

static void *bus_ctx;

void *bus_context(void) {
    if (!bus_ctx) {
        bus_ctx = zmq_ctx_new();
        if (!bus_ctx) err_set("zmq_ctx_new: %s", zmq_strerror(errno));
    }
    return bus_ctx;
}

void bus_shutdown(void) {
    if (bus_ctx) zmq_ctx_term(bus_ctx);
    bus_ctx = NULL;
}

static int bus_setopt(void *sock, int opt, const void *value, size_t len, const char *name) {
    if (zmq_setsockopt(sock, opt, value, len) != 0) {
        err_set("zmq_setsockopt(%s): %s", name, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

#define BUS_SETINT(sock, opt, v)                                                                                   \
    do {                                                                                                           \
        int bus_v_ = (v);                                                                                          \
        if (bus_setopt(sock, opt, &bus_v_, sizeof(bus_v_), #opt) != 0) goto fail;                                 \
    } while (0)

void *bus_socket(int type, const settings *s) {
    void *ctx = bus_context();
    if (!ctx) return NULL;
    void *sock = zmq_socket(ctx, type);
    if (!sock) {
        err_set("zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int64_t maxmsg = s->socket_max_bytes;
    if (bus_setopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg), "ZMQ_MAXMSGSIZE") != 0) goto fail;
    BUS_SETINT(sock, ZMQ_LINGER, BUS_LINGER_MS);
    BUS_SETINT(sock, ZMQ_SNDHWM, BUS_HWM);
    BUS_SETINT(sock, ZMQ_RCVHWM, BUS_HWM);
    BUS_SETINT(sock, ZMQ_HEARTBEAT_IVL, BUS_HEARTBEAT_IVL_MS);
    BUS_SETINT(sock, ZMQ_HEARTBEAT_TIMEOUT, BUS_HEARTBEAT_TIMEOUT_MS);
    BUS_SETINT(sock, ZMQ_HEARTBEAT_TTL, BUS_HEARTBEAT_TIMEOUT_MS);
    if (type == ZMQ_ROUTER) BUS_SETINT(sock, ZMQ_ROUTER_MANDATORY, 1);
    /* A DEALER queues only on completed connections, so a message is never parked on a dead pipe. */
    if (type == ZMQ_DEALER) BUS_SETINT(sock, ZMQ_IMMEDIATE, 1);
    return sock;
fail:
    zmq_close(sock);
    return NULL;
}

int bus_bind(void *sock, const char *endpoint, const keys_pair *self) {
    if (self) {
        int server = 1;
        if (bus_setopt(sock, ZMQ_CURVE_SERVER, &server, sizeof(server), "ZMQ_CURVE_SERVER") != 0 ||
            bus_setopt(sock, ZMQ_CURVE_SECRETKEY, self->secret_key, KEYS_Z85_LEN + 1, "ZMQ_CURVE_SECRETKEY") != 0 ||
            bus_setopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN), "ZMQ_ZAP_DOMAIN") != 0)
            return -1;
    }
    if (zmq_bind(sock, endpoint) != 0) {
        err_set("cannot bind %s: %s", endpoint, zmq_strerror(errno));
        return -1;
    }
    return 0;
}

int bus_connect(void *sock, const bus_peer *peer) {
    if (peer->server_key &&
        (bus_setopt(sock, ZMQ_CURVE_SERVERKEY, peer->server_key, KEYS_Z85_LEN + 1, "ZMQ_CURVE_SERVERKEY") != 0 ||
         bus_setopt(sock, ZMQ_CURVE_PUBLICKEY, peer->self->public_key, KEYS_Z85_LEN + 1, "ZMQ_CURVE_PUBLICKEY") != 0 ||
         bus_setopt(sock, ZMQ_CURVE_SECRETKEY, peer->self->secret_key, KEYS_Z85_LEN + 1, "ZMQ_CURVE_SECRETKEY") != 0))
        return -1;
    /* Every instance of the service: ZeroMQ spreads the messages over those connected. */
    for (const char *p = peer->endpoint; *p; p++) {
        char one[SETTINGS_STR];
        size_t len = strcspn(p, ",");
        snprintf(one, sizeof(one), "%.*s", (int)len, p);
        if (zmq_connect(sock, one) != 0) {
            err_set("cannot connect to %s: %s", one, zmq_strerror(errno));
            return -1;
        }
        p += len;
        if (!*p) break;
    }
    return 0;
}

void *bus_monitor_open(void *sock) {
    static int serial;
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "inproc://bus-monitor-%d-%d", (int)getpid(),
             __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED));
    if (zmq_socket_monitor(sock, endpoint, BUS_HANDSHAKE_EVENTS) != 0) {
        err_set("zmq_socket_monitor: %s", zmq_strerror(errno));
        return NULL;
    }
    void *mon = zmq_socket(bus_context(), ZMQ_PAIR);
    int linger = 0;
    if (!mon || zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof(linger)) != 0 || zmq_connect(mon, endpoint) != 0) {
        err_set("cannot read the monitor of a socket: %s", zmq_strerror(errno));
        if (mon) zmq_close(mon);
        zmq_socket_monitor(sock, NULL, 0);
        return NULL;
    }
    return mon;
}

int bus_monitor_read(void *monitor, int *event, int *value) {
    /* An event is two frames: 2 bytes of event and 4 of value, then the endpoint. */
    zmq_msg_t head;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return 0;
    }
    int got = zmq_msg_size(&head) == 6;
    if (got) {
        uint16_t ev;
        uint32_t val;
        memcpy(&ev, zmq_msg_data(&head), 2);
        memcpy(&val, (const uint8_t *)zmq_msg_data(&head) + 2, 4);
        *event = ev;
        *value = (int)val;
    }
    int more = zmq_msg_more(&head);
    zmq_msg_close(&head);
    while (more) {
        zmq_msg_t rest;
        zmq_msg_init(&rest);
        more = zmq_msg_recv(&rest, monitor, 0) >= 0 && zmq_msg_more(&rest);
        zmq_msg_close(&rest);
    }
    return got;
}

void bus_monitor_close(void *sock, void *monitor) {
    if (!monitor) return;
    zmq_socket_monitor(sock, NULL, 0);
    zmq_close(monitor);
}

void bus_handshake_describe(int event, int value, char *out, size_t outlen) {
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf(out, outlen, "the server refused this client's key (ZAP status %d): it is not in the server's "
                 "authorised clients", value);
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf(out, outlen, "the peers use different security mechanisms (CURVE on one side only)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        snprintf(out, outlen, "the CURVE handshake could not be decrypted (the client does not use this server's "
                 "public key)");
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        snprintf(out, outlen, "the handshake broke the protocol (error 0x%x)", (unsigned)value);
    else
        snprintf(out, outlen, "the peer hung up during the handshake (a wrong server public key, or CURVE on one side "
                 "only)");
}

int bus_recv(void *sock, bus_msg *m) {
    memset(m, 0, sizeof(*m));
    int more = 1;
    while (more) {
        zmq_msg_t *frame = malloc(sizeof(zmq_msg_t));
        if (!frame) {
            err_set("out of memory receiving a frame");
            bus_msg_close(m);
            return -1;
        }
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(frame);
            free(frame);
            if (e == EAGAIN && m->nframes == 0) return 0;
            err_set("zmq_msg_recv: %s", zmq_strerror(e));
            bus_msg_close(m);
            return -1;
        }
        more = zmq_msg_more(frame);
        if (m->nframes < BUS_MAX_FRAMES) {
            m->frame[m->nframes] = frame;
        } else {
            zmq_msg_close(frame);
            free(frame);
        }
        m->nframes++;
    }
    return 1;
}

const uint8_t *bus_frame(const bus_msg *m, int i, size_t *len) {
    if (i < 0 || i >= m->nframes || i >= BUS_MAX_FRAMES) {
        *len = 0;
        return NULL;
    }
    zmq_msg_t *f = m->frame[i];
    *len = zmq_msg_size(f);
    return zmq_msg_data(f);
}

const char *bus_msg_user_id(const bus_msg *m) {
    /* The ROUTER makes the identity frame itself: only the peer's frames carry the connection's properties. */
    if (m->nframes < 2) return NULL;
    zmq_msg_t *f = m->frame[(m->nframes < BUS_MAX_FRAMES ? m->nframes : BUS_MAX_FRAMES) - 1];
    const char *id = zmq_msg_gets(f, "User-Id");
    return id && *id ? id : NULL;
}

void bus_msg_close(bus_msg *m) {
    for (int i = 0; i < m->nframes && i < BUS_MAX_FRAMES; i++) {
        zmq_msg_close(m->frame[i]);
        free(m->frame[i]);
    }
    memset(m, 0, sizeof(*m));
}

int bus_send(void *sock, int nframes, const void *const *data, const size_t *len) {
    for (int i = 0; i < nframes; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < nframes ? ZMQ_SNDMORE : 0);
        if (zmq_send(sock, data[i], len[i], flags) < 0) {
            err_set("zmq_send: %s", zmq_strerror(errno));
            return -1;
        }
    }
    return 0;
}

/* One request on one socket: sends it as soon as the connection is up and waits for the reply until deadline.
 * A refusal by the server's ZAP handler ends it at once; other handshake failures are kept in failure. */
static enum bus_result bus_attempt(void *sock, void *mon, const settings *s, const envelope_buf *request,
                                   const char *message_id, int64_t deadline, char *failure, size_t failure_len,
                                   Sav__Envelope **reply) {
    const void *frames[2] = {"", request->data};
    size_t lens[2] = {0, request->len};
    int sent = 0;
    for (;;) {
        int event, value;
        while (bus_monitor_read(mon, &event, &value)) {
            /* A hang-up says less than a protocol error seen on an earlier try: keep the more telling one. */
            if (event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL || !failure[0])
                bus_handshake_describe(event, value, failure, failure_len);
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return BUS_REFUSED;
        }
        /* ZMQ_IMMEDIATE refuses to queue before the connection is up: try again until the deadline. */
        if (!sent) sent = bus_send(sock, 2, frames, lens) == 0;
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) return BUS_NO_ANSWER;
        zmq_pollitem_t items[2] = {{sock, 0, sent ? ZMQ_POLLIN : ZMQ_POLLOUT, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, sent ? (long)left : 10) < 0 && errno != EINTR) return BUS_NO_ANSWER;
        bus_msg m;
        while (sent && bus_recv(sock, &m) == 1) {
            size_t len;
            const uint8_t *data = bus_frame(&m, m.nframes - 1, &len);
            Sav__Envelope *env = data ? envelope_unpack(data, len, (size_t)s->socket_max_bytes) : NULL;
            bus_msg_close(&m);
            if (env && strcmp(env->message_id, message_id) == 0) {
                *reply = env;
                return BUS_REPLIED;
            }
            envelope_free(env); /* a stale reply */
        }
    }
}

enum bus_result bus_request(const settings *s, const bus_peer *peer, const envelope_buf *request,
                            const char *message_id, int timeout_ms, int attempts, Sav__Envelope **reply) {
    char failure[256] = "";
    *reply = NULL;
    for (int attempt = 0; attempt < attempts; attempt++) {
        /* A fresh socket per attempt: a reply to an abandoned attempt cannot be mistaken for this one's. */
        void *sock = bus_socket(ZMQ_DEALER, s);
        if (!sock) return BUS_NO_ANSWER;
        void *mon = bus_monitor_open(sock);
        if (!mon || bus_connect(sock, peer) != 0) {
            bus_monitor_close(sock, mon);
            zmq_close(sock);
            return BUS_NO_ANSWER;
        }
        enum bus_result r = bus_attempt(sock, mon, s, request, message_id, clock_mono_ms() + timeout_ms, failure,
                                        sizeof(failure), reply);
        bus_monitor_close(sock, mon);
        zmq_close(sock);
        if (r == BUS_REFUSED) err_set("%s: %s", peer->endpoint, failure);
        if (r != BUS_NO_ANSWER) return r;
    }
    err_set("no answer from %s after %d attempt(s) of %d ms%s%s", peer->endpoint, attempts, timeout_ms,
            failure[0] ? ": " : "", failure);
    return BUS_NO_ANSWER;
}

int bus_endpoint_free(const char *endpoint) {
    if (strncmp(endpoint, "ipc://", 6) != 0) return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(endpoint + 6) >= sizeof(addr.sun_path)) return 0; /* zmq_bind refuses it with its own reason */
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", endpoint + 6);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int served = connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    if (served) err_set("another process serves %s", endpoint);
    return served ? -1 : 0;
}

int bus_peer_load(const settings *s, enum service_id service, keys_pair *self, char server_key[KEYS_Z85_LEN + 1],
                  bus_peer *peer) {
    *peer = (bus_peer){s->endpoint[service], NULL, NULL};
    if (strcmp(s->curve, "on") != 0) return 0;
    char dir[PATH_MAX], path[PATH_MAX], why[512];
    settings_resolve_path(s, s->keys_dir, dir, sizeof(dir));
    if (strcmp(s->identity, "none") == 0) {
        err_set("no identity to act as: pass --identity NAME or set [client] identity in %s (savctl keys generate "
                "NAME --role ROLE makes one)", s->path);
        return -1;
    }
    if (keys_load_pair(dir, s->identity, self) != 0) {
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("identity %s: %s", s->identity, why);
        return -1;
    }
    if (keys_path(dir, settings_service_name(service), "pub", path, sizeof(path)) != 0 ||
        keys_read_public(path, server_key) != 0) {
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("the public key of %s: %s", settings_service_name(service), why);
        return -1;
    }
    peer->server_key = server_key;
    peer->self = self;
    return 0;
}
