/* Unit tests for common/httpd.c: listen address parsing, and a real listener on loopback driven by libcurl
 * (routes, query arguments, growing answers, refused methods and paths). */
#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"

static void test_parse_listen(void **state) {
    (void)state;
    char host[64];
    int port = 0;
    assert_int_equal(0, httpd_parse_listen("x", "127.0.0.1:5564", host, sizeof(host), &port));
    assert_string_equal("127.0.0.1", host);
    assert_int_equal(5564, port);
    assert_int_equal(0, httpd_parse_listen("x", "[::1]:80", host, sizeof(host), &port));
    assert_string_equal("::1", host);
    assert_int_equal(80, port);
    assert_int_equal(0, httpd_parse_listen("x", "localhost:65535", host, sizeof(host), &port));
    const char *bad[] = {"127.0.0.1", ":80", "host:", "host:0", "host:65536", "host:80x", "[::1:80", "[::1]80", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (httpd_parse_listen("the listener", bad[i], host, sizeof(host), &port) != -1)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_err_contains("the listener must be host:port");
    }
    char tiny[4];
    assert_int_equal(-1, httpd_parse_listen("x", "localhost:80", tiny, sizeof(tiny), &port));
}

/* A port nobody listens on right now. */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&a, sizeof(a)));
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&a, &len));
    close(fd);
    return ntohs(a.sin_port);
}

static int calls;

static int route_echo(void *ctx, const httpd_request *req, httpd_reply *reply) {
    calls += *(int *)ctx;
    const char *x = httpd_arg(req, "x");
    if (!x) {
        httpd_printf(reply, "no x\n");
        return 400;
    }
    httpd_printf(reply, "x=%s", x);
    return 202;
}

static int route_big(void *ctx, const httpd_request *req, httpd_reply *reply) {
    (void)ctx, (void)req;
    for (int i = 0; i < 10000; i++) httpd_printf(reply, "line %05d\n", i);
    return 200;
}

static int one = 1;
static const httpd_route routes[] = {{"/echo", route_echo, &one, NULL}, {"/big", route_big, NULL, "text/csv"}};

typedef struct answer {
    char body[200000];
    size_t len;
} answer;

static size_t collect(char *data, size_t size, size_t n, void *arg) {
    answer *a = arg;
    size_t take = size * n < sizeof(a->body) - 1 - a->len ? size * n : sizeof(a->body) - 1 - a->len;
    memcpy(a->body + a->len, data, take);
    a->len += take;
    a->body[a->len] = '\0';
    return size * n;
}

/* Sends method to url; returns the HTTP status (0 when nobody answered) and the body in a. */
static long fetch(const char *method, const char *url, answer *a) {
    CURL *c = curl_easy_init();
    a->len = 0;
    a->body[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    long code = 0;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

static void test_listener_on_loopback(void **state) {
    (void)state;
    char listen[32], url[128];
    int port = free_port();
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    httpd *h = httpd_start(listen, routes, 2);
    assert_non_null(h);
    static answer a;
    calls = 0;
    snprintf(url, sizeof(url), "http://%s/echo?x=caf%%C3%%A9%%20cr%%C3%%A8me&y=1", listen);
    assert_int_equal(202, fetch("GET", url, &a));
    assert_string_equal("x=café crème", a.body);
    snprintf(url, sizeof(url), "http://%s/echo", listen);
    assert_int_equal(400, fetch("GET", url, &a));
    assert_int_equal(2, calls);
    snprintf(url, sizeof(url), "http://%s/big", listen);
    assert_int_equal(200, fetch("GET", url, &a));
    assert_int_equal(10000 * 11, a.len);
    assert_non_null(strstr(a.body, "line 09999\n"));
    snprintf(url, sizeof(url), "http://%s/echo?x=1", listen);
    assert_int_equal(405, fetch("POST", url, &a));
    assert_int_equal(2, calls); /* a refused method never reaches the handler */
    snprintf(url, sizeof(url), "http://%s/echo/more?x=1", listen);
    assert_int_equal(404, fetch("GET", url, &a));
    /* A second listener on the same address is refused with a reason, the first one unharmed. */
    unit_err_clear();
    assert_null(httpd_start(listen, routes, 2));
    assert_err_contains("cannot listen for HTTP on");
    snprintf(url, sizeof(url), "http://%s/echo?x=still", listen);
    assert_int_equal(202, fetch("GET", url, &a));
    httpd_stop(h);
    assert_int_equal(0, fetch("GET", url, &a));
    httpd_stop(NULL);
    unit_err_clear();
    assert_null(httpd_start("no-such-host.invalid:80", routes, 2));
    assert_err_contains("no-such-host.invalid:80");
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_listener_on_loopback),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
