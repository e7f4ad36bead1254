/* Unit tests for common/archive.c: the month of a closure on the Europe/Paris calendar (its file), month and file
 * names, a record built from what archive_collect returns (empty sections as cjson writes them), a line encoded
 * and decoded back, bad lines refused with the reason, and the search filters. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "archive.h"
#include "clock.h"

#define DIGEST "0123456789abcdef0123456789abcdef01234567"

/* archive_collect's array for a cancelled ticket: sorted pairs, lists of stored JSON, {} for empty sections. */
static const char parts_json[] =
    "[[\"customer_id\",\"C-000007\",\"id\",\"T-2026-000042\",\"outcome\",\"cancelled\",\"serial\",\"SN-1\","
    "\"state\",\"cancelled\"],"
    "[\"{\\\"at\\\":1764543600000,\\\"event\\\":\\\"ticket.received\\\",\\\"state\\\":\\\"received\\\","
    "\\\"actor\\\":\\\"desk\\\",\\\"detail\\\":\\\"\\\"}\",\"not json\"],"
    "[\"family\",\"washing_machine\"],{},{},{},"
    "[\"status\",\"expired\",\"version\",\"2\"],"
    "[\"[\\\"status\\\",\\\"superseded\\\",\\\"version\\\",\\\"1\\\"]\"],"
    "[[\"T-2026-000042:ticket_received:sms:1\",[\"body\",\"Bonjour \\u00e9\",\"channel\",\"sms\",\"id\","
    "\"T-2026-000042:ticket_received:sms:1\"]]],"
    "{},[[\"repair\",\"FAC-2026-000003\"]],\"WC-000009\"]";

static json_t *build(void) {
    /* 2026-11-30T23:30:00Z is already December in Paris. */
    json_t *r = archive_record_build(parts_json, strlen(parts_json), DIGEST, 1796081400000LL, 1830000000000LL);
    assert_non_null(r);
    return r;
}

