/* Archiving: closed and cancelled tickets whose last change is older than
 * intake.archive_after_days leave Redis for intake.archive_dir, one
 * compressed file of JSON lines per month of closure (common/archive.c for
 * the records, common/archfile.c for the files).
 *
 * Order, so that a SIGKILL at any instant neither loses a ticket nor shows it
 * twice: (1) archive_collect reads each ticket's record and its digest;
 * (2) the records of a month are appended to its file as one gzip member,
 * fsynced, then committed in the file's index, fsynced; (3) archive_remove
 * deletes each ticket in one call, only if Redis still holds exactly what was
 * written (same digest), and records "<month>:<digest>" in `archived`. A crash
 * before (2) ends leaves an uncommitted tail, cut off by the next writer; a
 * crash between (2) and (3) leaves tickets in both places: the next run finds
 * their lines in the file's last appends, writes only the others, and removes
 * them all. Should a line be written twice all the same (its ticket changed
 * and changed back), `archive search` still shows one record per ticket: the
 * line `archived` names, and none while the ticket is in Redis. A packed
 * ticket (packing.c) is unpacked first: its record is the one it would have
 * had, never packed. */
#include "intake.h"
#include "archfile.h"
#include "archive.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "validate.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define ARCHIVING_CHUNK 100    /* tickets per append: one gzip member per month, then their removals */
#define ARCHIVING_TICK_MAX 200 /* tickets archived per timer run: the loop serves requests in between */
#define ARCHIVING_RUN_MAX 100000
#define ARCHIVING_KEPT_SHOWN 20
#define ARCHIVING_SEARCH_MAX 1000 /* and what fits in half of bus.socket_max_bytes */
#define ARCHIVING_MONTHS_MAX 1200 /* a century of month files */
#define ARCHIVING_BACK_MAX 100    /* appends read back for the records a chain of crashes left written */

static const char *const archiving_states[] = {"closed", "cancelled"};
#define ARCHIVING_NSTATES 2

/* Where the timer resumes in each state index: the tickets before it stay (a complaint open, an invoice
 * unpaid...), and the next runs look further, back to the start at the end. */
static long archiving_cursor[ARCHIVING_NSTATES];

/* One ticket collected: its line, and what its removal must match. */
typedef struct archiving_item {
    char tid[16];
    char digest[ARCHIVE_DIGEST_LEN];
    char month[ARCHIVE_MONTH_LEN];
    char *line;
    size_t len;
    int written; /* its month's append committed it, or had before */
} archiving_item;

/* What a pass did, for the log and `archive run`. */
typedef struct archiving_report {
    long examined, archived, already, changed, kept, failed;
    long rewrites_avoided; /* records a crash left committed but not removed: found in the file, not written again */
    long long bytes, discarded;
    json_t *files;   /* month -> tickets archived */
    json_t *kept_sample;
    int more;        /* the limit was reached before the end of the indexes */
} archiving_report;

void archiving_dir(service *svc, char *out, size_t len) {
    const settings *cfg = service_settings(svc);
    settings_resolve_path(cfg, cfg->archive_dir, out, len);
}

/* 1 if r is an array of n replies whose first is the string word. */
static int archiving_reply_is(const redisReply *r, size_t n, const char *word) {
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == n && r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, word) == 0;
}

int archiving_locate(service *svc, const char *tid, char *path, size_t len, char month[ARCHIVE_MONTH_LEN]) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], dir[PATH_MAX];
    store_key(st, store_ticket_shard(st, tid), "archived", key);
    const char *argv[] = {"HGET", key, tid};
    size_t lens[] = {4, strlen(key), strlen(tid)};
    redisReply *r = store_call(st, 3, argv, lens);
    if (!r) return -1;
    int found = r->type == REDIS_REPLY_STRING && r->len > 7 && r->str[7] == ':';
    if (found) {
        snprintf(month, ARCHIVE_MONTH_LEN, "%.7s", r->str);
        archiving_dir(svc, dir, sizeof(dir));
        if (archive_path(dir, month, ARCHIVE_SUFFIX, path, len) != 0) found = 0;
    }
    freeReplyObject(r);
    return found;
}

