/* Unit tests for common/redisacl.c: each service's Redis ACL rule names its own Functions and no other's, keeps
 * to the key prefix, and refuses what does not fit. */
#include "unit.h"

#include <stdio.h>

#include "redisacl.h"

static int has(const char *rule, const char *word) {
    char padded[128];
    snprintf(padded, sizeof(padded), " %s ", word);
    char tail[4200];
    snprintf(tail, sizeof(tail), " %s ", rule);
    return strstr(tail, padded) != NULL;
}

static void test_each_service_calls_only_its_functions(void **state) {
    (void)state;
    char rule[4096];
    static const char *const own[SVC_COUNT] = {"+fcall|ticket_open", "+fcall|verdict_record", "+fcall|invoice_issue",
                                               "+fcall|notification_record"};
    for (int id = 0; id < SVC_COUNT; id++) {
        assert_int_equal(0, redisacl_rule(id, "sav", rule, sizeof(rule)));
        assert_true(strncmp(rule, "resetkeys ~sav:* resetchannels -@all ", 37) == 0);
        for (int other = 0; other < SVC_COUNT; other++)
            if (has(rule, own[other]) != (other == id)) fail_msg("%s: %s %s", settings_service_name(id), own[other],
                                                                 other == id ? "missing" : "allowed");
        assert_true(has(rule, "+function|load") && has(rule, "+hset") && has(rule, "+xreadgroup"));
        assert_false(has(rule, "+@all") || has(rule, "+flushall") || has(rule, "+eval") || has(rule, "+keys") ||
                     has(rule, "+config") || has(rule, "+fcall"));
    }
    assert_int_equal(0, redisacl_rule(SVC_NOTIFICATION, "sav", rule, sizeof(rule)));
    assert_false(has(rule, "+fcall|outbox_ack")); /* notification emits nothing: no outbox to relay */
    assert_true(has(rule, "+fcall_ro|ticket_contact"));
    assert_int_equal(0, redisacl_rule(SVC_INTAKE, "acme-sav", rule, sizeof(rule)));
    assert_true(strncmp(rule, "resetkeys ~acme-sav:* ", 22) == 0);
}

static void test_refusals(void **state) {
    (void)state;
    char small[64];
    unit_err_clear();
    assert_int_equal(-1, redisacl_rule(SVC_BILLING, "sav", small, sizeof(small)));
    assert_err_contains("the ACL rule of billing does not fit in 64 bytes");
    unit_err_clear();
    assert_int_equal(-1, redisacl_rule(SVC_COUNT, "sav", small, sizeof(small)));
    assert_err_contains("not a service");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_service_calls_only_its_functions),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
