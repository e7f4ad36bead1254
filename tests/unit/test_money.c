/* Unit tests of common/money: rounding of VAT and labour, and customer formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "money.h"

static void vat_rounds_half_away_from_zero(void **state) {
    (void)state;
    assert_int_equal(money_apply_rate(9465, 2000), 1893);
    assert_int_equal(money_apply_rate(1, 2000), 0);     /* 0.2 cent */
    assert_int_equal(money_apply_rate(3, 2000), 1);     /* 0.6 cent */
    assert_int_equal(money_apply_rate(25, 2000), 5);
    assert_int_equal(money_apply_rate(1025, 550), 56);  /* 56.375 -> 56 */
    assert_int_equal(money_apply_rate(1010, 550), 56);  /* 55.55 -> 56 */
    assert_int_equal(money_apply_rate(-1010, 550), -56);
    assert_int_equal(money_apply_rate(0, 2000), 0);
}

static void labour_rounds_to_the_cent(void **state) {
    (void)state;
    assert_int_equal(money_labour(45, 6500), 4875);
    assert_int_equal(money_labour(1, 6500), 108);  /* 108.33 */
    assert_int_equal(money_labour(1, 6530), 109);  /* 108.83 */
    assert_int_equal(money_labour(0, 6500), 0);
}

static void formats_for_french_and_english(void **state) {
    (void)state;
    char buf[64];
    money_format(11358, "fr", buf, sizeof(buf));
    assert_string_equal(buf, "113,58\u00a0€");
    money_format(123456789, "fr", buf, sizeof(buf));
    assert_string_equal(buf, "1\u202f234\u202f567,89\u00a0€");
    money_format(123456789, "en", buf, sizeof(buf));
    assert_string_equal(buf, "€1,234,567.89");
    money_format(-5, "en", buf, sizeof(buf));
    assert_string_equal(buf, "-€0.05");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vat_rounds_half_away_from_zero),
        cmocka_unit_test(labour_rounds_to_the_cent),
        cmocka_unit_test(formats_for_french_and_english),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
