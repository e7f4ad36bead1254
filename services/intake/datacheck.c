/* savctl check: verifies the data set, as after a restore. Every ticket of
 * the tickets index exists with its timeline, is in the index of its state,
 * and has its customer and product; every notification its list names
 * exists (a packed ticket's value inflates, with its digest, and may stand
 * for its timeline); every state index names only tickets in that state; each year's
 * invoice numbers run from 1 to seq:invoice:<year> without a gap, each
 * invoice indexed and its ticket in Redis or archived; every archived ticket
 * has its line in its month's file, and no file holds a ticket Redis knows
 * nothing of. Read-only: pages of tickets go to check_* Functions, so Redis
 * is never held long; intake's loop is, for as long as the check runs. */
#include "intake.h"
#include "archfile.h"
#include "archive.h"
#include "clock.h"
#include "err.h"
#include "lifecycle.h"
#include "log.h"
#include "pack.h"

#include <dirent.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_PAGE 200
#define CHECK_INVOICE_PAGE 1000
#define CHECK_PROBLEMS_SHOWN 500
#define CHECK_YEARS_MAX 256

/* An archived ticket as `archived` records it, and whether its file holds its line. */
typedef struct check_archived {
    char tid[16];
    char month[ARCHIVE_MONTH_LEN];
    char digest[ARCHIVE_DIGEST_LEN];
    int found;
} check_archived;

typedef struct check {
    service *svc;
    json_t *problems;
    long nproblems;
    json_t *states;      /* state -> tickets */
    long tickets, notifications, lines, duplicate_lines, superseded_lines, files, packed;
    long long packed_bytes, packed_payload_bytes; /* the packed values, and what they inflate to */
    check_archived *archived;
    size_t narchived, cap;
    int years[CHECK_YEARS_MAX];
    long indexed[CHECK_YEARS_MAX]; /* invoices of each year in the invoices index */
    int nyears;
    int failed;          /* Redis or a file could not be read: the check is incomplete */
} check;

