/* Unit tests of common/coverage: a table of cases, at least one per rule (C1-C4, C6-C9, contracts) and per
 * boundary date (the day before, the day of, the day after). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "coverage.h"
#include "err.h"

/* One case: changes to the base input, and what the decision must say ("" = not checked, "-" = empty). */
typedef struct coverage_case {
    const char *name;
    const char *requested_on;
    const char *cause;
    int business, second_hand, replacement, warranty_months;
    const char *delivered_on;
    int contract;    /* 0 none, 1 extended 2027-03-11..2029-03-10 parts,labour, 2 + accident, 3 maintenance with wear */
    int history;     /* 0 none, 1 one legal repair, 2 two legal repairs, 3 commercial 10-day immobilisation,
                        4 commercial 6-day immobilisation, 5 a legal ticket left unrepaired */
    const char *basis;
    int pays;
    const char *burden, *legal_until, *commercial_until, *rule, *reason_has;
} coverage_case;

static const coverage_contract contracts[][1] = {
    {{"extended_warranty", "2027-03-11", "2029-03-10", "parts,labour"}},
    {{"extended_warranty", "2027-03-11", "2029-03-10", "parts,labour,accident"}},
    {{"maintenance", "2024-03-10", "2030-03-10", "labour,travel,wear"}},
};

static const coverage_past histories[][2] = {
    {{"legal_conformity", "repaired", 3}, {"", "", 0}},
    {{"legal_conformity", "repaired", 3}, {"legal_conformity", "repaired", 2}},
    {{"commercial_warranty", "repaired", 10}, {"", "", 0}},
    {{"commercial_warranty", "repaired", 6}, {"", "", 0}},
    {{"legal_conformity", "unrepaired", 12}, {"", "", 0}},
};
static const int history_sizes[] = {0, 1, 2, 1, 1, 1};

