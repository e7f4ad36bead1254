#include "archive.h"
#include "clock.h"
#include "err.h"
#include "validate.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The sections of archive_collect's array, in its order (common/redis/sav.lua, archive_read). */
enum {
    PART_TICKET, PART_TIMELINE, PART_PREDIAG, PART_COVERAGE, PART_VERDICT, PART_VERDICTS, PART_QUOTE, PART_QUOTES,
    PART_NOTIFICATIONS, PART_COMPLAINTS, PART_INVOICES, PART_CLAIM, PART_COUNT
};

void archive_month(int64_t utc_ms, char out[ARCHIVE_MONTH_LEN]) {
    char date[CLOCK_DATE_LEN];
    clock_date_paris(utc_ms, date);
    snprintf(out, ARCHIVE_MONTH_LEN, "%.7s", date);
}

int archive_month_valid(const char *s) {
    if (s && strlen(s) == 7 && s[4] == '-' && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && isdigit((unsigned char)s[5]) &&
        isdigit((unsigned char)s[6])) {
        int year = atoi(s), month = atoi(s + 5);
        if (year >= 1900 && year <= 2199 && month >= 1 && month <= 12) return 0;
    }
    err_set("\"%s\" is not a month (expected YYYY-MM)", s ? s : "");
    return -1;
}

int archive_path(const char *dir, const char *month, const char *suffix, char *out, size_t len) {
    if (archive_month_valid(month) != 0) return -1;
    int n = snprintf(out, len, "%s/%s%s", dir, month, suffix);
    if (n < 0 || (size_t)n >= len) {
        err_set("archive path %s/%s%s is too long", dir, month, suffix);
        return -1;
    }
    return 0;
}

int archive_file_month(const char *name, char out[ARCHIVE_MONTH_LEN]) {
    char month[ARCHIVE_MONTH_LEN];
    if (strlen(name) != 7 + strlen(ARCHIVE_SUFFIX) || strcmp(name + 7, ARCHIVE_SUFFIX) != 0) return 0;
    memcpy(month, name, 7);
    month[7] = '\0';
    if (archive_month_valid(month) != 0) return 0;
    memcpy(out, month, ARCHIVE_MONTH_LEN);
    return 1;
}

/* cjson writes an empty Lua table as {}: an empty array here. */
static int archive_empty(const json_t *v) {
    return json_is_object(v) && json_object_size(v) == 0;
}

