/* Unit tests for common/metrics.c: the Prometheus text format of counters, gauges and histograms, one HELP and
 * TYPE per family, and exact counts under concurrent increments. */
#include "unit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"

static const char *render(void) {
    static httpd_reply r;
    free(r.body);
    r = (httpd_reply){malloc(64), 0, 64, 0};
    r.body[0] = '\0';
    metrics_render(&r);
    assert_false(r.oom);
    return r.body;
}

static void test_text_format(void **state) {
    (void)state;
    metrics_counter *a = metrics_counter_new("sav_test_total", "Things counted", "type", "a");
    metrics_counter *b = metrics_counter_new("sav_test_total", "Things counted", "type", "b");
    assert_ptr_equal(a, metrics_counter_new("sav_test_total", "Things counted", "type", "a"));
    metrics_add(a, 3), metrics_add(b, 1), metrics_add(NULL, 5);
    metrics_gauge *g = metrics_gauge_new("sav_test_depth", "A depth", NULL, NULL);
    metrics_set(g, 2.5);
    metrics_histogram *h = metrics_histogram_new("sav_test_seconds", "A latency", "type", "a");
    metrics_observe_us(h, 50), metrics_observe_us(h, 700), metrics_observe_us(h, 20000000);
    const char *t = render();
    assert_non_null(strstr(t, "# HELP sav_test_total Things counted\n# TYPE sav_test_total counter\n"
                              "sav_test_total{type=\"a\"} 3\nsav_test_total{type=\"b\"} 1\n"));
    assert_null(strstr(strstr(t, "sav_test_total{type=\"b\"}"), "# TYPE sav_test_total"));
    assert_non_null(strstr(t, "# TYPE sav_test_depth gauge\nsav_test_depth 2.5\n"));
    assert_non_null(strstr(t, "sav_test_seconds_bucket{type=\"a\",le=\"0.0001\"} 1\n"));
    assert_non_null(strstr(t, "sav_test_seconds_bucket{type=\"a\",le=\"0.00025\"} 1\n"));
    assert_non_null(strstr(t, "sav_test_seconds_bucket{type=\"a\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(t, "sav_test_seconds_bucket{type=\"a\",le=\"10\"} 2\n"));
    assert_non_null(strstr(t, "sav_test_seconds_bucket{type=\"a\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "sav_test_seconds_sum{type=\"a\"} 20.000750\n"));
    assert_non_null(strstr(t, "sav_test_seconds_count{type=\"a\"} 3\n"));
}

static void *bump(void *arg) {
    for (int i = 0; i < 100000; i++) metrics_add(arg, 1);
    return NULL;
}

static void test_concurrent_counts(void **state) {
    (void)state;
    metrics_counter *c = metrics_counter_new("sav_test_threads_total", "Counted by four threads", NULL, NULL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, bump, c);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_non_null(strstr(render(), "sav_test_threads_total 400000\n"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_concurrent_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
