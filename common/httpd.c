#include "httpd.h"
#include "err.h"
#include "log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct httpd {
    struct MHD_Daemon *daemon;
    const httpd_route *routes;
    size_t nroutes;
};

struct httpd_request {
    struct MHD_Connection *conn;
};

const char *httpd_arg(const httpd_request *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void httpd_printf(httpd_reply *reply, const char *fmt, ...) {
    va_list ap;
    for (int pass = 0; pass < 2 && !reply->oom; pass++) {
        size_t room = reply->cap - reply->len;
        va_start(ap, fmt);
        int n = vsnprintf(reply->body + reply->len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            reply->oom = 1;
        } else if ((size_t)n < room) {
            reply->len += (size_t)n;
            return;
        } else {
            size_t cap = reply->cap * 2 > reply->len + (size_t)n + 1 ? reply->cap * 2 : reply->len + (size_t)n + 1;
            char *grown = realloc(reply->body, cap);
            if (!grown) reply->oom = 1;
            else reply->body = grown, reply->cap = cap;
        }
    }
}

static enum MHD_Result httpd_send(struct MHD_Connection *conn, int status, const char *text, size_t len,
                                  const char *type) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type ? type : "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result httpd_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                    const char *version, const char *upload, size_t *upload_len, void **state) {
    (void)version, (void)upload, (void)state;
    httpd *h = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 || *upload_len != 0) {
        static const char only_get[] = "only GET is served here\n";
        return httpd_send(conn, MHD_HTTP_METHOD_NOT_ALLOWED, only_get, sizeof(only_get) - 1, NULL);
    }
    for (size_t i = 0; i < h->nroutes; i++) {
        if (strcmp(url, h->routes[i].path) != 0) continue;
        httpd_reply reply = {malloc(512), 0, 512, 0};
        if (!reply.body) return MHD_NO;
        reply.body[0] = '\0';
        httpd_request req = {conn};
        int status = h->routes[i].handler(h->routes[i].ctx, &req, &reply);
        enum MHD_Result rc = reply.oom ? httpd_send(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", 14, NULL)
                                       : httpd_send(conn, status, reply.body, reply.len, h->routes[i].content_type);
        free(reply.body);
        return rc;
    }
    static const char unknown[] = "no such path\n";
    return httpd_send(conn, MHD_HTTP_NOT_FOUND, unknown, sizeof(unknown) - 1, NULL);
}

static void httpd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char text[512];
    vsnprintf(text, sizeof(text), fmt, ap);
    size_t n = strlen(text);
    while (n > 0 && text[n - 1] == '\n') text[--n] = '\0';
    log_warn(NULL, NULL, "HTTP listener: %s", text);
}

int httpd_parse_listen(const char *what, const char *listen, char *host, size_t hostlen, int *port) {
    const char *colon = strrchr(listen, ':');
    const char *h = listen, *h_end = colon;
    if (listen[0] == '[') {
        h = listen + 1;
        h_end = strchr(listen, ']');
        if (!h_end || h_end[1] != ':') h_end = NULL;
    }
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!h_end || h_end == h || (size_t)(h_end - h) >= hostlen || !end || *end || end == colon + 1 || p < 1 ||
        p > 65535) {
        err_set("%s must be host:port (port 1 to 65535), got \"%s\"", what, listen);
        return -1;
    }
    snprintf(host, hostlen, "%.*s", (int)(h_end - h), h);
    *port = (int)p;
    return 0;
}

httpd *httpd_start(const char *listen, const httpd_route *routes, size_t nroutes) {
    char host[256], service[8];
    int port;
    if (httpd_parse_listen("the HTTP listener", listen, host, sizeof(host), &port) != 0) return NULL;
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        err_set("HTTP listener %s: %s", listen, gai_strerror(rc));
        return NULL;
    }
    httpd *h = calloc(1, sizeof(*h));
    if (!h) {
        freeaddrinfo(res);
        err_set("out of memory starting the HTTP listener");
        return NULL;
    }
    h->routes = routes, h->nroutes = nroutes;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
                     (res->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    h->daemon = MHD_start_daemon(flags, 0, NULL, NULL, httpd_access, h, MHD_OPTION_EXTERNAL_LOGGER, httpd_log, NULL,
                                 MHD_OPTION_SOCK_ADDR, res->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                                 (unsigned)HTTPD_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    freeaddrinfo(res);
    if (!h->daemon) {
        err_set("cannot listen for HTTP on %s (address in use, or not an address of this host)", listen);
        free(h);
        return NULL;
    }
    return h;
}

void httpd_stop(httpd *h) {
    if (!h) return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