static void archiving_keep(archiving_report *rep, const char *tid, const char *why) {
    rep->kept++;
    if (json_array_size(rep->kept_sample) < ARCHIVING_KEPT_SHOWN)
        json_array_append_new(rep->kept_sample, json_pack("{s:s,s:s}", "ticket", tid, "why", why));
}

/* Calls archive_collect on one ticket; a packed one is unpacked first (packing.c), so that its record is
 * written as any other's. The reply, or NULL (Redis unreachable, err set; or *kept: the ticket stays, err says
 * why). */
static redisReply *archiving_collect_call(service *svc, const char *tid, int64_t cutoff, int *kept) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, tid);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[48];
    snprintf(name, sizeof(name), "ticket:%s", tid);
    store_key(st, shard, name, key);
    store_shard_prefix(st, shard, prefix);
    *kept = 0;
    for (int round = 0;; round++) {
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "FCALL_RO"), store_args_add(&a, "archive_collect"), store_args_add(&a, "1");
        store_args_add(&a, key), store_args_add(&a, prefix), store_args_add(&a, tid);
        store_args_addf(&a, "%lld", (long long)cutoff);
        redisReply *r = store_args_call(st, &a);
        int packed = archiving_reply_is(r, 2, "skip") && r->element[1]->type == REDIS_REPLY_STRING &&
                     strcmp(r->element[1]->str, "packed") == 0;
        if (!packed || round == 1) return r;
        freeReplyObject(r);
        if (packing_unpack(svc, tid) != 0) {
            *kept = store_healthy(st);
            return NULL;
        }
    }
}

/* Reads one ticket's record (archive_collect) into item. Returns 1 collected, 0 kept in Redis (reported, and logged
 * when its record is unusable), -1 Redis unreachable (err set). */
static int archiving_collect(service *svc, const char *tid, int64_t cutoff, archiving_item *item,
                             archiving_report *rep) {
    int kept;
    redisReply *r = archiving_collect_call(svc, tid, cutoff, &kept);
    if (!r && kept) {
        rep->examined++;
        log_error(tid, NULL, "not archived: %s", err_get());
        archiving_keep(rep, tid, err_get());
        return 0;
    }
    if (!r) return -1;
    rep->examined++;
    int rc = 0;
    if (r->type == REDIS_REPLY_NIL) {
        archiving_keep(rep, tid, "listed in a state index without its ticket (savctl check)");
    } else if (archiving_reply_is(r, 2, "skip") && r->element[1]->type == REDIS_REPLY_STRING) {
        archiving_keep(rep, tid, r->element[1]->str);
    } else if (archiving_reply_is(r, 5, "ok") && r->element[1]->type == REDIS_REPLY_STRING &&
               r->element[1]->len == ARCHIVE_DIGEST_LEN - 1 && r->element[2]->type == REDIS_REPLY_STRING &&
               r->element[4]->type == REDIS_REPLY_STRING) {
        int64_t closed = atoll(r->element[2]->str);
        json_t *record = archive_record_build(r->element[4]->str, r->element[4]->len, r->element[1]->str, closed,
                                              clock_now_ms());
        memset(item, 0, sizeof(*item));
        item->line = record ? archive_line_encode(record, &item->len) : NULL;
        if (item->line) {
            snprintf(item->tid, sizeof(item->tid), "%s", tid);
            snprintf(item->digest, sizeof(item->digest), "%s", r->element[1]->str);
            archive_month(closed, item->month);
            rc = 1;
        } else {
            log_error(tid, NULL, "not archived: %s", err_get());
            archiving_keep(rep, tid, err_get());
        }
        json_decref(record);
    } else {
        /* A bug or a refusal, not an outage: this ticket stays, the others go on. */
        log_error(tid, NULL, "archive_collect: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        archiving_keep(rep, tid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply from archive_collect");
    }
    freeReplyObject(r);
    return rc;
}

