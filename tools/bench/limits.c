#include "limits.h"
#include "err.h"
#include "load.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct bench_peer {
    void *ctx;
    char endpoint[128];
    size_t size;
    long count;
    int rc;
} bench_peer;

static void *bench_pusher(void *arg) {
    bench_peer *p = arg;
    void *s = zmq_socket(p->ctx, ZMQ_PUSH);
    int hwm = 100000, linger = 1000;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    char *msg = calloc(1, p->size);
    p->rc = s && msg && zmq_connect(s, p->endpoint) == 0 ? 0 : -1;
    for (long i = 0; p->rc == 0 && i < p->count; i++)
        if (zmq_send(s, msg, p->size, 0) < 0) p->rc = -1;
    free(msg);
    zmq_close(s);
    return NULL;
}

static void *bench_echo(void *arg) {
    bench_peer *p = arg;
    void *s = zmq_socket(p->ctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    p->rc = s && zmq_bind(s, p->endpoint) == 0 ? 0 : -1;
    for (long i = 0; p->rc == 0 && i < p->count; i++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id), zmq_msg_init(&body);
        if (zmq_msg_recv(&id, s, 0) < 0 || zmq_msg_recv(&body, s, 0) < 0 || zmq_msg_send(&id, s, ZMQ_SNDMORE) < 0 ||
            zmq_msg_send(&body, s, 0) < 0)
            p->rc = -1;
        zmq_msg_close(&id), zmq_msg_close(&body);
    }
    zmq_close(s);
    return NULL;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void bench_endpoint(const char *transport, const char *what, char *out, size_t len) {
    if (strcmp(transport, "ipc") == 0)
        snprintf(out, len, "ipc:///tmp/sav-bench-%s-%d.sock", what, (int)getpid());
    else
        snprintf(out, len, "tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000) + (what[0] == 'r'));
}

/* One-way throughput: this thread pulls what another pushes. */
static int bench_throughput(void *ctx, const char *transport, size_t size, long count, double *out) {
    bench_peer p = {ctx, "", size, count, 0};
    bench_endpoint(transport, "thr", p.endpoint, sizeof(p.endpoint));
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 100000;
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (!pull || zmq_bind(pull, p.endpoint) != 0) {
        err_set("cannot bind %s: %s", p.endpoint, zmq_strerror(zmq_errno()));
        zmq_close(pull);
        return -1;
    }
    pthread_t t;
    pthread_create(&t, NULL, bench_pusher, &p);
    char *buf = malloc(size + 1);
    int64_t start = 0;
    int rc = 0;
    for (long i = 0; i < count && rc == 0; i++) {
        if (zmq_recv(pull, buf, size + 1, 0) != (int)size) rc = -1;
        if (i == 0) start = bench_now_us();
    }
    int64_t took = bench_now_us() - start;
    pthread_join(t, NULL);
    free(buf);
    zmq_close(pull);
    if (rc != 0 || p.rc != 0) {
        err_set("throughput over %s failed: %s", transport, zmq_strerror(zmq_errno()));
        return -1;
    }
    *out = took > 0 ? (double)(count - 1) * 1e6 / (double)took : 0;
    return 0;
}

/* Round trips, one at a time, to an echoing ROUTER in another thread. */
static int bench_round_trips(void *ctx, const char *transport, size_t size, long rtts, double *p50, double *p99) {
    bench_peer p = {ctx, "", size, rtts, 0};
    bench_endpoint(transport, "rtt", p.endpoint, sizeof(p.endpoint));
    pthread_t t;
    pthread_create(&t, NULL, bench_echo, &p);
    usleep(100000);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
    double *us = calloc((size_t)rtts, sizeof(*us));
    char *buf = calloc(1, size + 1);
    int rc = dealer && us && buf && zmq_connect(dealer, p.endpoint) == 0 ? 0 : -1;
    for (long i = 0; i < rtts && rc == 0; i++) {
        int64_t t0 = bench_now_us();
        if (zmq_send(dealer, buf, size, 0) < 0 || zmq_recv(dealer, buf, size + 1, 0) != (int)size) rc = -1;
        us[i] = (double)(bench_now_us() - t0);
    }
    pthread_join(t, NULL);
    zmq_close(dealer);
    if (rc == 0 && p.rc == 0) {
        qsort(us, (size_t)rtts, sizeof(*us), bench_cmp_double);
        *p50 = us[rtts / 2], *p99 = us[rtts * 99 / 100];
    } else {
        err_set("round trips over %s failed", transport);
    }
    free(us);
    free(buf);
    return rc == 0 && p.rc == 0 ? 0 : -1;
}

int bench_zmq_limits(const char *transport, size_t size, long count, long rtts, bench_zmq_figures *out) {
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        err_set("zmq_ctx_new: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    int rc = bench_throughput(ctx, transport, size, count, &out->msgs_per_s) == 0 &&
                     bench_round_trips(ctx, transport, size, rtts, &out->rtt_p50_us, &out->rtt_p99_us) == 0
                 ? 0
                 : -1;
    zmq_ctx_term(ctx);
    return rc;
}