#define W 36 /* months of commercial warranty unless a case says otherwise: until 2027-03-10 */
static const coverage_case cases[] = {
    /* C1: two years from delivery (2024-03-10 -> 2026-03-10), boundary days; with W=24 nothing after it */
    {"C1 day before", "2026-03-09", "manufacturing", 0, 0, 0, 24, NULL, 0, 0, "legal_conformity", 0, "seller", "2026-03-10", "2026-03-10", "C1", "L217-3"},
    {"C1 day of", "2026-03-10", "manufacturing", 0, 0, 0, 24, NULL, 0, 0, "legal_conformity", 0, "seller", "2026-03-10", "", "C1", ""},
    {"C1 day after", "2026-03-11", "manufacturing", 0, 0, 0, 24, NULL, 0, 0, "none", 1, "-", "2026-03-10", "", "none", "expirées"},
    {"C1 not for businesses", "2025-01-15", "manufacturing", 1, 0, 0, 0, NULL, 0, 0, "none", 1, "-", "-", "-", "C1", "professionnel"},
    /* C2: presumption 24 months new, 12 months second-hand */
    {"C2 second-hand day before", "2025-03-09", "manufacturing", 0, 1, 0, W, NULL, 0, 0, "legal_conformity", 0, "seller", "", "", "C1", "L217-7"},
    {"C2 second-hand day of", "2025-03-10", "manufacturing", 0, 1, 0, W, NULL, 0, 0, "legal_conformity", 0, "seller", "", "", "C1", ""},
    {"C2 second-hand day after", "2025-03-11", "manufacturing", 0, 1, 0, W, NULL, 0, 0, "legal_conformity", 0, "consumer", "2026-03-10", "", "C1", "il vous appartient"},
    {"C2 new goods last day", "2026-03-10", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "legal_conformity", 0, "seller", "", "", "C1", ""},
    /* C3: +6 months per earlier repair under the legal guarantee */
    {"C3 one repair day of", "2026-09-10", "manufacturing", 0, 0, 0, 0, NULL, 0, 1, "legal_conformity", 0, "consumer", "2026-09-10", "", "C1", ""},
    {"C3 one repair day after", "2026-09-11", "manufacturing", 0, 0, 0, 0, NULL, 0, 1, "none", 1, "-", "2026-09-10", "", "none", ""},
    {"C3 two repairs", "2027-03-10", "manufacturing", 0, 0, 0, 0, NULL, 0, 2, "legal_conformity", 0, "consumer", "2027-03-10", "", "C1", ""},
    {"C3 unrepaired does not extend", "2026-03-11", "manufacturing", 0, 0, 0, 0, NULL, 0, 5, "none", 1, "-", "2026-03-10", "", "none", ""},
    /* C4: a replacement after a repair request starts a new two years, presumption as new goods */
    {"C4 replacement day of", "2027-01-05", "manufacturing", 0, 1, 1, 0, "2025-01-05", 0, 0, "legal_conformity", 0, "seller", "2027-01-05", "", "C4", ""},
    {"C4 replacement day after", "2027-01-06", "manufacturing", 0, 1, 1, 0, "2025-01-05", 0, 0, "none", 1, "-", "2027-01-05", "", "none", ""},
    /* C6: commercial warranty W=36 -> 2027-03-10, extended by immobilisations of 7 days or more */
    {"C6 day before", "2027-03-09", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "commercial_warranty", 0, "-", "2026-03-10", "2027-03-10", "C6", "L217-21"},
    {"C6 day of", "2027-03-10", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "commercial_warranty", 0, "-", "", "2027-03-10", "C6", ""},
    {"C6 day after", "2027-03-11", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "2027-03-10", "none", ""},
    {"C6 10-day immobilisation day of", "2027-03-20", "manufacturing", 0, 0, 0, W, NULL, 0, 3, "commercial_warranty", 0, "-", "", "2027-03-20", "C6", ""},
    {"C6 10-day immobilisation day after", "2027-03-21", "manufacturing", 0, 0, 0, W, NULL, 0, 3, "none", 1, "-", "", "2027-03-20", "none", ""},
    {"C6 6-day immobilisation does not count", "2027-03-11", "manufacturing", 0, 0, 0, W, NULL, 0, 4, "none", 1, "-", "", "2027-03-10", "none", ""},
    {"C6 business within warranty", "2026-06-01", "manufacturing", 1, 0, 0, W, NULL, 0, 0, "commercial_warranty", 0, "-", "-", "2027-03-10", "C6", ""},
    /* C7: hidden defects, for consumers past the legal guarantee, within 20 years of the sale */
    {"C7 mentioned", "2030-01-01", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "none", "1641"},
    {"C7 not after 20 years", "2044-03-11", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "none", "!1641"},
    {"C7 not for wear", "2030-01-01", "wear", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "C8", "!1641"},
    /* C8: exclusions, inside every guarantee period */
    {"C8 misuse", "2025-01-15", "misuse", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "2026-03-10", "2027-03-10", "C8", "exclu"},
    {"C8 external cause", "2025-01-15", "external", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "C8", "surtension"},
    {"C8 accident", "2025-01-15", "accident", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "C8", ""},
    {"C8 wear without contract", "2025-01-15", "wear", 0, 0, 0, W, NULL, 0, 0, "none", 1, "-", "", "", "C8", "usure"},
    {"C8 wear under maintenance contract", "2025-01-15", "wear", 0, 0, 0, W, NULL, 3, 0, "maintenance_contract", 0, "-", "", "", "contract", ""},
    {"C8 accident covered by contract", "2027-06-01", "accident", 0, 0, 0, W, NULL, 2, 0, "extended_warranty", 0, "-", "", "", "contract", ""},
    {"C8 accident not covered by contract", "2027-06-01", "accident", 0, 0, 0, W, NULL, 1, 0, "none", 1, "-", "", "", "C8", ""},
    /* C9: the legal guarantee is free whatever the commercial warranty says (none here) */
    {"C9 legal without commercial warranty", "2025-06-01", "manufacturing", 0, 0, 0, 0, NULL, 0, 0, "legal_conformity", 0, "seller", "2026-03-10", "-", "C1", ""},
    /* Extended warranty: in force from its start to its end (2027-03-11 .. 2029-03-10) */
    {"extended first day", "2027-03-11", "manufacturing", 0, 0, 0, W, NULL, 1, 0, "extended_warranty", 0, "-", "", "2027-03-10", "contract", ""},
    {"extended last day", "2029-03-10", "manufacturing", 0, 0, 0, W, NULL, 1, 0, "extended_warranty", 0, "-", "", "", "contract", ""},
    {"extended day after", "2029-03-11", "manufacturing", 0, 0, 0, W, NULL, 1, 0, "none", 1, "-", "", "", "none", ""},
    {"commercial before extended", "2027-03-10", "manufacturing", 0, 0, 0, W, NULL, 1, 0, "commercial_warranty", 0, "-", "", "", "C6", ""},
    /* Other outcomes */
    {"no fault", "2025-01-15", "no_fault", 0, 0, 0, W, NULL, 0, 0, "none", 0, "-", "", "", "no_fault", "Aucun défaut"},
    {"unknown delivery", "2025-01-15", "manufacturing", 0, 0, 0, W, "", 0, 0, "none", 1, "-", "-", "-", "none", "inconnue"},
    {"not yet diagnosed is presumed a defect", "2025-01-15", "", 0, 0, 0, W, NULL, 0, 0, "legal_conformity", 0, "seller", "", "", "C1", ""},
};

static coverage_input build(const coverage_case *c) {
    coverage_input in = {
        .kind = "repair",
        .business = c->business,
        .second_hand = c->second_hand,
        .delivered_on = c->delivered_on ? c->delivered_on : "2024-03-10",
        .replacement_after_repair_request = c->replacement,
        .requested_on = c->requested_on,
        .commercial_warranty_months = c->warranty_months,
        .cause = c->cause,
        .contracts = c->contract ? contracts[c->contract - 1] : NULL,
        .ncontracts = c->contract ? 1 : 0,
        .history = c->history ? histories[c->history - 1] : NULL,
        .nhistory = history_sizes[c->history],
        .parts_cents = 4590,
        .labour_minutes = 45,
        .labour_rate_cents = 6500,
        .vat_basis_points = 2000,
        .lang = "fr",
    };
    return in;
}

