/* limits: what raw ZeroMQ does on this machine, so that every SAV figure can be read as a share of the limit it
 * is bounded by: one-way throughput of fixed-size messages (PUSH to PULL, one thread each) and round trips
 * (DEALER to ROUTER echo), over ipc:// and tcp:// loopback. */
#ifndef SAV_BENCH_LIMITS_H
#define SAV_BENCH_LIMITS_H

#include <stddef.h>

typedef struct bench_zmq_figures {
    double msgs_per_s;           /* one-way throughput */
    double rtt_p50_us, rtt_p99_us; /* round trips, one at a time */
} bench_zmq_figures;

/* Measures transport ("ipc" or "tcp") with count messages of size bytes and rtts round trips; 0 or -1 with err. */
int bench_zmq_limits(const char *transport, size_t size, long count, long rtts, bench_zmq_figures *out);

#endif