static const char *str(const json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

static void test_months_on_the_paris_calendar(void **state) {
    (void)state;
    char m[ARCHIVE_MONTH_LEN];
    archive_month(1796081400000LL, m); /* 2026-11-30 23:30 UTC = 2026-12-01 00:30 CET */
    assert_string_equal("2026-12", m);
    archive_month(1796074200000LL, m); /* 2026-11-30 21:30 UTC */
    assert_string_equal("2026-11", m);
    archive_month(1782863999000LL, m); /* 2026-06-30 23:59:59 UTC = 2026-07-01 01:59:59 CEST */
    assert_string_equal("2026-07", m);
    assert_int_equal(0, archive_month_valid("2026-01"));
    assert_int_equal(0, archive_month_valid("2199-12"));
    for (const char *bad[] = {"2026-13", "2026-00", "1899-12", "2026-1", "2026/01", "26-01-01", "", NULL}, **b = bad;
         *b; b++) {
        unit_err_clear();
        assert_int_equal(-1, archive_month_valid(*b));
        assert_err_contains("is not a month");
    }
    assert_int_equal(-1, archive_month_valid(NULL));
}

static void test_file_names(void **state) {
    (void)state;
    char path[64], m[ARCHIVE_MONTH_LEN];
    assert_int_equal(0, archive_path("/var/lib/sav/archive", "2026-11", ARCHIVE_SUFFIX, path, sizeof(path)));
    assert_string_equal("/var/lib/sav/archive/2026-11.jsonl.gz", path);
    assert_int_equal(0, archive_path("a", "2026-11", ARCHIVE_INDEX_SUFFIX, path, sizeof(path)));
    assert_string_equal("a/2026-11.idx", path);
    assert_int_equal(-1, archive_path("a", "2026-19", ARCHIVE_SUFFIX, path, sizeof(path)));
    unit_err_clear();
    assert_int_equal(-1, archive_path("/a/very/long/directory/name/indeed", "2026-11", ARCHIVE_SUFFIX, path, 20));
    assert_err_contains("too long");
    assert_int_equal(1, archive_file_month("2026-11.jsonl.gz", m));
    assert_string_equal("2026-11", m);
    assert_int_equal(0, archive_file_month("2026-11.idx", m));
    assert_int_equal(0, archive_file_month("2026-13.jsonl.gz", m));
    assert_int_equal(0, archive_file_month("x2026-11.jsonl.gz", m));
    assert_int_equal(0, archive_file_month(".lock", m));
}

static void test_record_from_the_collected_parts(void **state) {
    (void)state;
    json_t *r = build();
    assert_int_equal(ARCHIVE_VERSION, json_integer_value(json_object_get(r, "v")));
    assert_string_equal("T-2026-000042", str(r, "id"));
    assert_string_equal(DIGEST, str(r, "digest"));
    assert_string_equal("2026-12", str(r, "month"));
    assert_string_equal("cancelled", str(r, "state"));
    assert_string_equal("C-000007", str(r, "customer_id"));
    assert_string_equal("SN-1", str(r, "serial"));
    assert_int_equal(1796081400000LL, json_integer_value(json_object_get(r, "closed_at")));
    assert_int_equal(1830000000000LL, json_integer_value(json_object_get(r, "archived_at")));
    assert_string_equal("cancelled", str(json_object_get(r, "ticket"), "outcome"));
    /* Timeline entries are objects again; a stored value that is not JSON stays the string it was. */
    const json_t *tl = json_object_get(r, "timeline");
    assert_int_equal(2, json_array_size(tl));
    assert_string_equal("ticket.received", str(json_array_get(tl, 0), "event"));
    assert_int_equal(1764543600000LL, json_integer_value(json_object_get(json_array_get(tl, 0), "at")));
    assert_string_equal("not json", json_string_value(json_array_get(tl, 1)));
    assert_string_equal("washing_machine", str(json_object_get(r, "prediagnosis"), "family"));
    assert_int_equal(0, json_object_size(json_object_get(r, "coverage")));
    assert_int_equal(0, json_array_size(json_object_get(r, "verdicts")));
    assert_string_equal("2", str(json_object_get(r, "quote"), "version"));
    assert_string_equal("superseded", str(json_array_get(json_object_get(r, "quotes"), 0), "status"));
    const json_t *n = json_array_get(json_object_get(r, "notifications"), 0);
    assert_string_equal("Bonjour \xc3\xa9", str(n, "body"));
    assert_string_equal("T-2026-000042:ticket_received:sms:1", str(n, "id"));
    assert_int_equal(0, json_array_size(json_object_get(r, "complaints")));
    assert_string_equal("FAC-2026-000003", str(json_object_get(r, "invoices"), "repair"));
    assert_string_equal("WC-000009", str(r, "claim"));
    json_decref(r);
}

static void test_bad_parts_are_refused(void **state) {
    (void)state;
    static const char *const bad[] = {
        "not json", "{}", "[1,2,3]",
        /* odd pairs in the ticket */
        "[[\"id\"],[],{},{},{},{},{},{},{},{},{},\"\"]",
        /* no ticket id */
        "[[\"state\",\"closed\"],[],{},{},{},{},{},{},{},{},{},\"\"]",
        /* a notification that is not [id, pairs] */
        "[[\"id\",\"T-2026-000001\"],[],{},{},{},{},{},{},[1],{},{},\"\"]",
        /* no claim string */
        "[[\"id\",\"T-2026-000001\"],[],{},{},{},{},{},{},{},{},{},7]",
        NULL};
    for (const char *const *b = bad; *b; b++) {
        unit_err_clear();
        assert_null(archive_record_build(*b, strlen(*b), DIGEST, 0, 0));
        assert_err_contains("archive record");
    }
}

static void test_lines_round_trip(void **state) {
    (void)state;
    json_t *r = build();
    size_t len;
    char *line = archive_line_encode(r, &len);
    assert_non_null(line);
    assert_int_equal(strlen(line), len);
    assert_int_equal('\n', line[len - 1]);
    assert_null(memchr(line, '\n', len - 1));
    /* The id and the digest come first: a line can be recognised at a glance. */
    assert_int_equal(0, strncmp(line, "{\"v\":1,\"id\":\"T-2026-000042\",\"digest\":\"" DIGEST "\"", 79));
    json_t *back = archive_line_decode(line, len);
    assert_non_null(back);
    assert_true(json_equal(r, back));
    json_decref(back);
    back = archive_line_decode(line, len - 1);
    assert_non_null(back);
    json_decref(back);
    free(line);
    json_decref(r);
}

static void test_bad_lines_are_refused(void **state) {
    (void)state;
    static const struct {
        const char *line, *why;
    } bad[] = {
        {"", "archive line"},
        {"[1]", "not a JSON object"},
        {"{\"v\":2,\"id\":\"T-2026-000001\"}", "not a version 1 record"},
        {"{\"v\":1,\"id\":\"C-000001\"}", "no ticket id"},
        {"{\"v\":1,\"id\":\"T-2026-000001\",\"digest\":\"abc\"}", "no digest"},
        {"{\"v\":1,\"id\":\"T-2026-000001\",\"digest\":\"" DIGEST "\",\"month\":\"2026-13\"}", "no month"},
        {"{\"v\":1,\"id\":\"T-2026-000001\",\"digest\":\"" DIGEST "\",\"month\":\"2026-11\"}", "no ticket"},
        {"{\"v\":1,\"v\":1}", "archive line"},
        {NULL, NULL}};
    for (int i = 0; bad[i].line; i++) {
        unit_err_clear();
        assert_null(archive_line_decode(bad[i].line, strlen(bad[i].line)));
        assert_err_contains(bad[i].why);
    }
}

static void test_filters(void **state) {
    (void)state;
    json_t *r = build();
    archive_filter any = {NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(1, archive_matches(r, &any));
    archive_filter f = {"T-2026-000042", "C-000007", "SN-1", "2026-12", "2026-12"};
    assert_int_equal(1, archive_matches(r, &f));
    archive_filter other_ticket = {"T-2026-000043", NULL, NULL, NULL, NULL};
    assert_int_equal(0, archive_matches(r, &other_ticket));
    archive_filter other_customer = {NULL, "C-000008", NULL, "", ""};
    assert_int_equal(0, archive_matches(r, &other_customer));
    archive_filter other_serial = {NULL, NULL, "SN-2", NULL, NULL};
    assert_int_equal(0, archive_matches(r, &other_serial));
    archive_filter before = {NULL, NULL, NULL, NULL, "2026-11"}, after = {NULL, NULL, NULL, "2027-01", NULL};
    assert_int_equal(0, archive_matches(r, &before));
    assert_int_equal(0, archive_matches(r, &after));
    assert_int_equal(1, archive_month_wanted(&before, "2026-11"));
    assert_int_equal(0, archive_month_wanted(&after, "2026-12"));
    assert_int_equal(1, archive_month_wanted(&any, "1999-01"));
    json_decref(r);
}

int main(void) {
    if (clock_init() != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_months_on_the_paris_calendar), cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_record_from_the_collected_parts), cmocka_unit_test(test_bad_parts_are_refused),
        cmocka_unit_test(test_lines_round_trip), cmocka_unit_test(test_bad_lines_are_refused),
        cmocka_unit_test(test_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