static void expect_str(const coverage_case *c, const char *what, const char *got, const char *want) {
    if (!want[0]) return;
    const char *w = strcmp(want, "-") == 0 ? "" : want;
    if (strcmp(got, w) != 0) fail_msg("%s: %s is \"%s\", want \"%s\"", c->name, what, got, w);
}

static void every_case_of_the_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const coverage_case *c = &cases[i];
        coverage_input in = build(c);
        coverage_decision out;
        if (coverage_decide(&in, &out) != 0) fail_msg("%s: refused: %s", c->name, err_get());
        expect_str(c, "basis", out.basis, c->basis);
        if (out.customer_pays != c->pays) fail_msg("%s: customer_pays %d, want %d", c->name, out.customer_pays, c->pays);
        expect_str(c, "burden_of_proof", out.burden_of_proof, c->burden);
        expect_str(c, "legal_until", out.legal_until, c->legal_until);
        expect_str(c, "commercial_until", out.commercial_until, c->commercial_until);
        expect_str(c, "rule", out.rule, c->rule);
        if (c->reason_has[0] == '!' && strstr(out.reason, c->reason_has + 1))
            fail_msg("%s: reason must not mention %s: %s", c->name, c->reason_has + 1, out.reason);
        if (c->reason_has[0] && c->reason_has[0] != '!' && !strstr(out.reason, c->reason_has))
            fail_msg("%s: reason lacks \"%s\": %s", c->name, c->reason_has, out.reason);
        if (out.customer_pays != (out.estimate_cents > 0)) fail_msg("%s: estimate %lld with customer_pays %d", c->name,
                                                                    (long long)out.estimate_cents, out.customer_pays);
    }
}

static void billable_price_in_cents_with_vat_and_english_reason(void **state) {
    (void)state;
    coverage_case c = {"price", "2030-01-01", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "", 0, "", "", "", "", ""};
    coverage_input in = build(&c);
    in.lang = "en";
    coverage_decision out;
    assert_int_equal(coverage_decide(&in, &out), 0);
    /* 45.90 parts + 45 min at 65.00/h = 48.75 -> 94.65 net, VAT 18.93 -> 113.58 */
    assert_int_equal(out.estimate_cents, 11358);
    assert_non_null(strstr(out.reason, "€113.58"));
    assert_non_null(strstr(out.reason, "Civil Code 1641"));
    /* On-site work adds the travel fee: 94.65 + 45.00 = 139.65 net, 27.93 VAT -> 167.58 */
    in.travel_cents = 4500;
    assert_int_equal(coverage_decide(&in, &out), 0);
    assert_int_equal(out.estimate_cents, 16758);
}

static void extended_until_is_reported(void **state) {
    (void)state;
    coverage_case c = {"ext", "2025-01-15", "manufacturing", 0, 0, 0, W, NULL, 1, 0, "", 0, "", "", "", "", ""};
    coverage_input in = build(&c);
    coverage_decision out;
    assert_int_equal(coverage_decide(&in, &out), 0);
    assert_string_equal(out.basis, "legal_conformity");
    assert_string_equal(out.extended_until, "2029-03-10");
}

static void service_visits_are_not_defects(void **state) {
    (void)state;
    coverage_case c = {"visit", "2025-01-15", "", 0, 0, 0, W, NULL, 3, 0, "", 0, "", "", "", "", ""};
    coverage_input in = build(&c);
    in.kind = "preventive_maintenance";
    coverage_decision out;
    assert_int_equal(coverage_decide(&in, &out), 0);
    assert_string_equal(out.basis, "maintenance_contract");
    in.ncontracts = 0;
    assert_int_equal(coverage_decide(&in, &out), 0);
    assert_string_equal(out.basis, "none");
    assert_true(out.customer_pays);
}

static void invalid_inputs_are_refused(void **state) {
    (void)state;
    coverage_case c = {"bad", "2025-02-30", "manufacturing", 0, 0, 0, W, NULL, 0, 0, "", 0, "", "", "", "", ""};
    coverage_input in = build(&c);
    coverage_decision out;
    assert_int_equal(coverage_decide(&in, &out), -1);
    in.requested_on = "2024-01-01";
    assert_int_equal(coverage_decide(&in, &out), -1);
    assert_non_null(strstr(err_get(), "before the delivery date"));
}

static void leap_day_delivery_ends_on_february_28(void **state) {
    (void)state;
    coverage_case c = {"leap", "2026-02-28", "manufacturing", 0, 0, 0, 0, "2024-02-29", 0, 0, "", 0, "", "", "", "", ""};
    coverage_input in = build(&c);
    coverage_decision out;
    assert_int_equal(coverage_decide(&in, &out), 0);
    assert_string_equal(out.legal_until, "2026-02-28");
    assert_string_equal(out.basis, "legal_conformity");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_case_of_the_table),
        cmocka_unit_test(billable_price_in_cents_with_vat_and_english_reason),
        cmocka_unit_test(extended_until_is_reported),
        cmocka_unit_test(service_visits_are_not_defects),
        cmocka_unit_test(invalid_inputs_are_refused),
        cmocka_unit_test(leap_day_delivery_ends_on_february_28),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
