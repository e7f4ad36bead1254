/* Unit tests of common/pricing: line amounts, VAT per rate with its rounding rule, totals, the invoice a ready ticket
 * gets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "pricing.h"

static pricing_line line(const char *kind, int64_t qty, int64_t unit, int vat) {
    pricing_line l;
    memset(&l, 0, sizeof(l));
    snprintf(l.kind, sizeof(l.kind), "%s", kind);
    snprintf(l.label, sizeof(l.label), "%s", kind);
    l.quantity = qty, l.unit_cents = unit, l.vat_bp = vat;
    return l;
}

static void a_typical_repair_quote(void **state) {
    (void)state;
    pricing_line l[] = {line("part", 1, 11900, 2000), line("labour", 60, 6500, 2000), line("travel", 1, 4500, 2000)};
    pricing_totals t;
    assert_int_equal(pricing_compute(l, 3, &t), 0);
    assert_int_equal(l[1].amount_cents, 6500);
    assert_int_equal(t.net_cents, 22900);
    assert_int_equal(t.nrates, 1);
    assert_int_equal(t.vat_cents, 4580);
    assert_int_equal(t.gross_cents, 27480);
}

static void vat_is_rounded_once_per_rate_not_per_line(void **state) {
    (void)state;
    /* Three lines of 0.03 EUR at 20 %: per line 0.006 -> 0.01 each (0.03), per rate 0.09 * 20 % = 0.018 -> 0.02. */
    pricing_line l[] = {line("part", 1, 3, 2000), line("part", 1, 3, 2000), line("part", 1, 3, 2000)};
    pricing_totals t;
    assert_int_equal(pricing_compute(l, 3, &t), 0);
    assert_int_equal(t.vat_cents, 2);
    assert_int_equal(t.gross_cents, 11);
}

static void half_cents_round_away_from_zero(void **state) {
    (void)state;
    pricing_line l[] = {line("part", 1, 1025, 550)}; /* 56.375 cents of VAT -> 56 */
    pricing_totals t;
    assert_int_equal(pricing_compute(l, 1, &t), 0);
    assert_int_equal(t.vat_cents, 56);
    pricing_line m[] = {line("part", 1, 1010, 550)}; /* 55.55 -> 56 */
    assert_int_equal(pricing_compute(m, 1, &t), 0);
    assert_int_equal(t.vat_cents, 56);
    pricing_line h[] = {line("part", 1, 25, 2000)}; /* exactly 5.0 */
    assert_int_equal(pricing_compute(h, 1, &t), 0);
    assert_int_equal(t.vat_cents, 5);
    pricing_line k[] = {line("part", 1, 1250, 1000)}; /* 125.0 */
    assert_int_equal(pricing_compute(k, 1, &t), 0);
    assert_int_equal(t.vat_cents, 125);
    pricing_line j[] = {line("part", 1, 15, 1000)}; /* 1.5 -> 2 */
    assert_int_equal(pricing_compute(j, 1, &t), 0);
    assert_int_equal(t.vat_cents, 2);
}

static void several_rates_are_kept_apart(void **state) {
    (void)state;
    pricing_line l[] = {line("part", 2, 1000, 2000), line("other", 1, 1000, 550), line("part", 1, 500, 2000)};
    pricing_totals t;
    assert_int_equal(pricing_compute(l, 3, &t), 0);
    assert_int_equal(t.nrates, 2);
    assert_int_equal(t.rates[0].vat_bp, 2000);
    assert_int_equal(t.rates[0].base_cents, 2500);
    assert_int_equal(t.rates[0].vat_cents, 500);
    assert_int_equal(t.rates[1].base_cents, 1000);
    assert_int_equal(t.rates[1].vat_cents, 55);
    assert_int_equal(t.gross_cents, 3500 + 555);
}

static void labour_minutes_are_priced_by_the_hour(void **state) {
    (void)state;
    pricing_line l[] = {line("labour", 45, 6500, 2000), line("labour", 1, 6530, 2000)};
    pricing_totals t;
    assert_int_equal(pricing_compute(l, 2, &t), 0);
    assert_int_equal(l[0].amount_cents, 4875);
    assert_int_equal(l[1].amount_cents, 109); /* 108.83 -> 109 */
}

static void bad_lines_are_refused(void **state) {
    (void)state;
    pricing_totals t;
    pricing_line neg[] = {line("part", -1, 100, 2000)};
    assert_int_equal(pricing_compute(neg, 1, &t), -1);
    assert_non_null(strstr(err_get(), "out of range"));
    pricing_line rates[] = {line("a", 1, 1, 100), line("b", 1, 1, 200), line("c", 1, 1, 300), line("d", 1, 1, 400),
                            line("e", 1, 1, 500)};
    assert_int_equal(pricing_compute(rates, 5, &t), -1);
    assert_non_null(strstr(err_get(), "VAT rates"));
    pricing_line huge[] = {line("part", 1000000, 100000000000LL, 2000)};
    assert_int_equal(pricing_compute(huge, 1, &t), -1);
    assert_int_equal(pricing_compute(NULL, 0, &t), 0);
    assert_int_equal(t.gross_cents, 0);
}

static void the_invoice_of_a_ready_ticket(void **state) {
    (void)state;
    assert_string_equal(pricing_invoice_kind(1, "accepted", "repaired", 0), "repair");
    assert_string_equal(pricing_invoice_kind(1, "accepted", "exchanged", 3900), "repair");
    /* Accepted, then found impossible: the work was not done, nothing is billed. */
    assert_null(pricing_invoice_kind(1, "accepted", "unrepaired", 3900));
    assert_string_equal(pricing_invoice_kind(1, "refused", "unrepaired", 3900), "diagnostic");
    assert_null(pricing_invoice_kind(1, "refused", "unrepaired", 0));
    assert_null(pricing_invoice_kind(0, "accepted", "repaired", 3900));
    assert_null(pricing_invoice_kind(1, "", "repaired", 3900));
    assert_null(pricing_invoice_kind(1, "pending", "", 3900));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_typical_repair_quote),
        cmocka_unit_test(vat_is_rounded_once_per_rate_not_per_line),
        cmocka_unit_test(half_cents_round_away_from_zero),
        cmocka_unit_test(several_rates_are_kept_apart),
        cmocka_unit_test(labour_minutes_are_priced_by_the_hour),
        cmocka_unit_test(bad_lines_are_refused),
        cmocka_unit_test(the_invoice_of_a_ready_ticket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
