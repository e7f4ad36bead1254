#include "clock.h"
#include "err.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The offset of the injectable clock, and the file it may be read from again while the process runs (a test's
 * clock jump): checked at most every CLOCK_FILE_CHECK_MS by whichever thread asks for the time. */
#define CLOCK_FILE_CHECK_MS 200
static _Atomic int64_t clock_offset_ms;
static _Atomic int64_t clock_file_next_check;
static const char *clock_offset_file;

/* Parses an offset in milliseconds; 0 or -1 (with err naming where it came from, if where is set). */
static int clock_parse_offset(const char *where, const char *text, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) {
        if (where) err_set("%s must be an integer number of milliseconds, got \"%.40s\"", where, text);
        return -1;
    }
    *out = v;
    return 0;
}

/* Reads the offset file; 0 or -1 (with err if report: a caller's own error must not be overwritten by a read
 * that happens to run while it asks for the time). */
static int clock_read_offset_file(int report) {
    char text[64] = "";
    FILE *f = fopen(clock_offset_file, "r");
    if (!f) {
        if (report) err_set("SAV_CLOCK_OFFSET_FILE %s: %s", clock_offset_file, strerror(errno));
        return -1;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) n--;
    text[n] = '\0';
    int64_t v;
    if (clock_parse_offset(report ? "SAV_CLOCK_OFFSET_FILE" : NULL, text, &v) != 0) return -1;
    clock_offset_ms = v;
    return 0;
}

int clock_init(void) {
    if (setenv("TZ", "Europe/Paris", 1) != 0) {
        err_set("cannot set TZ: %s", strerror(errno));
        return -1;
    }
    tzset();
    /* Without tzdata, glibc silently falls back to UTC: legal deadlines would be off by hours. */
    time_t summer = 1782864000; /* 2026-07-01T00:00:00Z */
    struct tm tm;
    localtime_r(&summer, &tm);
    if (tm.tm_gmtoff != 7200) {
        err_set("time zone data for Europe/Paris is missing: install the tzdata package");
        return -1;
    }
    const char *off = getenv("SAV_CLOCK_OFFSET_MS");
    int64_t v;
    if (off && *off) {
        if (clock_parse_offset("SAV_CLOCK_OFFSET_MS", off, &v) != 0) return -1;
        clock_offset_ms = v;
    }
    clock_offset_file = getenv("SAV_CLOCK_OFFSET_FILE");
    if (clock_offset_file && !*clock_offset_file) clock_offset_file = NULL;
    return clock_offset_file ? clock_read_offset_file(1) : 0;
}

int64_t clock_now_ms(void) {
    if (clock_offset_file) {
        int64_t due = clock_file_next_check, now = clock_mono_ms();
        /* One thread re-reads; a file being rewritten that does not parse keeps the offset in force. */
        if (now >= due && atomic_compare_exchange_strong(&clock_file_next_check, &due, now + CLOCK_FILE_CHECK_MS))
            clock_read_offset_file(0);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms;
}

int64_t clock_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void clock_paris_tm(int64_t utc_ms, struct tm *tm) {
    time_t t = (time_t)(utc_ms / 1000);
    localtime_r(&t, tm);
}

void clock_date_paris(int64_t utc_ms, char out[CLOCK_DATE_LEN]) {
    struct tm tm;
    clock_paris_tm(utc_ms, &tm);
    strftime(out, CLOCK_DATE_LEN, "%Y-%m-%d", &tm);
}

int clock_year_paris(int64_t utc_ms) {
    struct tm tm;
    clock_paris_tm(utc_ms, &tm);
    return tm.tm_year + 1900;
}

int clock_minute_paris(int64_t utc_ms) {
    struct tm tm;
    clock_paris_tm(utc_ms, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}

void clock_format_paris(int64_t utc_ms, char *out, size_t len) {
    struct tm tm;
    clock_paris_tm(utc_ms, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

void clock_format_utc(int64_t utc_ms, char *out, size_t len) {
    time_t t = (time_t)(utc_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n) snprintf(out + n, len - n, ".%03dZ", (int)(utc_ms % 1000));
}

static int clock_days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static int clock_date_split(const char *s, int *y, int *m, int *d) {
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) return -1;
    *y = atoi(s);
    *m = atoi(s + 5);
    *d = atoi(s + 8);
    if (*y < 1900 || *y > 2199 || *m < 1 || *m > 12 || *d < 1 || *d > clock_days_in_month(*y, *m)) return -1;
    return 0;
}

int clock_date_valid(const char *s) {
    int y, m, d;
    if (clock_date_split(s, &y, &m, &d) != 0) {
        err_set("\"%s\" is not a calendar date in the form YYYY-MM-DD", s ? s : "");
        return -1;
    }
    return 0;
}

/* Days since 1970-01-01 of a valid date (civil calendar, no time zone involved). */
static long clock_epoch_days(int y, int m, int d) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
    return (long)(timegm(&tm) / 86400);
}

int clock_date_add_days(const char *date, int days, char out[CLOCK_DATE_LEN]) {
    int y, m, d;
    if (clock_date_split(date, &y, &m, &d) != 0) {
        err_set("\"%s\" is not a calendar date in the form YYYY-MM-DD", date ? date : "");
        return -1;
    }
    time_t t = (time_t)(clock_epoch_days(y, m, d) + days) * 86400 + 43200;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_year + 1900 < 1900 || tm.tm_year + 1900 > 2199) {
        err_set("%s plus %d days leaves the supported years 1900..2199", date, days);
        return -1;
    }
    strftime(out, CLOCK_DATE_LEN, "%Y-%m-%d", &tm);
    return 0;
}

int clock_date_diff_days(const char *a, const char *b) {
    int ya, ma, da, yb, mb, db;
    if (clock_date_split(a, &ya, &ma, &da) != 0 || clock_date_split(b, &yb, &mb, &db) != 0) return 0;
    return (int)(clock_epoch_days(yb, mb, db) - clock_epoch_days(ya, ma, da));
}

long clock_date_score(const char *date) {
    int y, m, d;
    return clock_date_split(date, &y, &m, &d) == 0 ? (long)y * 10000 + m * 100 + d : 0;
}

int clock_date_add_months(const char *date, int months, char out[CLOCK_DATE_LEN]) {
    int y, m, d;
    if (clock_date_split(date, &y, &m, &d) != 0) {
        err_set("\"%s\" is not a calendar date in the form YYYY-MM-DD", date ? date : "");
        return -1;
    }
    long long total = (long long)y * 12 + (m - 1) + months;
    if (total < 1900LL * 12 || total > 2199LL * 12 + 11) {
        err_set("%s plus %d months leaves the supported years 1900..2199", date, months);
        return -1;
    }
    y = (int)(total / 12);
    m = (int)(total % 12) + 1;
    if (d > clock_days_in_month(y, m)) d = clock_days_in_month(y, m);
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y, m, d);
    memcpy(out, tmp, CLOCK_DATE_LEN);
    return 0;
}
