/* clock: UTC time for storage, Europe/Paris calendar for display and legal
 * deadlines. The clock is injectable: SAV_CLOCK_OFFSET_MS shifts "now" so
 * that tests can move through days without sleeping, and
 * SAV_CLOCK_OFFSET_FILE names a file holding the offset, read again within
 * 200 ms of each change, so that a test can make the wall clock jump (as an
 * NTP step would) under a running process. The monotonic clock of timeouts
 * never moves. */
#ifndef SAV_CLOCK_H
#define SAV_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#define CLOCK_DATE_LEN 11 /* "YYYY-MM-DD" and its NUL */

/* Selects Europe/Paris (checking tzdata is there) and reads SAV_CLOCK_OFFSET_MS or SAV_CLOCK_OFFSET_FILE; 0 or -1
 * with err. */
int clock_init(void);

/* Returns the current UTC time in milliseconds since the epoch, offset applied. */
int64_t clock_now_ms(void);

/* Returns a monotonic time in milliseconds, for timeouts (never offset). */
int64_t clock_mono_ms(void);

/* Returns a monotonic time in microseconds, for latencies. */
int64_t clock_mono_us(void);

/* Writes the Europe/Paris calendar date of a UTC instant as YYYY-MM-DD. */
void clock_date_paris(int64_t utc_ms, char out[CLOCK_DATE_LEN]);

/* Returns the Europe/Paris calendar year of a UTC instant. */
int clock_year_paris(int64_t utc_ms);

/* Returns the Europe/Paris wall-clock minute of the day (0 to 1439) of a UTC instant. */
int clock_minute_paris(int64_t utc_ms);

/* Formats a UTC instant for people: "2026-11-30 10:05:03 CET" (Europe/Paris). */
void clock_format_paris(int64_t utc_ms, char *out, size_t len);

/* Formats a UTC instant as ISO 8601 with milliseconds and Z. */
void clock_format_utc(int64_t utc_ms, char *out, size_t len);

/* Checks that s is a real calendar date YYYY-MM-DD (1900..2199); 0 or -1 with err set. */
int clock_date_valid(const char *s);

/* Adds months to a date, clamping the day to the end of the month (2024-02-29 + 12 = 2025-02-28). */
int clock_date_add_months(const char *date, int months, char out[CLOCK_DATE_LEN]);

/* Adds days (possibly negative) to a calendar date; 0 or -1 with err. */
int clock_date_add_days(const char *date, int days, char out[CLOCK_DATE_LEN]);

/* Returns the whole days from date a to date b (b - a); both must be valid. */
int clock_date_diff_days(const char *a, const char *b);

/* Returns a date as the sortable integer yyyymmdd (a Redis sorted-set score), or 0 if invalid. */
long clock_date_score(const char *date);

#endif