/* Removes one written ticket (archive_remove); counts the outcome. */
static void archiving_remove(service *svc, const archiving_item *it, int64_t cutoff, archiving_report *rep) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, it->tid);
    char key[STORE_KEY_LEN], archived[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[48];
    snprintf(name, sizeof(name), "ticket:%.15s", it->tid);
    store_key(st, shard, name, key);
    store_key(st, shard, "archived", archived);
    store_shard_prefix(st, shard, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "archive_remove"), store_args_add(&a, "2");
    store_args_add(&a, key), store_args_add(&a, archived), store_args_add(&a, prefix), store_args_add(&a, it->tid);
    store_args_addf(&a, "%lld", (long long)cutoff);
    store_args_add(&a, it->digest), store_args_add(&a, it->month);
    store_args_addf(&a, "%d", service_settings(svc)->pickup_reminders.n);
    redisReply *r = store_args_call(st, &a);
    int already = archiving_reply_is(r, 2, "already");
    if (archiving_reply_is(r, 2, "removed") || already) {
        rep->archived++;
        rep->already += already;
        json_int_t n = json_integer_value(json_object_get(rep->files, it->month));
        json_object_set_new(rep->files, it->month, json_integer(n + 1));
        log_debug(it->tid, NULL, "archived in %s%s", it->month, already ? " (removed before)" : "");
    } else if (archiving_reply_is(r, 2, "changed")) {
        /* Its line stays in the file, superseded: `archived` does not name it. */
        rep->changed++;
        archiving_keep(rep, it->tid, "changed while it was being archived");
    } else if (archiving_reply_is(r, 2, "skip") && r->element[1]->type == REDIS_REPLY_STRING) {
        archiving_keep(rep, it->tid, r->element[1]->str);
    } else {
        rep->failed++;
        log_warn(it->tid, NULL, "not removed from Redis after archiving (the next run retries): %s",
                 !r ? err_get() : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    if (r) freeReplyObject(r);
}

/* Collects "<id>:<digest>" of each line of a file's last append. */
static int archiving_seen_line(void *ctx, const char *line, size_t len) {
    json_t *rec = archive_line_decode(line, len);
    if (rec) {
        char key[64];
        snprintf(key, sizeof(key), "%s:%s", json_string_value(json_object_get(rec, "id")),
                 json_string_value(json_object_get(rec, "digest")));
        json_object_set_new(ctx, key, json_true());
    }
    json_decref(rec);
    return 0;
}

/* Marks the items of month that the n-th last append of its file holds; returns how many (-1 with err, -2 when
 * there is no such append). */
static int archiving_written_before(const char *data, const char *idx, int n, const char *month,
                                    archiving_item *items, size_t nitems) {
    json_t *seen = json_object();
    int rc = archfile_read_back(data, idx, n, archiving_seen_line, seen), found = 0;
    for (size_t i = 0; rc == 0 && i < nitems; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%.15s:%.40s", items[i].tid, items[i].digest);
        if (strcmp(items[i].month, month) == 0 && !items[i].written && json_object_get(seen, key))
            items[i].written = 1, found++;
    }
    json_decref(seen);
    return rc < 0 ? -1 : rc == 2 ? -2 : found;
}

/* Appends the lines of the items of one month as one commit, but those its file holds already: a crash came after
 * their commit and before their removals. Removals go in index order and the next chunk begins with the tickets
 * left, so they are in the file's last appends: each append read back holds some, until one holds none. 0 or -1
 * (err set). */
static int archiving_write_month(const char *dir, const char *month, archiving_item *items, size_t nitems,
                                 archiving_report *rep) {
    char data[PATH_MAX], idx[PATH_MAX];
    if (archive_path(dir, month, ARCHIVE_SUFFIX, data, sizeof(data)) != 0 ||
        archive_path(dir, month, ARCHIVE_INDEX_SUFFIX, idx, sizeof(idx)) != 0)
        return -1;
    int before = 0;
    for (int n = 0;; n++) {
        int found = n <= ARCHIVING_BACK_MAX ? archiving_written_before(data, idx, n, month, items, nitems) : 0;
        if (found == -1) return -1;
        if (found <= 0) break;
        before += found;
    }
    if (before)
        log_info(NULL, NULL, "archive %s: %d record(s) committed before a crash, not written again", month, before);
    rep->rewrites_avoided += before;
    size_t len = 0;
    for (size_t i = 0; i < nitems; i++)
        if (strcmp(items[i].month, month) == 0 && !items[i].written) len += items[i].len;
    char *buf = len ? malloc(len) : NULL;
    if (len && !buf) {
        err_set("out of memory");
        return -1;
    }
    size_t pos = 0;
    for (size_t i = 0; i < nitems; i++)
        if (strcmp(items[i].month, month) == 0 && !items[i].written)
            memcpy(buf + pos, items[i].line, items[i].len), pos += items[i].len;
    long long discarded = 0;
    int rc = len ? archfile_append(data, idx, buf, len, &discarded) : 0;
    free(buf);
    if (rc != 0) return -1;
    for (size_t i = 0; i < nitems; i++)
        if (strcmp(items[i].month, month) == 0) items[i].written = 1;
    rep->bytes += (long long)len;
    rep->discarded += discarded;
    if (discarded)
        log_warn(NULL, NULL, "archive %s: %lld uncommitted bytes (an append cut by a crash) cut off", data, discarded);
    return 0;
}

/* Writes each month's lines (commit), then removes the tickets whose month was committed. 0 or -1 (logged). */
static int archiving_commit(service *svc, const char *dir, archiving_item *items, size_t nitems, int64_t cutoff,
                            archiving_report *rep) {
    int rc = 0;
    for (size_t i = 0; i < nitems; i++) {
        int first = 1;
        for (size_t j = 0; j < i && first; j++) first = strcmp(items[j].month, items[i].month) != 0;
        if (first && archiving_write_month(dir, items[i].month, items, nitems, rep) != 0) {
            log_error(NULL, NULL, "archive %s not written, its tickets stay in Redis: %s", items[i].month, err_get());
            rc = -1;
        }
    }
    for (size_t i = 0; i < nitems; i++)
        if (items[i].written) archiving_remove(svc, &items[i], cutoff, rep);
    return rc;
}

/* One chunk of a state's index: up to want tickets collected from *cursor on, written and removed. Returns how
 * many were collected, or -1 (err set, or a write failed). */
static long archiving_chunk(service *svc, const char *dir, int state, long *cursor, long want, int64_t cutoff,
                            archiving_report *rep) {
    char key[STORE_KEY_LEN], index[32], max[24];
    snprintf(index, sizeof(index), "state:%s", archiving_states[state]);
    store_key(service_store(svc), 0, index, key);
    snprintf(max, sizeof(max), "%lld", (long long)cutoff);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "ZRANGEBYSCORE"), store_args_add(&a, key), store_args_add(&a, "-inf"), store_args_add(&a, max);
    store_args_add(&a, "LIMIT"), store_args_addf(&a, "%ld", *cursor), store_args_addf(&a, "%ld", want);
    redisReply *ids = store_args_call(service_store(svc), &a);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        if (ids) err_set("ZRANGEBYSCORE %s: %s", key, ids->type == REDIS_REPLY_ERROR ? ids->str : "not an array");
        if (ids) freeReplyObject(ids);
        return -1;
    }
    archiving_item items[ARCHIVING_CHUNK];
    size_t nitems = 0;
    long rc = 0;
    for (size_t i = 0; i < ids->elements && i < ARCHIVING_CHUNK && rc == 0; i++) {
        int got = archiving_collect(svc, ids->element[i]->str, cutoff, &items[nitems], rep);
        if (got < 0) rc = -1;
        else if (got == 0) (*cursor)++;
        else nitems++;
    }
    long kept_before = rep->kept, failed_before = rep->failed;
    if (rc == 0) {
        if (archiving_commit(svc, dir, items, nitems, cutoff, rep) != 0) rc = -1;
        /* Tickets that stayed after all (changed meanwhile, not removed, their month not written) are passed over
         * too; after an outage the same ones are read again. */
        *cursor += rep->kept - kept_before + rep->failed - failed_before;
        for (size_t i = 0; i < nitems; i++) *cursor += !items[i].written;
    }
    for (size_t i = 0; i < nitems; i++) free(items[i].line);
    if (rc == 0) rc = (long)ids->elements;
    freeReplyObject(ids);
    return rc;
}

