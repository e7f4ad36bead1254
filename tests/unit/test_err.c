/* Unit tests for common/err.c: the thread's last error message, also when a new one quotes it. */
#include "unit.h"

#include <string.h>

#include "err.h"

static void test_message_quoting_the_previous_one(void **state) {
    (void)state;
    err_set("redis at %s:%d is unreachable", "127.0.0.1", 6390);
    err_set("SMS %s not recorded: %s", "sent", err_get());
    assert_string_equal("SMS sent not recorded: redis at 127.0.0.1:6390 is unreachable", err_get());
    err_set("%s", err_get());
    assert_string_equal("SMS sent not recorded: redis at 127.0.0.1:6390 is unreachable", err_get());
}

static void test_truncated_at_512_bytes(void **state) {
    (void)state;
    char big[700];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    err_set("%s", big);
    assert_int_equal(511, strlen(err_get()));
    err_set("again: %s", err_get());
    assert_int_equal(511, strlen(err_get()));
    assert_memory_equal("again: xxx", err_get(), 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_quoting_the_previous_one),
        cmocka_unit_test(test_truncated_at_512_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
