/* Unit tests for common/clock.c: calendar dates, month arithmetic, Europe/Paris dates and years, injectable offset. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

/* Returns the UTC instant of a broken-down UTC time, in milliseconds (timegm ignores TZ). */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s) {
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000;
}

/* Returns the real wall-clock time in milliseconds, with no offset. */
static int64_t real_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Every test starts with Europe/Paris selected and no offset. */
static int clock_reset(void **state) {
    (void)state;
    setenv("SAV_CLOCK_OFFSET_MS", "0", 1);
    unsetenv("SAV_CLOCK_OFFSET_FILE");
    int rc = clock_init();
    unsetenv("SAV_CLOCK_OFFSET_MS");
    return rc;
}

/* Fails unless the Paris date of the instant is expected. */
static void paris_date_is(int64_t ms, const char *expected) {
    char out[CLOCK_DATE_LEN];
    memset(out, 'x', sizeof(out));
    clock_date_paris(ms, out);
    if (strcmp(out, expected) != 0)
        fail_msg("clock_date_paris(%lld) gave \"%s\", expected \"%s\"", (long long)ms, out, expected);
}

static void test_utc_helper_matches_known_epoch(void **state) {
    (void)state;
    assert_int_equal(1767225600000LL, utc_ms(2026, 1, 1, 0, 0, 0));
    assert_int_equal(1798759800000LL, utc_ms(2026, 12, 31, 23, 30, 0));
}

static void test_date_valid_accepts_real_dates(void **state) {
    (void)state;
    static const char *const ok[] = {"2024-02-29", "2000-02-29", "2023-02-28", "2024-12-31", "2024-04-30",
                                     "1900-01-01", "2199-12-31", "2026-01-31"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        unit_err_clear();
        if (clock_date_valid(ok[i]) != 0) fail_msg("clock_date_valid(\"%s\") refused: %s", ok[i], err_get());
    }
}

static void test_date_valid_refuses_impossible_days(void **state) {
    (void)state;
    /* 2023 is not a leap year; 2100 and 1900 are centuries not divisible by 400. */
    static const char *const bad[] = {"2023-02-29", "2100-02-29", "1900-02-29", "2024-02-30", "2024-04-31",
                                      "2024-06-31", "2024-13-01", "2024-00-10", "2024-01-00", "2024-01-32",
                                      "1899-12-31", "2200-01-01", "0000-01-01"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (clock_date_valid(bad[i]) != -1) fail_msg("clock_date_valid accepted \"%s\"", bad[i]);
        char expected[80];
        snprintf(expected, sizeof(expected), "\"%s\" is not a calendar date in the form YYYY-MM-DD", bad[i]);
        assert_err_equal(expected);
    }
}

static void test_date_valid_refuses_bad_forms(void **state) {
    (void)state;
    static const char *const bad[] = {"",           "2024-1-01",  "2024-01-1",   "24-01-01",   "2024/01/01",
                                      "2024-01-011", "2024-01-0a", " 2024-01-01", "2024-01-01 ", "+024-01-01",
                                      "2024-+1-01", "2024-01--1", "20240101",    "2024-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (clock_date_valid(bad[i]) != -1) fail_msg("clock_date_valid accepted \"%s\"", bad[i]);
        assert_err_contains("is not a calendar date in the form YYYY-MM-DD");
    }
    unit_err_clear();
    assert_int_equal(-1, clock_date_valid(NULL));
    assert_err_equal("\"\" is not a calendar date in the form YYYY-MM-DD");
}

/* Fails unless date + months is expected. */
static void add_months_is(const char *date, int months, const char *expected) {
    char out[CLOCK_DATE_LEN];
    memset(out, 'x', sizeof(out));
    unit_err_clear();
    if (clock_date_add_months(date, months, out) != 0)
        fail_msg("clock_date_add_months(\"%s\", %d) refused: %s", date, months, err_get());
    if (strcmp(out, expected) != 0)
        fail_msg("clock_date_add_months(\"%s\", %d) gave \"%s\", expected \"%s\"", date, months, out, expected);
}

