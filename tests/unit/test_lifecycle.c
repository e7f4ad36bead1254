/* Unit tests of common/lifecycle: every state x event x kind class, allowed ones with their target, the rest refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "lifecycle.h"

static const char *const states[] = {"received", "in_diagnosis", "awaiting_approval", "waiting_parts",
                                     "in_repair", "ready", "closed", "cancelled"};
#define NSTATES 8

typedef struct expected {
    const char *from;
    enum lifecycle_event ev;
    const char *to_repair;  /* for kinds with diagnosis (repair, assistance); NULL = refused */
    const char *to_visit;   /* for installation, commissioning, preventive_maintenance */
} expected;

/* The whole table of allowed transitions; every pair not listed must be refused. */
static const expected allowed[] = {
    {"received", LC_DIAGNOSIS_START, "in_diagnosis", NULL},
    {"in_diagnosis", LC_QUOTE_SENT, "awaiting_approval", NULL},
    {"awaiting_approval", LC_QUOTE_ACCEPTED, "in_repair", NULL},
    {"awaiting_approval", LC_QUOTE_REFUSED, "ready", NULL},
    {"in_diagnosis", LC_PARTS_MISSING, "waiting_parts", NULL},
    {"awaiting_approval", LC_PARTS_MISSING, "waiting_parts", NULL},
    {"received", LC_PARTS_MISSING, NULL, "waiting_parts"},
    {"waiting_parts", LC_PARTS_ARRIVED, "in_repair", "in_repair"},
    {"in_diagnosis", LC_REPAIR_START, "in_repair", NULL},
    {"received", LC_REPAIR_START, NULL, "in_repair"},
    {"in_repair", LC_REPAIR_DONE, "ready", "ready"},
    {"in_diagnosis", LC_NO_FAULT, "ready", NULL},
    {"ready", LC_PICKUP, "closed", "closed"},
    {"received", LC_CANCEL, "cancelled", "cancelled"},
    {"in_diagnosis", LC_CANCEL, "cancelled", "cancelled"},
    {"awaiting_approval", LC_CANCEL, "cancelled", "cancelled"},
    {"waiting_parts", LC_CANCEL, "cancelled", "cancelled"},
    {"awaiting_approval", LC_VERDICT_CORRECTED, "in_diagnosis", NULL},
    {"waiting_parts", LC_VERDICT_CORRECTED, "in_diagnosis", NULL},
};

static const expected *find(const char *from, enum lifecycle_event ev) {
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (allowed[i].ev == ev && strcmp(allowed[i].from, from) == 0) return &allowed[i];
    return NULL;
}

static void check_kind(const char *kind, int visit) {
    int checked = 0, refused = 0;
    for (int s = 0; s < NSTATES; s++)
        for (int ev = 0; ev < LC_EVENT_COUNT; ev++) {
            const expected *e = find(states[s], (enum lifecycle_event)ev);
            const char *want = e ? (visit ? e->to_visit : e->to_repair) : NULL;
            err_set("-");
            const char *got = lifecycle_next(kind, states[s], (enum lifecycle_event)ev);
            if (want) {
                if (!got || strcmp(got, want) != 0)
                    fail_msg("%s: %s + %s gave %s, want %s", kind, states[s], lifecycle_event_name(ev), got ? got : "refusal", want);
            } else {
                if (got) fail_msg("%s: %s + %s allowed (-> %s), must be refused", kind, states[s], lifecycle_event_name(ev), got);
                /* The refusal names the current state. */
                assert_non_null(strstr(err_get(), states[s]));
                refused++;
            }
            checked++;
        }
    assert_int_equal(checked, NSTATES * LC_EVENT_COUNT);
    assert_true(refused > 60);
}

static void repair_kinds_follow_the_table(void **state) {
    (void)state;
    check_kind("repair", 0);
    check_kind("assistance", 0);
}

static void visit_kinds_skip_diagnosis(void **state) {
    (void)state;
    check_kind("installation", 1);
    check_kind("commissioning", 1);
    check_kind("preventive_maintenance", 1);
    assert_true(lifecycle_skips_diagnosis("installation"));
    assert_false(lifecycle_skips_diagnosis("repair"));
}

static void refusals_explain_themselves(void **state) {
    (void)state;
    assert_null(lifecycle_next("repair", "in_repair", LC_CANCEL));
    assert_non_null(strstr(err_get(), "can no longer be cancelled once repair has started"));
    assert_null(lifecycle_next("repair", "closed", LC_PICKUP));
    assert_string_equal(err_get(), "the ticket is closed: no further step is possible");
    assert_null(lifecycle_next("repair", "in_repair", LC_PICKUP));
    assert_string_equal(err_get(), "pickup is not possible while the ticket is in_repair");
}

static void states_and_names(void **state) {
    (void)state;
    for (int s = 0; s < NSTATES; s++) assert_true(lifecycle_state_valid(states[s]));
    for (int s = 0; s < NSTATES; s++) assert_string_equal(states[s], lifecycle_state_at(s));
    assert_null(lifecycle_state_at(NSTATES));
    assert_null(lifecycle_state_at(-1));
    assert_false(lifecycle_state_valid("lost"));
    assert_true(lifecycle_state_final("closed"));
    assert_true(lifecycle_state_final("cancelled"));
    assert_false(lifecycle_state_final("ready"));
    assert_string_equal(lifecycle_event_name(LC_REPAIR_START), "repair.start");
    assert_null(lifecycle_event_name(LC_EVENT_COUNT));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(repair_kinds_follow_the_table),
        cmocka_unit_test(visit_kinds_skip_diagnosis),
        cmocka_unit_test(refusals_explain_themselves),
        cmocka_unit_test(states_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
