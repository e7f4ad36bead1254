/* Unit tests of common/coverage: the first coverage estimate, one case per rule and per boundary date. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "coverage.h"

static coverage_input base_input(void) {
    coverage_input in = {
        .kind = "repair",
        .business = 0,
        .second_hand = 0,
        .delivered_on = "2024-03-10",
        .requested_on = "2025-01-15",
        .commercial_warranty_months = 36,
        .parts_cents = 4590,
        .labour_minutes = 45,
        .labour_rate_cents = 6500,
        .vat_basis_points = 2000,
        .lang = "fr",
    };
    return in;
}

static void legal_guarantee_day_before_day_of_day_after(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.commercial_warranty_months = 0;
    coverage_estimate out;
    in.requested_on = "2026-03-09";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "legal_conformity");
    assert_string_equal(out.legal_until, "2026-03-10");
    assert_false(out.customer_pays);
    in.requested_on = "2026-03-10";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "legal_conformity");
    in.requested_on = "2026-03-11";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "none");
    assert_true(out.customer_pays);
}

static void presumption_second_hand_is_twelve_months(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.second_hand = 1;
    coverage_estimate out;
    in.requested_on = "2025-03-10";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.burden_of_proof, "seller");
    in.requested_on = "2025-03-11";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "legal_conformity");
    assert_string_equal(out.burden_of_proof, "consumer");
    assert_non_null(strstr(out.reason, "L217-3"));
    assert_null(strstr(out.reason, "L217-7"));
}

static void presumption_new_goods_is_twenty_four_months(void **state) {
    (void)state;
    coverage_input in = base_input();
    coverage_estimate out;
    in.requested_on = "2026-03-10";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.burden_of_proof, "seller");
    assert_non_null(strstr(out.reason, "L217-7"));
}

static void commercial_warranty_after_legal(void **state) {
    (void)state;
    coverage_input in = base_input();
    coverage_estimate out;
    in.requested_on = "2027-03-10";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "commercial_warranty");
    assert_string_equal(out.commercial_until, "2027-03-10");
    assert_false(out.customer_pays);
    in.requested_on = "2027-03-11";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "none");
}

static void business_has_no_legal_guarantee(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.business = 1;
    in.commercial_warranty_months = 12;
    coverage_estimate out;
    in.requested_on = "2025-03-10";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "commercial_warranty");
    in.requested_on = "2025-03-11";
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "none");
    assert_string_equal(out.burden_of_proof, "");
    assert_non_null(strstr(out.reason, "professionnel"));
}

static void billable_estimate_in_cents_with_vat(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.delivered_on = "2015-01-01";
    in.lang = "en";
    coverage_estimate out;
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    /* 45.90 parts + 45 min at 65.00/h = 48.75 -> 94.65 net, VAT 18.93 -> 113.58 */
    assert_int_equal(out.estimate_cents, 11358);
    assert_non_null(strstr(out.reason, "€113.58"));
}

static void unknown_delivery_date_is_billable_with_reason(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.delivered_on = "";
    coverage_estimate out;
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "none");
    assert_non_null(strstr(out.reason, "livraison inconnue"));
}

static void service_visit_is_not_a_defect(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.kind = "installation";
    coverage_estimate out;
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.basis, "none");
    assert_true(out.customer_pays);
}

static void invalid_dates_are_refused(void **state) {
    (void)state;
    coverage_input in = base_input();
    coverage_estimate out;
    in.requested_on = "2025-02-30";
    assert_int_equal(coverage_estimate_compute(&in, &out), -1);
    in.requested_on = "2024-01-01";
    assert_int_equal(coverage_estimate_compute(&in, &out), -1);
}

static void leap_day_delivery_ends_on_february_28(void **state) {
    (void)state;
    coverage_input in = base_input();
    in.delivered_on = "2024-02-29";
    in.requested_on = "2026-02-28";
    in.commercial_warranty_months = 0;
    coverage_estimate out;
    assert_int_equal(coverage_estimate_compute(&in, &out), 0);
    assert_string_equal(out.legal_until, "2026-02-28");
    assert_string_equal(out.basis, "legal_conformity");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(legal_guarantee_day_before_day_of_day_after),
        cmocka_unit_test(presumption_second_hand_is_twelve_months),
        cmocka_unit_test(presumption_new_goods_is_twenty_four_months),
        cmocka_unit_test(commercial_warranty_after_legal),
        cmocka_unit_test(business_has_no_legal_guarantee),
        cmocka_unit_test(billable_estimate_in_cents_with_vat),
        cmocka_unit_test(unknown_delivery_date_is_billable_with_reason),
        cmocka_unit_test(service_visit_is_not_a_defect),
        cmocka_unit_test(invalid_dates_are_refused),
        cmocka_unit_test(leap_day_delivery_ends_on_february_28),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
