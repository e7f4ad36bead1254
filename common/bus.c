#include "bus.h"
#include "clock.h"
#include "err.h"

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

/* Waits for the reply to message_id on sock; returns it, or NULL on timeout. Stale replies are skipped. */
static Sav__Envelope *bus_await_reply(void *sock, const settings *s, const char *message_id, int timeout_ms) {
    int64_t deadline = clock_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - clock_mono_ms();
        if (left <= 0) return NULL;
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)left) < 0 && errno != EINTR) return NULL;
        bus_msg m;
        while (bus_recv(sock, &m) == 1) {
            size_t len;
            const uint8_t *data = bus_frame(&m, m.nframes - 1, &len);
            Sav__Envelope *env = data ? envelope_unpack(data, len, (size_t)s->socket_max_bytes) : NULL;
            bus_msg_close(&m);
            if (env && strcmp(env->message_id, message_id) == 0) return env;
            envelope_free(env);
        }
    }
}

Sav__Envelope *bus_request(const settings *s, const char *endpoint, const envelope_buf *request,
                           const char *message_id, int timeout_ms, int attempts) {
    for (int attempt = 0; attempt < attempts; attempt++) {
        /* A fresh socket per attempt: a reply to an abandoned attempt cannot be mistaken for this one's. */
        void *sock = bus_socket(ZMQ_DEALER, s);
        if (!sock) return NULL;
        if (zmq_connect(sock, endpoint) != 0) {
            err_set("cannot connect to %s: %s", endpoint, zmq_strerror(errno));
            zmq_close(sock);
            return NULL;
        }
        const void *frames[2] = {"", request->data};
        size_t lens[2] = {0, request->len};
        Sav__Envelope *reply = NULL;
        /* ZMQ_IMMEDIATE refuses to queue before the connection is up: retry the send until the deadline. */
        int64_t deadline = clock_mono_ms() + timeout_ms;
        while (bus_send(sock, 2, frames, lens) != 0 && clock_mono_ms() < deadline) {
            zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
            zmq_poll(&item, 1, 10);
        }
        int64_t left = deadline - clock_mono_ms();
        if (left > 0) reply = bus_await_reply(sock, s, message_id, (int)left);
        zmq_close(sock);
        if (reply) return reply;
    }
    err_set("no answer from %s after %d attempt(s) of %d ms", endpoint, attempts, timeout_ms);
    return NULL;
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
