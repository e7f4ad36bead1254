#include "load.h"
#include "bus.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

/* One request in flight; slots are found by open addressing on the message id. */
typedef struct bench_slot {
    char id[ENVELOPE_ID_LEN]; /* "" when free */
    long tag;
    int64_t sent_us;
} bench_slot;

struct bench_conn {
    void *sock;
    keys_pair self;                       /* client.identity's key pair, with CURVE on */
    char server_key[KEYS_Z85_LEN + 1];
    int window, in_flight;
    size_t nslots; /* a power of two, at least twice the window */
    bench_slot *slots;
    bench_reply_fn fn;
    void *ctx;
    size_t max_frame;
};

int64_t bench_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t bench_hash(const char *id) {
    size_t h = 1469598103934665603ULL;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

/* The slot holding id, or (insert) the free slot where it goes. */
static bench_slot *bench_find(bench_conn *c, const char *id, int insert) {
    size_t mask = c->nslots - 1;
    for (size_t i = bench_hash(id) & mask;; i = (i + 1) & mask) {
        bench_slot *s = &c->slots[i];
        if (s->id[0] == '\0') return insert ? s : NULL;
        if (strcmp(s->id, id) == 0) return s;
    }
}

/* Frees a slot and moves the entries after it back into place (linear probing deletion). */
static void bench_release(bench_conn *c, bench_slot *s) {
    size_t mask = c->nslots - 1, i = (size_t)(s - c->slots);
    s->id[0] = '\0';
    for (size_t j = (i + 1) & mask; c->slots[j].id[0]; j = (j + 1) & mask) {
        bench_slot moved = c->slots[j];
        c->slots[j].id[0] = '\0';
        *bench_find(c, moved.id, 1) = moved;
    }
    c->in_flight--;
}

bench_conn *bench_conn_open(const settings *s, enum service_id service, int window, bench_reply_fn fn, void *ctx) {
    bench_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        err_set("out of memory");
        return NULL;
    }
    c->window = window, c->fn = fn, c->ctx = ctx, c->max_frame = (size_t)s->max_frame_bytes;
    for (c->nslots = 16; c->nslots < (size_t)window * 2; c->nslots *= 2) continue;
    c->slots = calloc(c->nslots, sizeof(*c->slots));
    bus_peer peer;
    c->sock = c->slots ? bus_socket(ZMQ_DEALER, s) : NULL;
    if (!c->sock || bus_peer_load(s, service, &c->self, c->server_key, &peer) != 0 || bus_connect(c->sock, &peer) != 0) {
        if (!c->slots) err_set("out of memory");
        bench_conn_close(c);
        return NULL;
    }
    return c;
}

void bench_conn_close(bench_conn *c) {
    if (!c) return;
    if (c->sock) zmq_close(c->sock);
    free(c->slots);
    free(c);
}

int bench_in_flight(const bench_conn *c) { return c->in_flight; }

/* Handles one received reply: [empty][envelope]. */
static void bench_on_reply(bench_conn *c, const bus_msg *m) {
    size_t len;
    const uint8_t *data = bus_frame(m, m->nframes - 1, &len);
    Sav__Envelope *env = data ? envelope_unpack(data, len, c->max_frame) : NULL;
    bench_slot *s = env ? bench_find(c, env->message_id, 0) : NULL;
    if (s) {
        int64_t latency = bench_now_us() - s->sent_us;
        long tag = s->tag;
        bench_release(c, s);
        c->fn(c->ctx, tag, env, latency);
    }
    envelope_free(env);
}

/* Takes every reply already received; returns how many, -1 on error. */
static int bench_take(bench_conn *c) {
    int n = 0;
    bus_msg m;
    int got;
    while ((got = bus_recv(c->sock, &m)) == 1) {
        bench_on_reply(c, &m);
        bus_msg_close(&m);
        n++;
    }
    return got < 0 ? -1 : n;
}

int bench_poll(bench_conn *c, int wait_ms) {
    return bench_poll_many(&c, 1, wait_ms);
}

int bench_poll_many(bench_conn *const *conns, int n, int wait_ms) {
    zmq_pollitem_t items[BENCH_MAX_CONNS];
    if (n < 1 || n > BENCH_MAX_CONNS) {
        err_set("bench_poll_many: %d connections, at most %d", n, BENCH_MAX_CONNS);
        return -1;
    }
    for (int i = 0; i < n; i++) items[i] = (zmq_pollitem_t){conns[i]->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(items, n, wait_ms) < 0 && errno != EINTR) {
        err_set("zmq_poll: %s", zmq_strerror(errno));
        return -1;
    }
    int total = 0;
    for (int i = 0; i < n; i++) {
        int got = bench_take(conns[i]);
        if (got < 0) return -1;
        total += got;
    }
    return total;
}

int bench_send(bench_conn *c, const envelope_buf *frame, const char *message_id, long tag) {
    while (c->in_flight >= c->window)
        if (bench_poll(c, 100) < 0) return -1;
    const void *frames[2] = {"", frame->data};
    size_t lens[2] = {0, frame->len};
    /* ZMQ_IMMEDIATE: until the connection is up the send is refused; wait for it. */
    int64_t deadline = bench_now_us() + 5000000;
    while (bus_send(c->sock, 2, frames, lens) != 0) {
        if (bench_now_us() > deadline) {
            err_set("cannot send: %s", err_get());
            return -1;
        }
        if (bench_poll(c, 1) < 0) return -1;
    }
    bench_slot *s = bench_find(c, message_id, 1);
    snprintf(s->id, sizeof(s->id), "%s", message_id);
    s->tag = tag;
    s->sent_us = bench_now_us();
    c->in_flight++;
    return 0;
}

long bench_drain(bench_conn *c, int timeout_ms) {
    int64_t last = bench_now_us();
    while (c->in_flight > 0 && bench_now_us() - last < (int64_t)timeout_ms * 1000) {
        int n = bench_poll(c, 100);
        if (n < 0) break;
        if (n > 0) last = bench_now_us();
    }
    return c->in_flight;
}