/* Archives up to limit tickets, each state's index from cursors[] on. 0, 1 when another process holds the lock,
 * -1 with err. */
static int archiving_pass(service *svc, long limit, long cursors[ARCHIVING_NSTATES], archiving_report *rep) {
    const settings *cfg = service_settings(svc);
    char dir[PATH_MAX];
    archiving_dir(svc, dir, sizeof(dir));
    int64_t cutoff = clock_now_ms() - (int64_t)cfg->archive_after_days * DAY_MS;
    int lock = archfile_lock(dir);
    if (lock == -2) return 1;
    if (lock < 0) return -1;
    int rc = 0;
    for (int s = 0; s < ARCHIVING_NSTATES && rc == 0; s++) {
        for (;;) {
            long left = limit - rep->archived;
            if (left <= 0) {
                rep->more = 1;
                break;
            }
            long got = archiving_chunk(svc, dir, s, &cursors[s], left < ARCHIVING_CHUNK ? left : ARCHIVING_CHUNK,
                                       cutoff, rep);
            if (got < 0) rc = -1;
            if (got <= 0) break;
        }
        /* The end of the index: the next timer run starts again from its beginning. */
        if (rc == 0 && !rep->more) cursors[s] = 0;
    }
    archfile_unlock(lock);
    return rc;
}

