/* workload: the tickets a benchmark opens, each with its customer and product: generated (deterministic, from
 * the sample catalog's models and fault codes) or read from a file of JSON lines, one ticket per line:
 *   {"customer": "Jeanne Martin", "phone": "06 12 34 56 78", "email": "jeanne@example.fr",
 *    "model": "WM-7000", "serial": "WM7-2291-0457", "purchased": "2025-06-14", "reported": "2026-11-30",
 *    "fault": "E21", "description": "ne chauffe plus"}
 * phone or email may be empty (not both: the customer could not be told); fault may be empty; reported defaults
 * to today. Lines with the same phone and e-mail are one customer. */
#ifndef SAV_BENCH_WORKLOAD_H
#define SAV_BENCH_WORKLOAD_H

#include <stddef.h>

typedef struct bench_ticket {
    long customer; /* index into the workload's customers */
    char model[32], serial[64], purchased[11], reported[11], fault[16], description[200];
} bench_ticket;

typedef struct bench_customer {
    char name[120], phone[32], email[120];
    char id[16]; /* C-NNNNNN once registered */
} bench_customer;

typedef struct bench_workload {
    bench_ticket *tickets;
    long ntickets;
    bench_customer *customers;
    long ncustomers;
} bench_workload;

/* Generates n tickets for n / per_customer customers (serials prefixed with run); 0 or -1 with err. */
int bench_workload_generate(bench_workload *w, long n, int per_customer, const char *run);

/* Reads a JSON-lines file; 0 or -1 with err naming the line. */
int bench_workload_read(bench_workload *w, const char *path);

/* Frees the workload's arrays. */
void bench_workload_free(bench_workload *w);

#endif