/* Flat name/value pairs (an HGETALL) as an object; NULL when v is not such a list of strings. */
static json_t *archive_pairs(const json_t *v) {
    if (archive_empty(v)) return json_object();
    if (!json_is_array(v) || json_array_size(v) % 2 != 0) return NULL;
    json_t *o = json_object();
    for (size_t i = 0; o && i < json_array_size(v); i += 2) {
        const json_t *k = json_array_get(v, i), *val = json_array_get(v, i + 1);
        if (!json_is_string(k) || !json_is_string(val) ||
            json_object_set(o, json_string_value(k), (json_t *)val) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A JSON document stored as a string (a timeline entry, a verdict version, a superseded quote's HGETALL) as its
 * value, pairs made an object; the string itself when it does not parse. */
static json_t *archive_document(const char *s) {
    json_t *doc = json_loads(s, JSON_DECODE_ANY, NULL);
    if (!doc) return json_string(s);
    json_t *pairs = json_is_array(doc) ? archive_pairs(doc) : NULL;
    if (pairs) {
        json_decref(doc);
        return pairs;
    }
    return doc;
}

/* A list of stored documents; NULL when v is not a list of strings. */
static json_t *archive_documents(const json_t *v) {
    json_t *out = json_array();
    if (archive_empty(v)) return out;
    if (!json_is_array(v)) {
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; out && i < json_array_size(v); i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s) || json_array_append_new(out, archive_document(json_string_value(s))) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* [[id, pairs]...] as a list of objects (each hash keeps its own id field); NULL when malformed. */
static json_t *archive_hashes(const json_t *v) {
    json_t *out = json_array();
    if (archive_empty(v)) return out;
    if (!json_is_array(v)) {
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; out && i < json_array_size(v); i++) {
        const json_t *entry = json_array_get(v, i);
        json_t *h =
            json_is_array(entry) && json_array_size(entry) == 2 ? archive_pairs(json_array_get(entry, 1)) : NULL;
        if (!h || json_array_append_new(out, h) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* [[kind, id]...] as {kind: id}; NULL when malformed. */
static json_t *archive_links(const json_t *v) {
    json_t *out = json_object();
    if (archive_empty(v)) return out;
    if (!json_is_array(v)) {
        json_decref(out);
        return NULL;
    }
    for (size_t i = 0; out && i < json_array_size(v); i++) {
        const json_t *e = json_array_get(v, i);
        const json_t *k = json_array_get(e, 0), *id = json_array_get(e, 1);
        if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_string(k) || !json_is_string(id) ||
            json_object_set(out, json_string_value(k), (json_t *)id) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static const char *archive_str(const json_t *o, const char *name) {
    return json_string_value(json_object_get(o, name)) ?: "";
}

json_t *archive_record_build(const char *parts, size_t len, const char *digest, int64_t closed_at,
                             int64_t archived_at) {
    json_error_t jerr;
    json_t *p = json_loadb(parts, len, 0, &jerr);
    if (!p || !json_is_array(p) || json_array_size(p) != PART_COUNT) {
        err_set("archive record: %s", p ? "not the array of archive_collect" : jerr.text);
        json_decref(p);
        return NULL;
    }
    json_t *ticket = archive_pairs(json_array_get(p, PART_TICKET));
    json_t *timeline = archive_documents(json_array_get(p, PART_TIMELINE));
    json_t *prediag = archive_pairs(json_array_get(p, PART_PREDIAG));
    json_t *coverage = archive_pairs(json_array_get(p, PART_COVERAGE));
    json_t *verdict = archive_pairs(json_array_get(p, PART_VERDICT));
    json_t *verdicts = archive_documents(json_array_get(p, PART_VERDICTS));
    json_t *quote = archive_pairs(json_array_get(p, PART_QUOTE));
    json_t *quotes = archive_documents(json_array_get(p, PART_QUOTES));
    json_t *notifications = archive_hashes(json_array_get(p, PART_NOTIFICATIONS));
    json_t *complaints = archive_hashes(json_array_get(p, PART_COMPLAINTS));
    json_t *invoices = archive_links(json_array_get(p, PART_INVOICES));
    const char *claim = json_string_value(json_array_get(p, PART_CLAIM));
    json_t *record = NULL;
    char month[ARCHIVE_MONTH_LEN];
    archive_month(closed_at, month);
    if (!ticket || !timeline || !prediag || !coverage || !verdict || !verdicts || !quote || !quotes ||
        !notifications || !complaints || !invoices || !claim) {
        err_set("archive record: a section is not what archive_collect writes");
    } else if (validate_ticket_id(archive_str(ticket, "id")) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("archive record: %s", why);
    } else {
        record = json_pack("{s:i,s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:s}",
                           "v", ARCHIVE_VERSION, "id", archive_str(ticket, "id"), "digest", digest, "month", month,
                           "state", archive_str(ticket, "state"), "closed_at", (json_int_t)closed_at, "archived_at",
                           (json_int_t)archived_at, "customer_id", archive_str(ticket, "customer_id"), "serial",
                           archive_str(ticket, "serial"), "ticket", ticket, "timeline", timeline, "prediagnosis",
                           prediag, "coverage", coverage, "verdict", verdict, "verdicts", verdicts, "quote", quote,
                           "quotes", quotes, "notifications", notifications, "complaints", complaints, "invoices",
                           invoices, "claim", claim);
        if (!record) err_set("archive record: out of memory");
    }
    json_decref(ticket), json_decref(timeline), json_decref(prediag), json_decref(coverage), json_decref(verdict);
    json_decref(verdicts), json_decref(quote), json_decref(quotes), json_decref(notifications);
    json_decref(complaints), json_decref(invoices), json_decref(p);
    return record;
}

char *archive_line_encode(const json_t *record, size_t *len) {
    char *text = json_dumps(record, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text) {
        err_set("archive record: cannot encode it as JSON");
        return NULL;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        err_set("archive record: out of memory");
        return NULL;
    }
    line[n] = '\n', line[n + 1] = '\0';
    *len = n + 1;
    return line;
}

static int archive_hex40(const char *s) {
    if (!s || strlen(s) != 40) return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s)) return 0;
    return 1;
}

json_t *archive_line_decode(const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\n') len--;
    json_error_t jerr;
    json_t *r = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *why = NULL;
    if (!r)
        why = jerr.text;
    else if (!json_is_object(r))
        why = "not a JSON object";
    else if (json_integer_value(json_object_get(r, "v")) != ARCHIVE_VERSION)
        why = "not a version 1 record";
    else if (validate_ticket_id(json_string_value(json_object_get(r, "id"))) != 0)
        why = "no ticket id";
    else if (!archive_hex40(json_string_value(json_object_get(r, "digest"))))
        why = "no digest";
    else if (archive_month_valid(json_string_value(json_object_get(r, "month"))) != 0)
        why = "no month";
    else if (!json_is_object(json_object_get(r, "ticket")) || !json_is_integer(json_object_get(r, "closed_at")))
        why = "no ticket or closing time";
    if (!why) return r;
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", why);
    err_set("archive line: %s", copy);
    json_decref(r);
    return NULL;
}

int archive_month_wanted(const archive_filter *f, const char *month) {
    if (f->from && f->from[0] && strcmp(month, f->from) < 0) return 0;
    if (f->to && f->to[0] && strcmp(month, f->to) > 0) return 0;
    return 1;
}

/* 1 when the criterion is unset or the record's field equals it. */
static int archive_same(const json_t *record, const char *name, const char *want) {
    return !want || !want[0] || strcmp(archive_str(record, name), want) == 0;
}

int archive_matches(const json_t *record, const archive_filter *f) {
    return archive_same(record, "id", f->ticket) && archive_same(record, "customer_id", f->customer) &&
           archive_same(record, "serial", f->serial) && archive_month_wanted(f, archive_str(record, "month"));
}