static void test_add_months_clamps_to_month_end(void **state) {
    (void)state;
    add_months_is("2024-01-31", 1, "2024-02-29");
    add_months_is("2023-01-31", 1, "2023-02-28");
    add_months_is("2024-02-29", 12, "2025-02-28");
    add_months_is("2024-02-29", 48, "2028-02-29");
    add_months_is("2099-02-28", 12, "2100-02-28");
    add_months_is("2096-02-29", 48, "2100-02-28");
    add_months_is("2024-03-31", 1, "2024-04-30");
    add_months_is("2024-08-31", 1, "2024-09-30");
    add_months_is("2024-01-30", 1, "2024-02-29");
    add_months_is("2024-01-15", 1, "2024-02-15");
}

static void test_add_months_rolls_over_years(void **state) {
    (void)state;
    add_months_is("2024-11-15", 2, "2025-01-15");
    add_months_is("2024-12-31", 1, "2025-01-31");
    add_months_is("2024-12-01", 0, "2024-12-01");
    add_months_is("2024-12-01", 24, "2026-12-01");
    add_months_is("2026-06-10", 120, "2036-06-10");
    add_months_is("2199-11-30", 1, "2199-12-30");
}

static void test_add_months_accepts_negative_months(void **state) {
    (void)state;
    add_months_is("2024-03-31", -1, "2024-02-29");
    add_months_is("2024-01-15", -1, "2023-12-15");
    add_months_is("2025-02-28", -12, "2024-02-28");
    add_months_is("2024-05-31", -27, "2022-02-28");
    add_months_is("1900-02-01", -1, "1900-01-01");
}

static void test_add_months_refuses_bad_dates_and_range(void **state) {
    (void)state;
    char out[CLOCK_DATE_LEN];
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("2023-02-29", 1, out));
    assert_err_equal("\"2023-02-29\" is not a calendar date in the form YYYY-MM-DD");
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months(NULL, 1, out));
    assert_err_contains("is not a calendar date");
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("2199-12-01", 1, out));
    assert_err_equal("2199-12-01 plus 1 months leaves the supported years 1900..2199");
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("1900-01-31", -1, out));
    assert_err_equal("1900-01-31 plus -1 months leaves the supported years 1900..2199");
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("2024-01-01", -100000, out));
    assert_err_contains("leaves the supported years 1900..2199");
}

static void test_date_paris_around_new_year(void **state) {
    (void)state;
    /* Winter: Paris is UTC+1, so the new year starts at 23:00 UTC. */
    paris_date_is(utc_ms(2026, 12, 31, 22, 59, 59), "2026-12-31");
    paris_date_is(utc_ms(2026, 12, 31, 22, 59, 59) + 999, "2026-12-31");
    paris_date_is(utc_ms(2026, 12, 31, 23, 0, 0), "2027-01-01");
    paris_date_is(utc_ms(2026, 12, 31, 23, 30, 0), "2027-01-01");
    paris_date_is(utc_ms(2027, 1, 1, 0, 30, 0), "2027-01-01");
    assert_int_equal(2026, clock_year_paris(utc_ms(2026, 12, 31, 22, 59, 59) + 999));
    assert_int_equal(2027, clock_year_paris(utc_ms(2026, 12, 31, 23, 0, 0)));
    assert_int_equal(2027, clock_year_paris(1798759800000LL)); /* 2026-12-31T23:30:00Z */
    assert_int_equal(2026, clock_year_paris(utc_ms(2026, 1, 1, 0, 0, 0)));
    assert_int_equal(2025, clock_year_paris(utc_ms(2025, 12, 31, 22, 0, 0)));
}

static void test_date_paris_around_spring_dst(void **state) {
    (void)state;
    /* 2026-03-29 01:00 UTC: CET (UTC+1) becomes CEST (UTC+2). */
    paris_date_is(utc_ms(2026, 3, 28, 22, 59, 59), "2026-03-28");
    paris_date_is(utc_ms(2026, 3, 28, 23, 0, 0), "2026-03-29");
    paris_date_is(utc_ms(2026, 3, 29, 0, 59, 59), "2026-03-29");
    paris_date_is(utc_ms(2026, 3, 29, 1, 0, 0), "2026-03-29");
    /* After the change, midnight is at 22:00 UTC. */
    paris_date_is(utc_ms(2026, 3, 29, 21, 59, 59), "2026-03-29");
    paris_date_is(utc_ms(2026, 3, 29, 22, 0, 0), "2026-03-30");
    paris_date_is(utc_ms(2026, 7, 14, 21, 59, 59), "2026-07-14");
    paris_date_is(utc_ms(2026, 7, 14, 22, 0, 0), "2026-07-15");
}

