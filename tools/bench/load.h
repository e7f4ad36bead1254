/* load: many requests in flight to one service over one DEALER socket, as fast as the window allows or at a
 * fixed rate, each reply matched to its request by message id and timed (monotonic, microseconds). */
#ifndef SAV_BENCH_LOAD_H
#define SAV_BENCH_LOAD_H

#include <stdint.h>

#include "envelope.h"
#include "settings.h"

typedef struct bench_conn bench_conn;

/* Called for each reply (the envelope is freed after the call), with the caller's tag and the round trip. */
typedef void (*bench_reply_fn)(void *ctx, long tag, const Sav__Envelope *reply, int64_t latency_us);

/* Connects to the service (as client.identity when CURVE is on) with at most window requests in flight; NULL with
 * err. Close with bench_conn_close. */
bench_conn *bench_conn_open(const settings *s, enum service_id service, int window, bench_reply_fn fn, void *ctx);

/* Closes the socket and frees the connection (NULL is fine). */
void bench_conn_close(bench_conn *c);

/* Sends one request (message_id must be unique among those in flight), waiting first while the window is full
 * (replies that arrive meanwhile go to the callback). 0, or -1 with err. */
int bench_send(bench_conn *c, const envelope_buf *frame, const char *message_id, long tag);

/* Takes the replies that are there, waiting at most wait_ms for the first. Returns how many came, -1 on error. */
int bench_poll(bench_conn *c, int wait_ms);

#define BENCH_MAX_CONNS 8

/* The same over n connections (at most BENCH_MAX_CONNS): waits at most wait_ms for a reply on any of them. */
int bench_poll_many(bench_conn *const *conns, int n, int wait_ms);

/* Waits until every request has its reply or no reply came for timeout_ms; returns how many never came. */
long bench_drain(bench_conn *c, int timeout_ms);

/* Returns the number of requests in flight. */
int bench_in_flight(const bench_conn *c);

/* Returns a monotonic time in microseconds. */
int64_t bench_now_us(void);

#endif
