/* httpd: a small HTTP listener (libmicrohttpd) for what other systems call back: an SMS gateway's delivery
 * reports and customers' replies, later health and metrics. GET only; each route is an exact path; the
 * handlers run one at a time in the listener's own thread, so a handler may use a Redis connection of its own
 * without locking. Bounded: at most HTTPD_MAX_CONNECTIONS clients, each timed out after 10 s of silence. */
#ifndef SAV_HTTPD_H
#define SAV_HTTPD_H

#include <stddef.h>

#define HTTPD_MAX_CONNECTIONS 64

typedef struct httpd httpd;
typedef struct httpd_request httpd_request;

/* The answer a handler builds: its text grows as needed. */
typedef struct httpd_reply {
    char *body; /* malloc'd, NUL-terminated; owned by the listener */
    size_t len, cap;
    int oom;    /* an append did not fit in memory: a 500 is sent instead */
} httpd_reply;

/* Answers one request: appends the text of the answer to reply and returns the HTTP status. */
typedef int (*httpd_handler)(void *ctx, const httpd_request *req, httpd_reply *reply);

typedef struct httpd_route {
    const char *path; /* "/sms/dlr" */
    httpd_handler handler;
    void *ctx;        /* passed to the handler */
    const char *content_type; /* NULL: text/plain; charset=utf-8 */
} httpd_route;

/* Starts listening on "host:port" (the routes table must outlive the listener); NULL with err. */
httpd *httpd_start(const char *listen, const httpd_route *routes, size_t nroutes);

/* Stops listening, waiting for the handler in progress; NULL is fine. */
void httpd_stop(httpd *h);

/* Returns the URL-decoded value of query argument name (owned by the request), or NULL when absent. */
const char *httpd_arg(const httpd_request *req, const char *name);

/* Appends formatted text to the answer. */
void httpd_printf(httpd_reply *reply, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Splits "host:port" (IPv6 as "[addr]:port") into host and port; 0 or -1 with err naming what. */
int httpd_parse_listen(const char *what, const char *listen, char *host, size_t hostlen, int *port);

#endif
