/* Unit tests for common/bus.c: socket options, multipart send/receive, frame access, request/reply with retries,
 * and CURVE with the ZAP handler of common/zap.c: an admitted key carries its identity, an unknown key is refused,
 * a plain client or a wrong server key gets no answer. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <zmq.h>

#include "auth.h"
#include "bus.h"
#include "clock.h"
#include "zap.h"

#define SOCKET_MAX 1048576

/* The only setting the bus reads. */
static settings bus_settings(void) {
    settings s;
    memset(&s, 0, sizeof(s));
    s.socket_max_bytes = SOCKET_MAX;
    s.max_frame_bytes = 65536;
    return s;
}

/* Sockets a test opened and has not closed yet: the teardown closes them after a failed assertion, since
 * bus_shutdown would otherwise wait for them forever. */
static void *tracked[16];

static void *track(void *sock) {
    for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++)
        if (!tracked[i]) return tracked[i] = sock;
    fail_msg("too many open sockets");
    return NULL;
}

static void sock_close(void *sock) {
    for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++)
        if (tracked[i] == sock) tracked[i] = NULL;
    zmq_close(sock);
}

static int bus_test_teardown(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(tracked) / sizeof(tracked[0]); i++)
        if (tracked[i]) sock_close(tracked[i]);
    return 0;
}

/* Opens a ROUTER bound on endpoint (tcp://127.0.0.1:0 picks a port) and writes the bound endpoint into out. */
static void *router_bound(const settings *s, const char *endpoint, char *out, size_t outlen) {
    void *router = bus_socket(ZMQ_ROUTER, s);
    if (!router) fail_msg("bus_socket(ROUTER): %s", err_get());
    track(router);
    if (zmq_bind(router, endpoint) != 0) fail_msg("zmq_bind(%s): %s", endpoint, zmq_strerror(errno));
    if (out) {
        size_t len = outlen;
        assert_int_equal(0, zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, out, &len));
    }
    return router;
}

/* Opens a DEALER connected to endpoint. */
static void *dealer_connected(const settings *s, const char *endpoint) {
    void *dealer = bus_socket(ZMQ_DEALER, s);
    if (!dealer) fail_msg("bus_socket(DEALER): %s", err_get());
    track(dealer);
    if (zmq_connect(dealer, endpoint) != 0) fail_msg("zmq_connect(%s): %s", endpoint, zmq_strerror(errno));
    return dealer;
}

/* Sends frames, retrying for up to a second while ZMQ_IMMEDIATE waits for the connection. */
static void send_when_connected(void *sock, int n, const void *const *data, const size_t *len) {
    int64_t deadline = clock_mono_ms() + 1000;
    while (bus_send(sock, n, data, len) != 0) {
        if (clock_mono_ms() > deadline) fail_msg("bus_send never succeeded: %s", err_get());
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
        zmq_poll(&item, 1, 10);
    }
}

/* Waits up to timeout_ms for a message on sock and receives it; returns bus_recv's result. */
static int recv_within(void *sock, bus_msg *m, int timeout_ms) {
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, timeout_ms);
    return bus_recv(sock, m);
}

/* Fails unless frame i of m holds exactly the len bytes of data. */
static void frame_is(const bus_msg *m, int i, const void *data, size_t len) {
    size_t got = 12345;
    const uint8_t *f = bus_frame(m, i, &got);
    assert_non_null(f);
    assert_int_equal(len, got);
    if (len) assert_memory_equal(data, f, len);
}