static void archiving_report_init(archiving_report *rep) {
    memset(rep, 0, sizeof(*rep));
    rep->files = json_object();
    rep->kept_sample = json_array();
}

static void archiving_report_free(archiving_report *rep) {
    json_decref(rep->files);
    json_decref(rep->kept_sample);
}

void archiving_tick(service *svc) {
    if (service_settings(svc)->archive_after_days == 0) return;
    archiving_report rep;
    archiving_report_init(&rep);
    int rc = archiving_pass(svc, ARCHIVING_TICK_MAX, archiving_cursor, &rep);
    if (rc < 0) log_warn(NULL, NULL, "archiving stopped, the next run resumes: %s", err_get());
    if (rep.archived || rep.failed) {
        char *files = json_dumps(rep.files, JSON_COMPACT);
        log_info(NULL, NULL, "archived %ld ticket(s) (%lld bytes of records) into %s; %ld kept in Redis", rep.archived,
                 rep.bytes, files ? files : "?", rep.kept);
        free(files);
    }
    archiving_report_free(&rep);
}

void archiving_run(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long limit;
    const settings *cfg = service_settings(svc);
    if (command_int(cmd, "limit", 1, ARCHIVING_RUN_MAX, 1000, &limit) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (cfg->archive_after_days == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "archiving is off (intake.archive_after_days = 0)");
        return;
    }
    archiving_report rep;
    archiving_report_init(&rep);
    long cursors[ARCHIVING_NSTATES] = {0};
    char dir[PATH_MAX], cutoff[40];
    archiving_dir(svc, dir, sizeof(dir));
    int rc = archiving_pass(svc, limit, cursors, &rep);
    clock_format_utc(clock_now_ms() - (int64_t)cfg->archive_after_days * DAY_MS, cutoff, sizeof(cutoff));
    if (rc == 1) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "another process is archiving into %s (its "
                            ".lock is held): try again later", dir);
    } else if (rc < 0 && rep.archived == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "archiving failed: %s", err_get());
    } else {
        log_info(NULL, NULL, "archive run by %s: %ld ticket(s) archived, %ld kept", service_actor(svc), rep.archived,
                 rep.kept);
        json_t *doc = json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:I,s:I,s:O,s:b,s:o}", "dir", dir,
                                "cutoff", cutoff, "after_days", cfg->archive_after_days, "examined",
                                (json_int_t)rep.examined, "archived", (json_int_t)rep.archived, "already_removed",
                                (json_int_t)rep.already, "rewrites_avoided", (json_int_t)rep.rewrites_avoided,
                                "changed", (json_int_t)rep.changed, "kept", (json_int_t)rep.kept, "failed",
                                (json_int_t)rep.failed, "files", rep.files, "bytes_written", (json_int_t)rep.bytes,
                                "discarded_bytes", (json_int_t)rep.discarded, "kept_sample", rep.kept_sample, "more",
                                rep.more, "error", rc < 0 ? json_string(err_get()) : json_null());
        service_reply_json(reply, doc);
    }
    archiving_report_free(&rep);
}