static void check_problem(check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void check_problem(check *c, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (c->nproblems++ < CHECK_PROBLEMS_SHOWN) json_array_append_new(c->problems, json_string(text));
}

/* The check could not look at something: that is a problem too, never a silent pass. */
static void check_failed(check *c, const char *what) {
    c->failed = 1;
    check_problem(c, "%s: %s", what, err_get());
}

/* Returns the slot of a year (adding it), or -1 when there are too many. */
static int check_year(check *c, int year) {
    for (int i = 0; i < c->nyears; i++)
        if (c->years[i] == year) return i;
    if (c->nyears == CHECK_YEARS_MAX || year < 1900 || year > 2199) return -1;
    c->years[c->nyears] = year, c->indexed[c->nyears] = 0;
    return c->nyears++;
}

/* ZRANGE of one page of an index (a sorted set of shard 0); NULL with err. */
static redisReply *check_page(check *c, const char *name, long start) {
    char key[STORE_KEY_LEN];
    store_key(service_store(c->svc), 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "ZRANGE"), store_args_add(&a, key);
    store_args_addf(&a, "%ld", start), store_args_addf(&a, "%ld", start + CHECK_PAGE - 1);
    redisReply *r = store_args_call(service_store(c->svc), &a);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set("ZRANGE %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* Calls a check Function on index key's members ids (a Redis array); the reply, or NULL with err. */
static redisReply *check_call(check *c, const char *function, const char *index, const char *arg,
                              const redisReply *ids, size_t from, size_t n) {
    store *st = service_store(c->svc);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    store_key(st, 0, index, key);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL_RO"), store_args_add(&a, function), store_args_add(&a, "1");
    store_args_add(&a, key), store_args_add(&a, prefix);
    if (arg) store_args_add(&a, arg);
    for (size_t i = from; i < from + n; i++) store_args_add(&a, ids->element[i]->str);
    redisReply *r = store_args_call(st, &a);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set("%s: %s", function, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static void check_problems_of(check *c, const redisReply *list) {
    for (size_t i = 0; i < list->elements; i++)
        if (list->element[i]->type == REDIS_REPLY_STRING) check_problem(c, "%s", list->element[i]->str);
}

/* A packed ticket's value inflates, has its digest and holds a packed ticket; its notifications are counted. */
static void check_packed(check *c, const char *tid, const redisReply *value) {
    pack_info info;
    size_t len;
    c->packed++;
    char *payload = pack_decode((const unsigned char *)value->str, value->len, &info, &len);
    json_t *parts = payload ? pack_parts(payload, len) : NULL;
    if (!parts) {
        check_problem(c, "packed:%s cannot be read: %s", tid, err_get());
    } else {
        const char *id = pack_pairs_get(json_array_get(parts, PACK_TICKET), "id");
        if (!id || strcmp(id, tid) != 0) check_problem(c, "packed:%s holds the ticket \"%s\"", tid, id ? id : "");
        c->notifications += (long)json_array_size(json_array_get(parts, PACK_NOTIFICATIONS));
        c->packed_bytes += (long long)value->len, c->packed_payload_bytes += (long long)len;
    }
    json_decref(parts);
    free(payload);
}

/* Every ticket of the tickets index (check_tickets), its state and notifications counted. */
static void check_tickets(check *c) {
    for (long start = 0;; start += CHECK_PAGE) {
        redisReply *ids = check_page(c, "tickets", start);
        if (!ids) {
            check_failed(c, "tickets index");
            return;
        }
        redisReply *r = ids->elements ? check_call(c, "check_tickets", "tickets", NULL, ids, 0, ids->elements) : NULL;
        size_t n = ids->elements;
        for (size_t i = 0; i < n; i++) check_year(c, atoi(ids->element[i]->str + 2));
        freeReplyObject(ids);
        if (n == 0) return;
        if (!r) {
            check_failed(c, "check_tickets");
            return;
        }
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *t = r->element[i];
            if (t->type != REDIS_REPLY_ARRAY || t->elements != 5 || t->element[1]->type != REDIS_REPLY_STRING ||
                t->element[2]->type != REDIS_REPLY_INTEGER || t->element[3]->type != REDIS_REPLY_ARRAY)
                continue;
            c->tickets++;
            c->notifications += t->element[2]->integer;
            if (t->element[4]->type == REDIS_REPLY_STRING) check_packed(c, t->element[0]->str, t->element[4]);
            if (t->element[1]->str[0]) {
                json_t *count = json_object_get(c->states, t->element[1]->str);
                json_object_set_new(c->states, t->element[1]->str, json_integer(json_integer_value(count) + 1));
            }
            check_problems_of(c, t->element[3]);
        }
        freeReplyObject(r);
        if (n < CHECK_PAGE) return;
    }
}

/* Every member of every state index is a ticket in that state. */
static void check_state_indexes(check *c) {
    const char *state;
    for (int s = 0; (state = lifecycle_state_at(s)) != NULL; s++) {
        char index[48];
        snprintf(index, sizeof(index), "state:%s", state);
        for (long start = 0;; start += CHECK_PAGE) {
            redisReply *ids = check_page(c, index, start);
            if (!ids) {
                check_failed(c, index);
                return;
            }
            size_t n = ids->elements;
            redisReply *r = n ? check_call(c, "check_index", index, state, ids, 0, n) : NULL;
            freeReplyObject(ids);
            if (n && !r) {
                check_failed(c, "check_index");
                return;
            }
            if (r) check_problems_of(c, r), freeReplyObject(r);
            if (n < CHECK_PAGE) break;
        }
    }
}

static int check_archived_cmp(const void *a, const void *b) {
    return strcmp(((const check_archived *)a)->tid, ((const check_archived *)b)->tid);
}

static int check_archived_add(check *c, const char *tid, const char *where) {
    if (c->narchived == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        check_archived *bigger = realloc(c->archived, cap * sizeof(*bigger));
        if (!bigger) {
            err_set("out of memory");
            return -1;
        }
        c->archived = bigger, c->cap = cap;
    }
    check_archived *e = &c->archived[c->narchived];
    if (strlen(where) != 7 + 1 + 40 || where[7] != ':' || strlen(tid) >= sizeof(e->tid)) {
        check_problem(c, "archived names %s as \"%s\": not <month>:<digest>", tid, where);
        return 0;
    }
    snprintf(e->tid, sizeof(e->tid), "%s", tid);
    snprintf(e->month, sizeof(e->month), "%.7s", where);
    snprintf(e->digest, sizeof(e->digest), "%s", where + 8);
    e->found = 0;
    c->narchived++;
    check_year(c, atoi(tid + 2));
    return 0;
}

/* Reads `archived` (HSCAN) into c->archived; none of its tickets may still be in Redis (check_index). */
static void check_archived_index(check *c) {
    char key[STORE_KEY_LEN];
    store_key(service_store(c->svc), 0, "archived", key);
    char cursor[32] = "0";
    do {
        const char *argv[] = {"HSCAN", key, cursor, "COUNT", "500"};
        size_t lens[] = {5, strlen(key), strlen(cursor), 5, 3};
        redisReply *r = store_call(service_store(c->svc), 5, argv, lens);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r) err_set("HSCAN %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            if (r) freeReplyObject(r);
            {
                check_failed(c, "archived index");
                return;
            }
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *flat = r->element[1];
        redisReply *fields[CHECK_PAGE];
        redisReply ids = {.type = REDIS_REPLY_ARRAY, .elements = 0, .element = fields};
        for (size_t i = 0; i + 1 < flat->elements; i += 2) {
            if (check_archived_add(c, flat->element[i]->str, flat->element[i + 1]->str) != 0) {
                freeReplyObject(r);
                check_failed(c, "archived index");
                return;
            }
            fields[ids.elements++] = flat->element[i];
            if (ids.elements < CHECK_PAGE && i + 3 < flat->elements) continue;
            redisReply *p = check_call(c, "check_index", "archived", "", &ids, 0, ids.elements);
            ids.elements = 0;
            if (!p) {
                freeReplyObject(r);
                check_failed(c, "check_index archived");
                return;
            }
            check_problems_of(c, p);
            freeReplyObject(p);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (c->narchived) qsort(c->archived, c->narchived, sizeof(*c->archived), check_archived_cmp);
}

/* Invoice numbers: the index counted per year, then each year's series 1..seq checked (check_invoices). */
static void check_invoices(check *c) {
    for (long start = 0;; start += CHECK_PAGE) {
        redisReply *ids = check_page(c, "invoices", start);
        if (!ids) {
            check_failed(c, "invoices index");
            return;
        }
        size_t n = ids->elements;
        for (size_t i = 0; i < n; i++) {
            const char *id = ids->element[i]->str;
            int slot = strncmp(id, "FAC-", 4) == 0 ? check_year(c, atoi(id + 4)) : -1;
            if (slot < 0) check_problem(c, "%s in the invoices index is not an invoice number", id);
            else c->indexed[slot]++;
        }
        freeReplyObject(ids);
        if (n < CHECK_PAGE) break;
    }
}

static void check_invoice_years(check *c, json_t *counts) {
    store *st = service_store(c->svc);
    for (int y = 0; y < c->nyears; y++) {
        char name[48], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], year[8];
        snprintf(year, sizeof(year), "%d", c->years[y]);
        snprintf(name, sizeof(name), "seq:invoice:%s", year);
        store_key(st, 0, name, key);
        const char *argv[] = {"GET", key};
        size_t lens[] = {3, strlen(key)};
        redisReply *r = store_call(st, 2, argv, lens);
        if (!r) {
            check_failed(c, name);
            return;
        }
        long seq = r->type == REDIS_REPLY_STRING ? atol(r->str) : 0;
        freeReplyObject(r);
        if (seq == 0 && c->indexed[y] == 0) continue;
        json_object_set_new(counts, year, json_pack("{s:I,s:I}", "seq", (json_int_t)seq, "indexed",
                                                    (json_int_t)c->indexed[y]));
        if (seq != c->indexed[y])
            check_problem(c, "seq:invoice:%s is %ld but the invoices index holds %ld invoice(s) of %s", year, seq,
                          c->indexed[y], year);
        store_key(st, 0, "invoices", key);
        store_shard_prefix(st, 0, prefix);
        for (long from = 1; from <= seq; from += CHECK_INVOICE_PAGE) {
            long to = from + CHECK_INVOICE_PAGE - 1 < seq ? from + CHECK_INVOICE_PAGE - 1 : seq;
            store_args a;
            store_args_init(&a);
            store_args_add(&a, "FCALL_RO"), store_args_add(&a, "check_invoices"), store_args_add(&a, "1");
            store_args_add(&a, key), store_args_add(&a, prefix), store_args_add(&a, year);
            store_args_addf(&a, "%ld", from), store_args_addf(&a, "%ld", to);
            r = store_args_call(st, &a);
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                if (r) err_set("check_invoices: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
                if (r) freeReplyObject(r);
                {
                    check_failed(c, "check_invoices");
                    return;
                }
            }
            check_problems_of(c, r);
            freeReplyObject(r);
        }
    }
}

/* A month's file being read. */
typedef struct check_file {
    check *c;
    const char *month;
    const char *path;
} check_file;

/* 1 if the ticket's hash is in Redis, 0 if not, -1 Redis unreachable. */
static int check_live(check *c, const char *tid) {
    char key[STORE_KEY_LEN], name[48];
    snprintf(name, sizeof(name), "ticket:%s", tid);
    store_key(service_store(c->svc), 0, name, key);
    const char *argv[] = {"EXISTS", key};
    size_t lens[] = {6, strlen(key)};
    redisReply *r = store_call(service_store(c->svc), 2, argv, lens);
    if (!r) return -1;
    int live = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return live;
}

static int check_file_line(void *ctx, const char *line, size_t len) {
    check_file *f = ctx;
    check *c = f->c;
    c->lines++;
    json_t *rec = archive_line_decode(line, len);
    if (!rec) {
        check_problem(c, "%s: line %ld unreadable: %s", f->path, c->lines, err_get());
        return 0;
    }
    check_archived key = {{0}, {0}, {0}, 0};
    snprintf(key.tid, sizeof(key.tid), "%s", json_string_value(json_object_get(rec, "id")));
    const char *digest = json_string_value(json_object_get(rec, "digest"));
    const char *month = json_string_value(json_object_get(rec, "month"));
    check_archived *e =
        c->narchived ? bsearch(&key, c->archived, c->narchived, sizeof(*c->archived), check_archived_cmp) : NULL;
    int rc = 0;
    if (strcmp(month, f->month) != 0) {
        check_problem(c, "%s: %s is a record of %s", f->path, key.tid, month);
    } else if (e && strcmp(e->month, month) == 0 && strcmp(e->digest, digest) == 0) {
        /* Written twice: a crash came between the commit and the removal. Search shows it once. */
        if (e->found++) c->duplicate_lines++;
    } else if (e) {
        c->superseded_lines++;
    } else {
        int live = check_live(c, key.tid);
        if (live < 0) rc = -1;
        else if (live) c->superseded_lines++;
        else check_problem(c, "%s: %s is neither in Redis nor recorded as archived", f->path, key.tid);
    }
    json_decref(rec);
    return rc;
}

static int check_month_cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

/* Reads every month's file of the archive directory and those `archived` names; every archived ticket must
 * have been found in its own. */
static void check_files(check *c, json_t *counts) {
    static char months[1200][ARCHIVE_MONTH_LEN];
    int n = 0;
    char dir[PATH_MAX];
    archiving_dir(c->svc, dir, sizeof(dir));
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 1200)
        if (archive_file_month(e->d_name, months[n])) n++;
    if (d) closedir(d);
    for (size_t i = 0; i < c->narchived && n < 1200; i++) {
        int known = 0;
        for (int j = 0; j < n && !known; j++) known = strcmp(months[j], c->archived[i].month) == 0;
        if (!known) memcpy(months[n++], c->archived[i].month, ARCHIVE_MONTH_LEN);
    }
    qsort(months, (size_t)n, ARCHIVE_MONTH_LEN, check_month_cmp);
    long long bytes = 0, ignored = 0;
    for (int i = 0; i < n; i++) {
        char data[PATH_MAX], idx[PATH_MAX];
        archfile_stats st;
        if (archive_path(dir, months[i], ARCHIVE_SUFFIX, data, sizeof(data)) != 0 ||
            archive_path(dir, months[i], ARCHIVE_INDEX_SUFFIX, idx, sizeof(idx)) != 0)
            continue;
        check_file f = {c, months[i], data};
        if (archfile_read(data, idx, check_file_line, &f, &st) != 0) check_failed(c, data);
        c->files += st.members > 0;
        bytes += st.committed_bytes, ignored += st.ignored_bytes;
    }
    for (size_t i = 0; i < c->narchived; i++)
        if (!c->archived[i].found)
            check_problem(c, "%s is recorded as archived in %s (digest %.12s...) but no line of %s/%s%s holds it",
                          c->archived[i].tid, c->archived[i].month, c->archived[i].digest, dir, c->archived[i].month,
                          ARCHIVE_SUFFIX);
    json_object_set_new(counts, "archive_dir", json_string(dir));
    json_object_set_new(counts, "archive_files", json_integer(c->files));
    json_object_set_new(counts, "archive_lines", json_integer(c->lines));
    json_object_set_new(counts, "archive_bytes", json_integer(bytes));
    json_object_set_new(counts, "archive_duplicate_lines", json_integer(c->duplicate_lines));
    json_object_set_new(counts, "archive_superseded_lines", json_integer(c->superseded_lines));
    json_object_set_new(counts, "archive_uncommitted_bytes", json_integer(ignored));
}

static long check_zcard(check *c, const char *name) {
    char key[STORE_KEY_LEN];
    store_key(service_store(c->svc), 0, name, key);
    const char *argv[] = {"ZCARD", key};
    size_t lens[] = {5, strlen(key)};
    redisReply *r = store_call(service_store(c->svc), 2, argv, lens);
    long n = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    if (r) freeReplyObject(r);
    return n;
}

void datacheck_run(service *svc, const Sav__Command *cmd, service_reply *reply) {
    (void)cmd;
    check c = {.svc = svc, .problems = json_array(), .states = json_object()};
    int64_t started = clock_mono_ms();
    check_year(&c, clock_year_paris(clock_now_ms()));
    check_tickets(&c);
    check_state_indexes(&c);
    check_archived_index(&c);
    check_invoices(&c);
    json_t *invoices = json_object(), *counts = json_object();
    check_invoice_years(&c, invoices);
    json_object_set_new(counts, "tickets", json_integer(c.tickets));
    json_object_set_new(counts, "states", c.states);
    json_object_set_new(counts, "notifications", json_integer(c.notifications));
    json_object_set_new(counts, "packed", json_integer(c.packed));
    json_object_set_new(counts, "packed_bytes", json_integer(c.packed_bytes));
    json_object_set_new(counts, "packed_payload_bytes", json_integer(c.packed_payload_bytes));
    json_object_set_new(counts, "customers", json_integer(check_zcard(&c, "customers")));
    json_object_set_new(counts, "invoices", invoices);
    json_object_set_new(counts, "archived", json_integer((json_int_t)c.narchived));
    check_files(&c, counts);
    int ok = c.nproblems == 0;
    log_info(NULL, NULL, "data check by %s: %ld ticket(s), %zu archived, %ld problem(s), %lld ms", service_actor(svc),
             c.tickets, c.narchived, c.nproblems, (long long)(clock_mono_ms() - started));
    service_reply_json(reply, json_pack("{s:b,s:b,s:o,s:o,s:I,s:I}", "consistent", ok, "complete", !c.failed, "counts",
                                        counts, "problems", c.problems, "problems_total", (json_int_t)c.nproblems,
                                        "elapsed_ms", (json_int_t)(clock_mono_ms() - started)));
    free(c.archived);
}