static void test_socket_options_applied(void **state) {
    (void)state;
    settings s = bus_settings();
    void *dealer = track(bus_socket(ZMQ_DEALER, &s));
    void *router = track(bus_socket(ZMQ_ROUTER, &s));
    assert_non_null(dealer);
    assert_non_null(router);
    int v;
    int64_t v64;
    size_t len = sizeof(v64);
    assert_int_equal(0, zmq_getsockopt(dealer, ZMQ_MAXMSGSIZE, &v64, &len));
    assert_int_equal(SOCKET_MAX, v64);
    struct {
        int opt, dealer, router;
        const char *name;
    } want[] = {
        {ZMQ_LINGER, 100, 100, "ZMQ_LINGER"},
        {ZMQ_SNDHWM, 10000, 10000, "ZMQ_SNDHWM"},
        {ZMQ_RCVHWM, 10000, 10000, "ZMQ_RCVHWM"},
        {ZMQ_IMMEDIATE, 1, 0, "ZMQ_IMMEDIATE"},
        {ZMQ_TYPE, ZMQ_DEALER, ZMQ_ROUTER, "ZMQ_TYPE"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        len = sizeof(v);
        assert_int_equal(0, zmq_getsockopt(dealer, want[i].opt, &v, &len));
        if (v != want[i].dealer) fail_msg("DEALER %s is %d, expected %d", want[i].name, v, want[i].dealer);
        len = sizeof(v);
        assert_int_equal(0, zmq_getsockopt(router, want[i].opt, &v, &len));
        if (v != want[i].router) fail_msg("ROUTER %s is %d, expected %d", want[i].name, v, want[i].router);
    }
    sock_close(dealer);
    sock_close(router);
}

static void test_recv_returns_zero_when_nothing_waits(void **state) {
    (void)state;
    settings s = bus_settings();
    void *router = router_bound(&s, "inproc://bus-test-empty", NULL, 0);
    void *dealer = dealer_connected(&s, "inproc://bus-test-empty");
    bus_msg m;
    memset(&m, 0xAB, sizeof(m));
    assert_int_equal(0, bus_recv(router, &m));
    assert_int_equal(0, m.nframes);
    assert_int_equal(0, bus_recv(dealer, &m));
    assert_int_equal(0, m.nframes);
    size_t len = 99;
    assert_null(bus_frame(&m, 0, &len));
    assert_int_equal(0, len);
    sock_close(dealer);
    sock_close(router);
}

static void test_send_recv_three_frame_message(void **state) {
    (void)state;
    settings s = bus_settings();
    void *router = router_bound(&s, "inproc://bus-test-frames", NULL, 0);
    void *dealer = dealer_connected(&s, "inproc://bus-test-frames");

    /* DEALER sends [empty][request]; the ROUTER sees [identity][empty][request]. */
    static const uint8_t request[] = {'p', 'i', 'n', 'g', 0x00, 0xff};
    const void *out[2] = {NULL, request};
    size_t outlen[2] = {0, sizeof(request)};
    send_when_connected(dealer, 2, out, outlen);
    bus_msg m;
    assert_int_equal(1, recv_within(router, &m, 1000));
    assert_int_equal(3, m.nframes);
    size_t idlen = 0;
    const uint8_t *id = bus_frame(&m, 0, &idlen);
    assert_non_null(id);
    assert_in_range(idlen, 1, 255);
    uint8_t identity[256];
    memcpy(identity, id, idlen);
    frame_is(&m, 1, NULL, 0);
    frame_is(&m, 2, request, sizeof(request));
    size_t len = 99;
    assert_null(bus_frame(&m, 3, &len));
    assert_int_equal(0, len);
    assert_null(bus_frame(&m, -1, &len));
    bus_msg_close(&m);
    assert_int_equal(0, m.nframes);

    /* The ROUTER answers with the 3-frame [identity][empty][reply]; the DEALER sees [empty][reply]. */
    const void *back[3] = {identity, NULL, "pong"};
    size_t backlen[3] = {idlen, 0, 4};
    assert_int_equal(0, bus_send(router, 3, back, backlen));
    assert_int_equal(1, recv_within(dealer, &m, 1000));
    assert_int_equal(2, m.nframes);
    frame_is(&m, 0, NULL, 0);
    frame_is(&m, 1, "pong", 4);
    bus_msg_close(&m);

    /* Nothing else is waiting afterwards. */
    assert_int_equal(0, bus_recv(router, &m));
    assert_int_equal(0, bus_recv(dealer, &m));
    sock_close(dealer);
    sock_close(router);
}

static void test_dealer_three_frames_arrive_in_order(void **state) {
    (void)state;
    settings s = bus_settings();
    void *router = router_bound(&s, "inproc://bus-test-three", NULL, 0);
    void *dealer = dealer_connected(&s, "inproc://bus-test-three");
    const void *out[3] = {"first", NULL, "third"};
    size_t outlen[3] = {5, 0, 5};
    send_when_connected(dealer, 3, out, outlen);
    bus_msg m;
    assert_int_equal(1, recv_within(router, &m, 1000));
    assert_int_equal(4, m.nframes);
    frame_is(&m, 1, "first", 5);
    frame_is(&m, 2, NULL, 0);
    frame_is(&m, 3, "third", 5);
    bus_msg_close(&m);
    sock_close(dealer);
    sock_close(router);
}

static void test_recv_counts_frames_beyond_the_kept_ones(void **state) {
    (void)state;
    settings s = bus_settings();
    void *router = router_bound(&s, "inproc://bus-test-many", NULL, 0);
    void *dealer = dealer_connected(&s, "inproc://bus-test-many");
    const void *out[6] = {"a", "b", "c", "d", "e", "f"};
    size_t outlen[6] = {1, 1, 1, 1, 1, 1};
    send_when_connected(dealer, 6, out, outlen);
    bus_msg m;
    assert_int_equal(1, recv_within(router, &m, 1000));
    assert_int_equal(7, m.nframes); /* identity + 6 */
    frame_is(&m, 1, "a", 1);
    frame_is(&m, BUS_MAX_FRAMES - 1, "c", 1);
    size_t len = 99;
    assert_null(bus_frame(&m, BUS_MAX_FRAMES, &len));
    assert_int_equal(0, len);
    assert_null(bus_frame(&m, 6, &len));
    bus_msg_close(&m);
    /* The next message starts cleanly after the dropped frames. */
    send_when_connected(dealer, 1, out, outlen);
    assert_int_equal(1, recv_within(router, &m, 1000));
    assert_int_equal(2, m.nframes);
    frame_is(&m, 1, "a", 1);
    bus_msg_close(&m);
    sock_close(dealer);
    sock_close(router);
}

static void test_send_fails_without_a_peer(void **state) {
    (void)state;
    settings s = bus_settings();
    /* ZMQ_IMMEDIATE: a DEALER with no completed connection refuses instead of queueing. */
    void *dealer = track(bus_socket(ZMQ_DEALER, &s));
    assert_non_null(dealer);
    const void *out[2] = {NULL, "x"};
    size_t outlen[2] = {0, 1};
    unit_err_clear();
    assert_int_equal(-1, bus_send(dealer, 2, out, outlen));
    assert_err_contains("zmq_send: ");
    assert_err_contains(zmq_strerror(EAGAIN));
    /* ZMQ_ROUTER_MANDATORY: an unknown identity is an error, not a silent drop. */
    void *router = router_bound(&s, "inproc://bus-test-mandatory", NULL, 0);
    const void *back[3] = {"nobody", NULL, "x"};
    size_t backlen[3] = {6, 0, 1};
    unit_err_clear();
    assert_int_equal(-1, bus_send(router, 3, back, backlen));
    assert_err_contains("zmq_send: ");
    assert_err_contains(zmq_strerror(EHOSTUNREACH));
    sock_close(dealer);
    sock_close(router);
}

static void test_oversized_message_dropped_by_socket_limit(void **state) {
    (void)state;
    settings s = bus_settings();
    s.socket_max_bytes = 1024;
    char endpoint[64];
    void *router = router_bound(&s, "tcp://127.0.0.1:0", endpoint, sizeof(endpoint));
    void *dealer = dealer_connected(&s, endpoint);
    static uint8_t big[4096];
    const void *out[2] = {NULL, big};
    size_t outlen[2] = {0, sizeof(big)};
    send_when_connected(dealer, 2, out, outlen);
    bus_msg m;
    assert_int_equal(0, recv_within(router, &m, 300));
    sock_close(dealer);
    sock_close(router);
}

/* A ROUTER served by a second thread: answers requests with a Pong carrying the request's message id. */
typedef struct server {
    void *sock;          /* owned by the thread while it runs */
    int drop_first;      /* requests to ignore before answering */
    int stale_first;     /* send a reply with another message id before the real one */
    int requests;        /* requests received */
    int replies;         /* replies sent, stale ones included */
    char error[256];     /* what went wrong in the thread, if anything */
    zap *zap;            /* CURVE servers: the ZAP handler, served by the thread too */
    volatile int stop;   /* CURVE servers: the client is done, the thread may return */
    char user[80];       /* the User-Id of the last request */
} server;

static int server_reply(server *sv, const uint8_t *identity, size_t idlen, const char *message_id) {
    Sav__Pong pong = SAV__PONG__INIT;
    pong.service = "unit";
    pong.version = "0";
    pong.endpoint = "test";
    pong.redis_ok = 1;
    envelope_buf reply = {0};
    if (envelope_pack(SAV__MESSAGE_TYPE__PONG, message_id, NULL, "unit", 0, &pong.base, &reply) != 0) return -1;
    const void *frames[3] = {identity, NULL, reply.data};
    size_t lens[3] = {idlen, 0, reply.len};
    int rc = bus_send(sv->sock, 3, frames, lens);
    envelope_buf_free(&reply);
    if (rc == 0) sv->replies++;
    return rc;
}

static void *server_main(void *arg) {
    server *sv = arg;
    int64_t deadline = clock_mono_ms() + 5000;
    while (clock_mono_ms() < deadline) {
        bus_msg m;
        if (recv_within(sv->sock, &m, 50) != 1) continue;
        size_t idlen, len;
        const uint8_t *id = bus_frame(&m, 0, &idlen);
        const uint8_t *data = bus_frame(&m, 2, &len);
        Sav__Envelope *env = m.nframes == 3 && data ? envelope_unpack(data, len, 65536) : NULL;
        if (!env) {
            snprintf(sv->error, sizeof(sv->error), "bad request (%d frames): %s", m.nframes, err_get());
            bus_msg_close(&m);
            return NULL;
        }
        sv->requests++;
        int done = 0;
        if (sv->requests > sv->drop_first) {
            if ((sv->stale_first && server_reply(sv, id, idlen, "stale-reply-id") != 0) ||
                server_reply(sv, id, idlen, env->message_id) != 0)
                snprintf(sv->error, sizeof(sv->error), "reply failed: %s", err_get());
            done = 1;
        }
        envelope_free(env);
        bus_msg_close(&m);
        if (done) return NULL;
    }
    snprintf(sv->error, sizeof(sv->error), "no request to answer within 5 s");
    return NULL;
}

/* Packs a Ping request with the given id. */
static void ping_request(const char *id, envelope_buf *out) {
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "unit";
    assert_int_equal(0, envelope_pack(SAV__MESSAGE_TYPE__PING, id, NULL, "savctl", 0, &ping.base, out));
}

/* Runs one bus_request against a served ROUTER and checks the reply; returns the elapsed milliseconds. */
static int64_t request_served(server *sv, int timeout_ms, int attempts) {
    settings s = bus_settings();
    char endpoint[64];
    sv->sock = router_bound(&s, "tcp://127.0.0.1:0", endpoint, sizeof(endpoint));
    assert_int_equal(0, strncmp(endpoint, "tcp://127.0.0.1:", 16));
    pthread_t t;
    assert_int_equal(0, pthread_create(&t, NULL, server_main, sv));
    char id[ENVELOPE_ID_LEN];
    envelope_new_id(id);
    envelope_buf req = {0};
    ping_request(id, &req);
    int64_t start = clock_mono_ms();
    unit_err_clear();
    bus_peer peer = {endpoint, NULL, NULL};
    Sav__Envelope *reply;
    enum bus_result r = bus_request(&s, &peer, &req, id, timeout_ms, attempts, &reply);
    int64_t elapsed = clock_mono_ms() - start;
    char why[512];
    snprintf(why, sizeof(why), "%s", err_get());
    pthread_join(t, NULL);
    sock_close(sv->sock);
    envelope_buf_free(&req);
    if (sv->error[0]) {
        envelope_free(reply);
        fail_msg("server thread: %s", sv->error);
    }
    if (r != BUS_REPLIED || !reply) fail_msg("bus_request: %s", why);
    assert_string_equal(id, reply->message_id);
    assert_int_equal(SAV__MESSAGE_TYPE__PONG, reply->type);
    Sav__Pong *pong = (Sav__Pong *)envelope_body(reply, &sav__pong__descriptor);
    assert_non_null(pong);
    assert_string_equal("unit", pong->service);
    assert_true(pong->redis_ok);
    protobuf_c_message_free_unpacked(&pong->base, NULL);
    envelope_free(reply);
    return elapsed;
}

static void test_request_gets_reply_with_same_message_id(void **state) {
    (void)state;
    server sv = {0};
    int64_t elapsed = request_served(&sv, 2000, 1);
    assert_int_equal(1, sv.requests);
    assert_int_equal(1, sv.replies);
    assert_in_range(elapsed, 0, 1999);
}

static void test_request_skips_stale_reply(void **state) {
    (void)state;
    server sv = {0};
    sv.stale_first = 1;
    request_served(&sv, 2000, 1);
    assert_int_equal(1, sv.requests);
    assert_int_equal(2, sv.replies);
}

static void test_request_retries_after_timeout(void **state) {
    (void)state;
    server sv = {0};
    sv.drop_first = 1;
    int64_t elapsed = request_served(&sv, 300, 3);
    assert_int_equal(2, sv.requests);
    assert_int_equal(1, sv.replies);
    assert_in_range(elapsed, 300, 5000); /* waited out the first attempt */
}

static void test_request_to_silent_endpoint_returns_null(void **state) {
    (void)state;
    settings s = bus_settings();
    /* Bind to get a free port, then close: nobody listens there any more. */
    char endpoint[64];
    void *router = router_bound(&s, "tcp://127.0.0.1:0", endpoint, sizeof(endpoint));
    sock_close(router);
    char id[ENVELOPE_ID_LEN];
    envelope_new_id(id);
    envelope_buf req = {0};
    ping_request(id, &req);
    int64_t start = clock_mono_ms();
    unit_err_clear();
    bus_peer peer = {endpoint, NULL, NULL};
    Sav__Envelope *reply;
    assert_int_equal(BUS_NO_ANSWER, bus_request(&s, &peer, &req, id, 150, 2, &reply));
    int64_t elapsed = clock_mono_ms() - start;
    envelope_buf_free(&req);
    if (reply) {
        envelope_free(reply);
        fail_msg("got a reply from %s", endpoint);
    }
    char expected[160];
    snprintf(expected, sizeof(expected), "no answer from %s after 2 attempt(s) of 150 ms", endpoint);
    assert_err_equal(expected);
    assert_in_range(elapsed, 300, 5000); /* both attempts waited their 150 ms */
}

static void test_request_to_invalid_endpoint_returns_null(void **state) {
    (void)state;
    settings s = bus_settings();
    envelope_buf req = {0};
    ping_request("id-1", &req);
    unit_err_clear();
    bus_peer peer = {"nope://nowhere", NULL, NULL};
    Sav__Envelope *reply;
    assert_int_equal(BUS_NO_ANSWER, bus_request(&s, &peer, &req, "id-1", 100, 3, &reply));
    assert_null(reply);
    assert_err_contains("cannot connect to nope://nowhere");
    envelope_buf_free(&req);
}

/* Serves a CURVE ROUTER and its ZAP handler until the client is done: answers every request, keeping its User-Id. */
static void *curve_server_main(void *arg) {
    server *sv = arg;
    while (!sv->stop) {
        zmq_pollitem_t items[2] = {{sv->sock, 0, ZMQ_POLLIN, 0}, {zap_socket(sv->zap), 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, 2, 20);
        zap_on_readable(sv->zap);
        bus_msg m;
        while (bus_recv(sv->sock, &m) == 1) {
            size_t idlen, len;
            const uint8_t *id = bus_frame(&m, 0, &idlen);
            const uint8_t *data = bus_frame(&m, 2, &len);
            Sav__Envelope *env = data ? envelope_unpack(data, len, 65536) : NULL;
            const char *user = bus_msg_user_id(&m);
            snprintf(sv->user, sizeof(sv->user), "%s", user ? user : "(none)");
            sv->requests++;
            if (env && server_reply(sv, id, idlen, env->message_id) != 0)
                snprintf(sv->error, sizeof(sv->error), "reply failed: %s", err_get());
            envelope_free(env);
            bus_msg_close(&m);
        }
    }
    return NULL;
}

/* A CURVE request from a client with key pair `client` (NULL: plain) to a server with key pair `srv` that admits
 * only the identity "alice" with key pair `alice`; the client names server_key as the server's key. */
static enum bus_result curve_request(server *sv, const keys_pair *srv, const keys_pair *alice, const keys_pair *client,
                                     const char *server_key, Sav__Envelope **reply) {
    settings s = bus_settings();
    auth_table *t = auth_new("/nonexistent");
    assert_non_null(t);
    assert_int_equal(0, auth_add_service(t, "alice", alice->public_key));
    sv->zap = zap_new(bus_context(), t);
    if (!sv->zap) fail_msg("zap_new: %s", err_get());
    sv->sock = track(bus_socket(ZMQ_ROUTER, &s));
    assert_int_equal(0, bus_bind(sv->sock, "tcp://127.0.0.1:0", srv));
    char endpoint[64];
    size_t len = sizeof(endpoint);
    assert_int_equal(0, zmq_getsockopt(sv->sock, ZMQ_LAST_ENDPOINT, endpoint, &len));
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, curve_server_main, sv));
    char id[ENVELOPE_ID_LEN];
    envelope_new_id(id);
    envelope_buf req = {0};
    ping_request(id, &req);
    bus_peer peer = {endpoint, client ? server_key : NULL, client};
    unit_err_clear();
    enum bus_result r = bus_request(&s, &peer, &req, id, 500, 1, reply);
    char why[512];
    snprintf(why, sizeof(why), "%s", err_get());
    sv->stop = 1;
    pthread_join(th, NULL);
    sock_close(sv->sock);
    zap_free(sv->zap);
    auth_free(t);
    envelope_buf_free(&req);
    if (sv->error[0]) fail_msg("server thread: %s", sv->error);
    err_set("%s", why);
    return r;
}