static void test_date_paris_around_autumn_dst(void **state) {
    (void)state;
    /* 2026-10-25 01:00 UTC: CEST (UTC+2) becomes CET (UTC+1). */
    paris_date_is(utc_ms(2026, 10, 24, 21, 59, 59), "2026-10-24");
    paris_date_is(utc_ms(2026, 10, 24, 22, 0, 0), "2026-10-25");
    paris_date_is(utc_ms(2026, 10, 25, 0, 30, 0), "2026-10-25");
    paris_date_is(utc_ms(2026, 10, 25, 1, 30, 0), "2026-10-25");
    paris_date_is(utc_ms(2026, 10, 25, 22, 59, 59), "2026-10-25");
    paris_date_is(utc_ms(2026, 10, 25, 23, 0, 0), "2026-10-26");
}

static void test_format_paris_and_utc(void **state) {
    (void)state;
    char out[64];
    /* 2026-11-30T09:05:00.123Z is 10:05 CET; 2026-07-14T10:00Z is 12:00 CEST. */
    clock_format_paris(utc_ms(2026, 11, 30, 9, 5, 0) + 123, out, sizeof(out));
    if (strncmp(out, "2026-11-30 10:05", 16) != 0 || strcmp(out + strlen(out) - 4, " CET") != 0)
        fail_msg("clock_format_paris gave \"%s\", expected 2026-11-30 10:05 ... CET", out);
    clock_format_paris(utc_ms(2026, 7, 14, 10, 0, 0), out, sizeof(out));
    if (strncmp(out, "2026-07-14 12:00", 16) != 0 || strcmp(out + strlen(out) - 5, " CEST") != 0)
        fail_msg("clock_format_paris gave \"%s\", expected 2026-07-14 12:00 ... CEST", out);
    clock_format_utc(utc_ms(2026, 11, 30, 9, 5, 0) + 123, out, sizeof(out));
    assert_string_equal("2026-11-30T09:05:00.123Z", out);
    clock_format_utc(utc_ms(2027, 1, 1, 0, 0, 0), out, sizeof(out));
    assert_string_equal("2027-01-01T00:00:00.000Z", out);
}

static void test_init_selects_paris_and_no_offset_by_default(void **state) {
    (void)state;
    unsetenv("SAV_CLOCK_OFFSET_MS");
    assert_int_equal(0, clock_init());
    assert_string_equal("Europe/Paris", getenv("TZ"));
    int64_t before = real_now_ms();
    int64_t now = clock_now_ms();
    int64_t after = real_now_ms();
    assert_in_range(now, before, after);
    setenv("SAV_CLOCK_OFFSET_MS", "", 1);
    assert_int_equal(0, clock_init());
    before = real_now_ms();
    now = clock_now_ms();
    after = real_now_ms();
    assert_in_range(now, before, after);
}

static void test_init_applies_offset(void **state) {
    (void)state;
    setenv("SAV_CLOCK_OFFSET_MS", "86400000", 1);
    assert_int_equal(0, clock_init());
    int64_t before = real_now_ms();
    int64_t now = clock_now_ms();
    int64_t after = real_now_ms();
    assert_in_range(now, before + 86400000, after + 86400000);

    setenv("SAV_CLOCK_OFFSET_MS", "-3600000", 1);
    assert_int_equal(0, clock_init());
    before = real_now_ms();
    now = clock_now_ms();
    after = real_now_ms();
    assert_in_range(now + 3600000, before, after);
}

static void test_init_offset_does_not_move_monotonic_clock(void **state) {
    (void)state;
    int64_t m0 = clock_mono_ms();
    setenv("SAV_CLOCK_OFFSET_MS", "31536000000", 1); /* one year */
    assert_int_equal(0, clock_init());
    int64_t m1 = clock_mono_ms();
    assert_true(m1 >= m0);
    assert_true(m1 - m0 < 10000);
}

