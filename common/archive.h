/* archive: the record of a ticket archived out of Redis, as one JSON line of
 * its month's file (<archive_dir>/YYYY-MM.jsonl.gz, the Europe/Paris month
 * of its closure), and the filters of `savctl archive search`. Pure: no I/O
 * (the files are common/archfile.c, the moves services/intake/archiving.c).
 *
 * A record: {"v": 1, "id", "digest" (SHA-1 of what Redis held, see
 * archive_collect in common/redis/sav.lua), "month", "state", "closed_at",
 * "archived_at" (UTC ms), "customer_id", "serial", "ticket" {the hash},
 * "timeline" [entries], "prediagnosis", "coverage", "verdict" {hashes},
 * "verdicts" [versions], "quote" {hash}, "quotes" [superseded versions],
 * "notifications" [hashes], "complaints" [hashes], "invoices" {kind: id},
 * "claim" (id or "")}. Hash values stay the strings Redis held. */
#ifndef SAV_ARCHIVE_H
#define SAV_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define ARCHIVE_VERSION 1
#define ARCHIVE_MONTH_LEN 8   /* "YYYY-MM" and its NUL */
#define ARCHIVE_DIGEST_LEN 41 /* 40 hex digits and the NUL */
#define ARCHIVE_SUFFIX ".jsonl.gz"
#define ARCHIVE_INDEX_SUFFIX ".idx"

/* Writes the Europe/Paris month of a UTC instant as YYYY-MM. */
void archive_month(int64_t utc_ms, char out[ARCHIVE_MONTH_LEN]);

/* Checks that s is a month YYYY-MM between 1900-01 and 2199-12; 0 or -1 with err. */
int archive_month_valid(const char *s);

/* Writes "<dir>/<month><suffix>" (suffix ARCHIVE_SUFFIX or ARCHIVE_INDEX_SUFFIX) into out; 0, or -1 with err
 * when the month is not one or the path does not fit. */
int archive_path(const char *dir, const char *month, const char *suffix, char *out, size_t len);

/* Returns 1 and writes its month when name is a month's file "YYYY-MM.jsonl.gz", else 0. */
int archive_file_month(const char *name, char out[ARCHIVE_MONTH_LEN]);

/* Builds a ticket's record from what archive_collect returned (parts: its JSON array; digest, closed_at) and
 * the time of archiving; the month is closed_at's. Returns a new reference, or NULL with err when parts is not
 * the array archive_collect writes. */
json_t *archive_record_build(const char *parts, size_t len, const char *digest, int64_t closed_at,
                             int64_t archived_at);

/* Encodes a record as one line: compact JSON in the record's key order, then '\n'; *len excludes the NUL.
 * Returns the line (caller frees), or NULL with err. */
char *archive_line_encode(const json_t *record, size_t *len);

/* Decodes one line (with or without its '\n') into a record, checking its version, ticket id, digest and
 * month. Returns a new reference, or NULL with err. */
json_t *archive_line_decode(const char *line, size_t len);

/* What `archive search` looks for; NULL or "" for any. */
typedef struct archive_filter {
    const char *ticket;
    const char *customer;
    const char *serial;
    const char *from; /* first month, YYYY-MM */
    const char *to;   /* last month */
} archive_filter;

/* Returns 1 if a month lies within the filter's months, else 0. */
int archive_month_wanted(const archive_filter *f, const char *month);

/* Returns 1 if a record matches every criterion of the filter, else 0. */
int archive_matches(const json_t *record, const archive_filter *f);

#endif
