/* metrics: a process's counters, gauges and latency histograms, in the Prometheus text format (version 0.0.4).
 * Each metric is registered once at start (name, help, one optional label) and then updated from any thread
 * without a lock (atomics); metrics_render, on the HTTP listener's thread, writes them all. Names follow
 * Prometheus conventions: sav_<what>_total for counters, _seconds for histograms. */
#ifndef SAV_METRICS_H
#define SAV_METRICS_H

#include <stdint.h>

#include "httpd.h"

typedef struct metrics_counter metrics_counter;
typedef struct metrics_gauge metrics_gauge;
typedef struct metrics_histogram metrics_histogram;

/* Registers a counter (label and value may be NULL); returns it, or NULL with err when the registry is full.
 * Registering the same name, label and value again returns the same counter. */
metrics_counter *metrics_counter_new(const char *name, const char *help, const char *label, const char *value);

/* Adds n to a counter (NULL is fine: nothing happens). */
void metrics_add(metrics_counter *c, uint64_t n);

/* Registers a gauge, as metrics_counter_new. */
metrics_gauge *metrics_gauge_new(const char *name, const char *help, const char *label, const char *value);

/* Sets a gauge (NULL is fine). */
void metrics_set(metrics_gauge *g, double v);

/* Registers a latency histogram with the default buckets (100 us to 10 s), as metrics_counter_new. */
metrics_histogram *metrics_histogram_new(const char *name, const char *help, const char *label, const char *value);

/* Records one observation, in microseconds (NULL is fine). */
void metrics_observe_us(metrics_histogram *h, int64_t us);

/* Appends every registered metric to reply in the text format. */
void metrics_render(httpd_reply *reply);

#endif