/* ---- search --------------------------------------------------------------- */

static int archiving_month_cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

/* The months of the archive directory's files the filter wants, sorted; how many (0 without a directory). */
static int archiving_months(const char *dir, const archive_filter *f, char (*out)[ARCHIVE_MONTH_LEN], int max) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < max) {
        char month[ARCHIVE_MONTH_LEN];
        if (archive_file_month(e->d_name, month) && archive_month_wanted(f, month))
            memcpy(out[n++], month, sizeof(month));
    }
    closedir(d);
    qsort(out, (size_t)n, ARCHIVE_MONTH_LEN, archiving_month_cmp);
    return n;
}

/* A search in progress. */
typedef struct archiving_search {
    service *svc;
    const archive_filter *filter;
    const char *file;
    json_t *found;      /* the records shown, in file order */
    json_t *shown;      /* ticket id -> true */
    long limit;
    size_t bytes, budget;
    long lines, duplicates, unreadable;
    int more;
} archiving_search;

/* Whether a line of month's file is the ticket's archived record: 1 yes (confirmed by `archived`), 2 an
 * archived record Redis no longer knows of (its `archived` entry was lost), 0 superseded (another line is, or the
 * ticket is back in Redis), -1 Redis unreachable. */
static int archiving_confirmed(service *svc, const char *tid, const char *month, const char *digest) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], tkey[STORE_KEY_LEN], name[48], want[ARCHIVE_MONTH_LEN + ARCHIVE_DIGEST_LEN + 1];
    int shard = store_ticket_shard(st, tid);
    store_key(st, shard, "archived", key);
    snprintf(name, sizeof(name), "ticket:%s", tid);
    store_key(st, shard, name, tkey);
    snprintf(want, sizeof(want), "%s:%s", month, digest);
    const char *argv[] = {"HGET", key, tid};
    size_t lens[] = {4, strlen(key), strlen(tid)};
    redisReply *r = store_call(st, 3, argv, lens);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_STRING ? strcmp(r->str, want) == 0 : -2;
    freeReplyObject(r);
    if (rc != -2) return rc;
    const char *eargv[] = {"EXISTS", tkey};
    size_t elens[] = {6, strlen(tkey)};
    r = store_call(st, 2, eargv, elens);
    if (!r) return -1;
    rc = r->type == REDIS_REPLY_INTEGER && r->integer == 0 ? 2 : 0;
    freeReplyObject(r);
    return rc;
}

static int archiving_search_line(void *ctx, const char *line, size_t len) {
    archiving_search *s = ctx;
    s->lines++;
    json_t *rec = archive_line_decode(line, len);
    if (!rec) {
        s->unreadable++;
        return 0;
    }
    int rc = 0;
    const char *tid = json_string_value(json_object_get(rec, "id"));
    if (archive_matches(rec, s->filter)) {
        int c = json_object_get(s->shown, tid) ? 0 : archiving_confirmed(s->svc, tid,
                                                    json_string_value(json_object_get(rec, "month")),
                                                    json_string_value(json_object_get(rec, "digest")));
        if (c < 0) {
            rc = -1;
        } else if (c == 0) {
            s->duplicates++;
        } else if ((long)json_array_size(s->found) >= s->limit || s->bytes + len > s->budget) {
            s->more = 1;
            rc = 1;
        } else {
            json_object_set_new(rec, "file", json_string(s->file));
            json_object_set_new(rec, "confirmed", json_boolean(c == 1));
            json_object_set_new(s->shown, tid, json_true());
            json_array_append(s->found, rec);
            s->bytes += len;
        }
    }
    json_decref(rec);
    return rc;
}

/* Attaches each record's customer as Redis holds it now; an erased customer's messages lose their recipient,
 * subject and text here too (the file keeps what was archived before the erasure). */
