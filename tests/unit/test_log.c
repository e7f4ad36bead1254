/* Unit tests for common/log.c: level names, and the masking of personal data before it reaches a log line. */
#include "unit.h"

#include <stdio.h>

#include "log.h"

static void test_level_names(void **state) {
    (void)state;
    assert_int_equal(LOG_DEBUG, log_level_parse("debug"));
    assert_int_equal(LOG_ERROR, log_level_parse("error"));
    assert_int_equal(-1, log_level_parse("ERROR"));
    assert_int_equal(-1, log_level_parse(""));
}

static void test_mask_hides_numbers_and_addresses(void **state) {
    (void)state;
    char out[LOG_MASK_LEN];
    assert_string_equal("+3********78", log_mask("+33612345678", out));
    assert_string_equal("06******78", log_mask("0612345678", out));
    assert_string_equal("j***@example.fr", log_mask("jeanne.martin@example.fr", out));
    assert_string_equal("***", log_mask("1234", out));
    assert_string_equal("***", log_mask("", out));
    /* Too long to mask within the buffer: nothing of it is shown. */
    char longest[200];
    memset(longest, '7', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_string_equal("***", log_mask(longest, out));
    memset(longest, 'a', 120);
    longest[120] = '@';
    snprintf(longest + 121, 20, "example.fr");
    assert_string_equal("a***@example.fr", log_mask(longest, out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_mask_hides_numbers_and_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