static void make_pair(keys_pair *p) {
    assert_int_equal(0, zmq_curve_keypair(p->public_key, p->secret_key));
}

static void test_curve_admitted_key_carries_its_identity(void **state) {
    (void)state;
    keys_pair srv, alice;
    make_pair(&srv), make_pair(&alice);
    server sv = {0};
    Sav__Envelope *reply;
    assert_int_equal(BUS_REPLIED, curve_request(&sv, &srv, &alice, &alice, srv.public_key, &reply));
    assert_non_null(reply);
    assert_int_equal(SAV__MESSAGE_TYPE__PONG, reply->type);
    envelope_free(reply);
    assert_int_equal(1, sv.requests);
    assert_string_equal("alice", sv.user);
}

static void test_curve_unknown_key_refused(void **state) {
    (void)state;
    keys_pair srv, alice, mallory;
    make_pair(&srv), make_pair(&alice), make_pair(&mallory);
    server sv = {0};
    Sav__Envelope *reply;
    assert_int_equal(BUS_REFUSED, curve_request(&sv, &srv, &alice, &mallory, srv.public_key, &reply));
    assert_null(reply);
    assert_err_contains("refused this client's key (ZAP status 400)");
    assert_int_equal(0, sv.requests);
}

static void test_curve_plain_client_gets_no_answer(void **state) {
    (void)state;
    keys_pair srv, alice;
    make_pair(&srv), make_pair(&alice);
    server sv = {0};
    Sav__Envelope *reply;
    assert_int_equal(BUS_NO_ANSWER, curve_request(&sv, &srv, &alice, NULL, NULL, &reply));
    assert_null(reply);
    assert_err_contains("CURVE on one side only");
    assert_int_equal(0, sv.requests);
}