static void archiving_customers(service *svc, json_t *found) {
    size_t i;
    json_t *rec;
    json_array_foreach(found, i, rec) {
        char name[64];
        snprintf(name, sizeof(name), "customer:%s", json_string_value(json_object_get(rec, "customer_id")) ?: "");
        redisReply *c = store_hgetall(service_store(svc), 0, name);
        if (!c) continue;
        json_t *customer = views_object(c, NULL);
        int erased = store_field(c, "erased_at")[0] != '\0';
        freeReplyObject(c);
        json_object_set_new(rec, "customer", customer);
        if (!erased) continue;
        size_t j;
        json_t *n;
        json_array_foreach(json_object_get(rec, "notifications"), j, n) {
            json_object_set_new(n, "recipient", json_string(""));
            json_object_set_new(n, "subject", json_string(""));
            json_object_set_new(n, "body", json_string(""));
        }
    }
}

/* Reads the search's arguments into f; 0, or -1 with err. */
static int archiving_filter(const Sav__Command *cmd, archive_filter *f) {
    f->ticket = command_arg(cmd, "ticket"), f->customer = command_arg(cmd, "customer");
    f->serial = command_arg(cmd, "serial"), f->from = command_arg(cmd, "from"), f->to = command_arg(cmd, "to");
    if (f->ticket && validate_ticket_id(f->ticket) != 0) return -1;
    if (f->customer && (strncmp(f->customer, "C-", 2) != 0 || validate_token("customer id", f->customer) != 0)) {
        err_set("\"%s\" is not a customer id (C-NNNNNN)", f->customer);
        return -1;
    }
    if (f->serial && validate_token("serial number", f->serial) != 0) return -1;
    if ((f->from && archive_month_valid(f->from) != 0) || (f->to && archive_month_valid(f->to) != 0)) return -1;
    if (f->from && f->to && strcmp(f->from, f->to) > 0) {
        err_set("--from %s is after --to %s", f->from, f->to);
        return -1;
    }
    return 0;
}

void archiving_search_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    archive_filter f;
    long limit;
    if (archiving_filter(cmd, &f) != 0 || command_int(cmd, "limit", 1, ARCHIVING_SEARCH_MAX, 50, &limit) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    char dir[PATH_MAX], where[PATH_MAX], known[ARCHIVE_MONTH_LEN] = "";
    archiving_dir(svc, dir, sizeof(dir));
    /* A ticket whose month Redis knows is looked for in that month's file only. */
    if (f.ticket && archiving_locate(svc, f.ticket, where, sizeof(where), known) == 1 &&
        archive_month_wanted(&f, known))
        f.from = f.to = known;
    static char months[ARCHIVING_MONTHS_MAX][ARCHIVE_MONTH_LEN];
    int nmonths = archiving_months(dir, &f, months, ARCHIVING_MONTHS_MAX);
    archiving_search s = {svc, &f, NULL, json_array(), json_object(), limit, 0,
                          (size_t)service_settings(svc)->socket_max_bytes / 2, 0, 0, 0, 0};
    int rc = 0;
    long long ignored = 0;
    for (int i = 0; i < nmonths && rc == 0; i++) {
        char data[PATH_MAX], idx[PATH_MAX];
        archfile_stats st;
        archive_path(dir, months[i], ARCHIVE_SUFFIX, data, sizeof(data));
        archive_path(dir, months[i], ARCHIVE_INDEX_SUFFIX, idx, sizeof(idx));
        s.file = data;
        rc = archfile_read(data, idx, archiving_search_line, &s, &st);
        ignored += st.ignored_bytes;
    }
    if (rc < 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "archive search: %s", err_get());
    } else {
        archiving_customers(svc, s.found);
        service_reply_json(reply, json_pack("{s:s,s:O,s:i,s:b,s:i,s:I,s:I,s:I,s:I}", "dir", dir, "tickets", s.found,
                                            "count", (int)json_array_size(s.found), "more", s.more, "months_read",
                                            nmonths, "lines_read", (json_int_t)s.lines, "duplicates_hidden",
                                            (json_int_t)s.duplicates, "unreadable_lines", (json_int_t)s.unreadable,
                                            "uncommitted_bytes", (json_int_t)ignored));
    }
    json_decref(s.found);
    json_decref(s.shown);
}