static void test_init_refuses_bad_offset(void **state) {
    (void)state;
    static const char *const bad[] = {"12abc", "1.5", "one day", "99999999999999999999999", "86400000 ", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("SAV_CLOCK_OFFSET_MS", bad[i], 1);
        unit_err_clear();
        if (clock_init() != -1) fail_msg("clock_init accepted SAV_CLOCK_OFFSET_MS=\"%s\"", bad[i]);
        char expected[160];
        snprintf(expected, sizeof(expected),
                 "SAV_CLOCK_OFFSET_MS must be an integer number of milliseconds, got \"%s\"", bad[i]);
        assert_err_equal(expected);
    }
}

static void offset_file_write(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The wall clock jumps under a running process when the offset file changes; the monotonic clock does not. */
static void test_offset_file_jumps_while_running(void **state) {
    (void)state;
    char path[] = "/tmp/sav-unit-clock-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    offset_file_write(path, "3600000\n");
    setenv("SAV_CLOCK_OFFSET_FILE", path, 1);
    assert_int_equal(0, clock_init());
    int64_t before = real_now_ms(), now = clock_now_ms(), after = real_now_ms();
    assert_in_range(now, before + 3600000, after + 3600000);
    int64_t m0 = clock_mono_ms();
    offset_file_write(path, "-172800000");
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    before = real_now_ms(), now = clock_now_ms(), after = real_now_ms();
    assert_in_range(now + 172800000, before, after);
    assert_true(clock_mono_ms() - m0 < 10000);
    /* A file caught half-written does not parse: the offset in force stays, the caller's error is untouched. */
    offset_file_write(path, "-17280x");
    nanosleep(&pause, NULL);
    err_set("the caller's own error");
    before = real_now_ms(), now = clock_now_ms(), after = real_now_ms();
    assert_in_range(now + 172800000, before, after);
    assert_err_equal("the caller's own error");
    /* At start, a bad or missing file is refused. */
    unit_err_clear();
    assert_int_equal(-1, clock_init());
    assert_err_equal("SAV_CLOCK_OFFSET_FILE must be an integer number of milliseconds, got \"-17280x\"");
    unlink(path);
    unit_err_clear();
    assert_int_equal(-1, clock_init());
    assert_err_contains("No such file or directory");
    unsetenv("SAV_CLOCK_OFFSET_FILE");
}

/* Last: a signed overflow here aborts the whole binary under UBSan. */
static void test_add_months_refuses_huge_month_counts(void **state) {
    (void)state;
    char out[CLOCK_DATE_LEN];
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("2024-01-01", INT_MAX, out));
    assert_err_contains("leaves the supported years 1900..2199");
    unit_err_clear();
    assert_int_equal(-1, clock_date_add_months("2024-01-01", INT_MIN, out));
    assert_err_contains("leaves the supported years 1900..2199");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_utc_helper_matches_known_epoch, clock_reset),
        cmocka_unit_test_setup(test_date_valid_accepts_real_dates, clock_reset),
        cmocka_unit_test_setup(test_date_valid_refuses_impossible_days, clock_reset),
        cmocka_unit_test_setup(test_date_valid_refuses_bad_forms, clock_reset),
        cmocka_unit_test_setup(test_add_months_clamps_to_month_end, clock_reset),
        cmocka_unit_test_setup(test_add_months_rolls_over_years, clock_reset),
        cmocka_unit_test_setup(test_add_months_accepts_negative_months, clock_reset),
        cmocka_unit_test_setup(test_add_months_refuses_bad_dates_and_range, clock_reset),
        cmocka_unit_test_setup(test_date_paris_around_new_year, clock_reset),
        cmocka_unit_test_setup(test_date_paris_around_spring_dst, clock_reset),
        cmocka_unit_test_setup(test_date_paris_around_autumn_dst, clock_reset),
        cmocka_unit_test_setup(test_format_paris_and_utc, clock_reset),
        cmocka_unit_test_setup(test_init_selects_paris_and_no_offset_by_default, clock_reset),
        cmocka_unit_test_setup(test_init_applies_offset, clock_reset),
        cmocka_unit_test_setup(test_init_offset_does_not_move_monotonic_clock, clock_reset),
        cmocka_unit_test_setup(test_init_refuses_bad_offset, clock_reset),
        cmocka_unit_test_setup(test_offset_file_jumps_while_running, clock_reset),
        cmocka_unit_test_setup(test_add_months_refuses_huge_month_counts, clock_reset),
    };
    return cmocka_run_group_tests(tests, NULL, clock_reset);
}