static void test_curve_wrong_server_key_gets_no_answer(void **state) {
    (void)state;
    keys_pair srv, alice, other;
    make_pair(&srv), make_pair(&alice), make_pair(&other);
    server sv = {0};
    Sav__Envelope *reply;
    assert_int_equal(BUS_NO_ANSWER, curve_request(&sv, &srv, &alice, &alice, other.public_key, &reply));
    assert_null(reply);
    assert_err_contains("hung up during the handshake (a wrong server public key");
    assert_int_equal(0, sv.requests);
}

#define BUS_TEST(f) cmocka_unit_test_teardown(f, bus_test_teardown)

static int bus_group_setup(void **state) {
    (void)state;
    return bus_context() ? 0 : -1;
}

static int bus_group_teardown(void **state) {
    (void)state;
    bus_shutdown();
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        BUS_TEST(test_socket_options_applied),
        BUS_TEST(test_recv_returns_zero_when_nothing_waits),
        BUS_TEST(test_send_recv_three_frame_message),
        BUS_TEST(test_dealer_three_frames_arrive_in_order),
        BUS_TEST(test_recv_counts_frames_beyond_the_kept_ones),
        BUS_TEST(test_send_fails_without_a_peer),
        BUS_TEST(test_oversized_message_dropped_by_socket_limit),
        BUS_TEST(test_request_gets_reply_with_same_message_id),
        BUS_TEST(test_request_skips_stale_reply),
        BUS_TEST(test_request_retries_after_timeout),
        BUS_TEST(test_request_to_silent_endpoint_returns_null),
        BUS_TEST(test_request_to_invalid_endpoint_returns_null),
        BUS_TEST(test_curve_admitted_key_carries_its_identity),
        BUS_TEST(test_curve_unknown_key_refused),
        BUS_TEST(test_curve_plain_client_gets_no_answer),
        BUS_TEST(test_curve_wrong_server_key_gets_no_answer),
    };
    return cmocka_run_group_tests(tests, bus_group_setup, bus_group_teardown);
}
