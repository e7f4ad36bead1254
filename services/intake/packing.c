/* Packing: a closed or cancelled ticket that has settled (as archiving
 * requires: no complaint open, no invoice unpaid, no message in flight, no
 * parts held) and has not changed for intake.pack_after_days keeps in Redis
 * only a trimmed hash and one compressed value, packed:<T> (common/pack.h),
 * instead of its timeline, pre-diagnosis, coverage, verdicts, quotes and
 * notifications. Reads merge the value under what was written since
 * (view.c); writes Lua cannot apply to a packed value go to fresh keys, or
 * unpack the ticket first (customer erasure, archiving).
 *
 * Order, so that a SIGKILL at any instant leaves a ticket either packed or
 * not, never half: pack_collect reads the records and their digest (read
 * only), intake compresses them, ticket_pack replaces them by the value in
 * one call, only if they still have that digest. ticket_unpack is one call
 * too, and applies only the payload of the value Redis holds. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL
#define PACKING_CHUNK 100
#define PACKING_TICK_MAX 200      /* tickets packed per timer run */
#define PACKING_TICK_EXAMINE 2000 /* tickets looked at per timer run (most are packed already: one cheap call each) */
#define PACKING_RUN_MAX 100000
#define PACKING_KEPT_SHOWN 20
#define PACKING_TRIES 3
/* How long after an SMS was sent its delivery report can still be matched: the life of sms:msgid:<id>
 * (SMSQ_RECEIPT_TTL in services/notification/smsq.c). Until then the SMS stays out of the packed value. */
#define PACKING_RECEIPT_MS (7 * DAY_MS)

static const char *const packing_states[] = {"closed", "cancelled"};
#define PACKING_NSTATES 2

/* Where the timer resumes in each state index; back to the start once it reached the end. */
static long packing_cursor[PACKING_NSTATES];

/* What a pass did, for the log and `archive pack`. */
typedef struct packing_report {
    long examined, packed, repacked, changed, kept, failed;
    long long payload_bytes, packed_bytes; /* of the values written: before and after compression */
    json_t *kept_sample;
    int more;
} packing_report;

/* The ticket's hash and packed value keys and its shard prefix. */
static void packing_keys(service *svc, const char *tid, char key[STORE_KEY_LEN], char packed[STORE_KEY_LEN],
                         char prefix[STORE_KEY_LEN]) {
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, tid);
    char name[48];
    snprintf(name, sizeof(name), "ticket:%.15s", tid);
    store_key(st, shard, name, key);
    snprintf(name, sizeof(name), "packed:%.15s", tid);
    store_key(st, shard, name, packed);
    store_shard_prefix(st, shard, prefix);
}

/* 1 if r is an array of n replies whose first is the string word. */
static int packing_reply_is(const redisReply *r, size_t n, const char *word) {
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == n && r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, word) == 0;
}

int packing_unpack(service *svc, const char *tid) {
    char key[STORE_KEY_LEN], packed[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    packing_keys(svc, tid, key, packed, prefix);
    for (int attempt = 0; attempt < PACKING_TRIES; attempt++) {
        const char *argv[] = {"GET", packed};
        size_t lens[] = {3, strlen(packed)};
        redisReply *v = store_call(service_store(svc), 2, argv, lens);
        if (!v) return -1;
        if (v->type != REDIS_REPLY_STRING) {
            freeReplyObject(v);
            return 0;
        }
        pack_info info;
        size_t len;
        char *payload = pack_decode((const unsigned char *)v->str, v->len, &info, &len);
        freeReplyObject(v);
        if (!payload) {
            char why[256];
            snprintf(why, sizeof(why), "%s", err_get());
            err_set("packed:%s cannot be unpacked: %s", tid, why);
            return -1;
        }
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_unpack"), store_args_add(&a, "2");
        store_args_add(&a, key), store_args_add(&a, packed), store_args_add(&a, prefix), store_args_add(&a, tid);
        store_args_addb(&a, payload, len);
        redisReply *r = store_args_call(service_store(svc), &a);
        free(payload);
        if (!r) return -1;
        int done = packing_reply_is(r, 2, "unpacked") || packing_reply_is(r, 2, "not_packed");
        int again = packing_reply_is(r, 2, "changed");
        if (!done && !again)
            err_set("ticket_unpack %s: %s", tid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        else if (done)
            log_debug(tid, NULL, "unpacked");
        freeReplyObject(r);
        if (done) return 0;
        if (!again) return -1;
    }
    err_set("packed:%s changed %d times while it was being unpacked", tid, PACKING_TRIES);
    return -1;
}

static void packing_keep(packing_report *rep, const char *tid, const char *why) {
    rep->kept++;
    if (json_array_size(rep->kept_sample) < PACKING_KEPT_SHOWN)
        json_array_append_new(rep->kept_sample, json_pack("{s:s,s:s}", "ticket", tid, "why", why));
}

/* Compresses a collected payload and calls ticket_pack. Returns 0 (counted in rep), -1 Redis unreachable. */
static int packing_write(service *svc, const char *tid, const redisReply *c, int64_t cutoff, int64_t now,
                         packing_report *rep) {
    const char *digest = c->element[1]->str, *payload = c->element[3]->str;
    size_t len = c->element[3]->len, vlen = 0;
    json_t *parts = pack_parts(payload, len);
    unsigned char *value = parts ? pack_encode(payload, len, digest, atoll(c->element[2]->str), PACK_DICT_CURRENT,
                                               &vlen)
                                 : NULL;
    json_decref(parts);
    if (!value) {
        rep->failed++;
        log_error(tid, NULL, "not packed: %s", err_get());
        packing_keep(rep, tid, err_get());
        return 0;
    }
    char key[STORE_KEY_LEN], packed[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    packing_keys(svc, tid, key, packed, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_pack"), store_args_add(&a, "2");
    store_args_add(&a, key), store_args_add(&a, packed), store_args_add(&a, prefix), store_args_add(&a, tid);
    store_args_addf(&a, "%lld", (long long)cutoff), store_args_addf(&a, "%lld", (long long)now);
    store_args_addf(&a, "%lld", PACKING_RECEIPT_MS), store_args_add(&a, digest);
    store_args_addb(&a, (const char *)value, vlen);
    store_args_addf(&a, "%d", service_settings(svc)->pickup_reminders.n);
    redisReply *r = store_args_call(service_store(svc), &a);
    free(value);
    if (!r) return -1;
    if (packing_reply_is(r, 2, "packed")) {
        rep->packed++;
        rep->payload_bytes += (long long)len, rep->packed_bytes += (long long)vlen;
        log_debug(tid, NULL, "packed: %zu bytes into %zu", len, vlen);
    } else if (packing_reply_is(r, 2, "changed")) {
        rep->changed++;
        packing_keep(rep, tid, "changed while it was being packed");
    } else if (packing_reply_is(r, 2, "skip") && r->element[1]->type == REDIS_REPLY_STRING) {
        packing_keep(rep, tid, r->element[1]->str);
    } else {
        rep->failed++;
        log_warn(tid, NULL, "ticket_pack: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        packing_keep(rep, tid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply from ticket_pack");
    }
    freeReplyObject(r);
    return 0;
}

/* Packs one ticket if it is due (packing again, after unpacking it, one written to since it was packed). Returns
 * 0 (counted in rep), -1 Redis unreachable (err set). */
static int packing_one(service *svc, const char *tid, int64_t cutoff, int64_t now, packing_report *rep) {
    char key[STORE_KEY_LEN], packed[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    packing_keys(svc, tid, key, packed, prefix);
    rep->examined++;
    for (int round = 0; round < 2; round++) {
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "FCALL_RO"), store_args_add(&a, "pack_collect"), store_args_add(&a, "1");
        store_args_add(&a, key), store_args_add(&a, prefix), store_args_add(&a, tid);
        store_args_addf(&a, "%lld", (long long)cutoff), store_args_addf(&a, "%lld", (long long)now);
        store_args_addf(&a, "%lld", PACKING_RECEIPT_MS);
        redisReply *r = store_args_call(service_store(svc), &a);
        if (!r) return -1;
        int rc = 0, repack = 0;
        if (r->type == REDIS_REPLY_NIL) {
            packing_keep(rep, tid, "listed in a state index without its ticket (savctl check)");
        } else if (packing_reply_is(r, 2, "skip") && r->element[1]->type == REDIS_REPLY_STRING) {
            /* Packed already and nothing new: the usual case, not worth a line in the report. */
            if (strcmp(r->element[1]->str, "packed") != 0) packing_keep(rep, tid, r->element[1]->str);
        } else if (packing_reply_is(r, 2, "repack") && round == 0) {
            repack = 1;
        } else if (packing_reply_is(r, 4, "ok") && r->element[1]->type == REDIS_REPLY_STRING &&
                   r->element[1]->len == SHA1_HEX_LEN - 1 && r->element[2]->type == REDIS_REPLY_STRING &&
                   r->element[3]->type == REDIS_REPLY_STRING) {
            long before = rep->packed;
            rc = packing_write(svc, tid, r, cutoff, now, rep);
            rep->repacked += round == 1 && rep->packed > before;
        } else {
            rep->failed++;
            log_error(tid, NULL, "pack_collect: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            packing_keep(rep, tid, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply from pack_collect");
        }
        freeReplyObject(r);
        if (!repack) return rc;
        /* Written to since it was packed: unpacked, then packed whole again. */
        if (packing_unpack(svc, tid) != 0) {
            if (!store_healthy(service_store(svc))) return -1;
            rep->failed++;
            log_warn(tid, NULL, "not packed again: %s", err_get());
            packing_keep(rep, tid, err_get());
            return 0;
        }
    }
    return 0;
}

/* Packs up to limit tickets (looking at most at examine_max), each state's index from cursors[] on. 0, or -1 with
 * err (Redis unreachable: the next pass resumes). */
static int packing_pass(service *svc, long limit, long examine_max, long cursors[PACKING_NSTATES],
                        packing_report *rep) {
    int64_t now = clock_now_ms();
    const settings *cfg = service_settings(svc);
    int64_t cutoff = now - (int64_t)cfg->pack_after_days * DAY_MS;
    char min[24] = "-inf", max[24];
    snprintf(max, sizeof(max), "%lld", (long long)cutoff);
    /* Tickets closed before the archiving cutoff are archiving's next: packing them would only make it unpack them. */
    if (cfg->archive_after_days)
        snprintf(min, sizeof(min), "(%lld", (long long)(now - (int64_t)cfg->archive_after_days * DAY_MS));
    for (int s = 0; s < PACKING_NSTATES; s++) {
        char index[32], key[STORE_KEY_LEN];
        snprintf(index, sizeof(index), "state:%s", packing_states[s]);
        store_key(service_store(svc), 0, index, key);
        for (;;) {
            if (rep->packed >= limit || rep->examined >= examine_max) {
                rep->more = 1;
                return 0;
            }
            store_args a;
            store_args_init(&a);
            store_args_add(&a, "ZRANGEBYSCORE"), store_args_add(&a, key), store_args_add(&a, min);
            store_args_add(&a, max), store_args_add(&a, "LIMIT"), store_args_addf(&a, "%ld", cursors[s]);
            store_args_addf(&a, "%d", PACKING_CHUNK);
            redisReply *ids = store_args_call(service_store(svc), &a);
            if (!ids || ids->type != REDIS_REPLY_ARRAY) {
                if (ids) err_set("ZRANGEBYSCORE %s: %s", key, ids->type == REDIS_REPLY_ERROR ? ids->str : "not an array");
                if (ids) freeReplyObject(ids);
                return -1;
            }
            size_t n = ids->elements, i = 0;
            int rc = 0;
            for (; i < n && rc == 0 && rep->packed < limit && rep->examined < examine_max; i++)
                rc = packing_one(svc, ids->element[i]->str, cutoff, now, rep);
            /* A ticket stays in its state index once packed: the next page starts after those looked at. */
            cursors[s] += (long)i - (rc != 0);
            freeReplyObject(ids);
            if (rc != 0) return -1;
            if (i < n) continue;
            if (n < PACKING_CHUNK) break;
        }
        cursors[s] = 0;
    }
    return 0;
}

static void packing_report_init(packing_report *rep) {
    memset(rep, 0, sizeof(*rep));
    rep->kept_sample = json_array();
}

void packing_tick(service *svc) {
    packing_report rep;
    packing_report_init(&rep);
    if (packing_pass(svc, PACKING_TICK_MAX, PACKING_TICK_EXAMINE, packing_cursor, &rep) != 0)
        log_warn(NULL, NULL, "packing stopped, the next run resumes: %s", err_get());
    if (rep.packed || rep.failed)
        log_info(NULL, NULL, "packed %ld ticket(s) (%lld bytes of records into %lld), %ld again, %ld failed",
                 rep.packed, rep.payload_bytes, rep.packed_bytes, rep.repacked, rep.failed);
    json_decref(rep.kept_sample);
}

void packing_run(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long limit;
    const settings *cfg = service_settings(svc);
    if (command_int(cmd, "limit", 1, PACKING_RUN_MAX, 1000, &limit) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    packing_report rep;
    packing_report_init(&rep);
    long cursors[PACKING_NSTATES] = {0};
    char cutoff[40];
    int rc = packing_pass(svc, limit, PACKING_RUN_MAX * 10L, cursors, &rep);
    clock_format_utc(clock_now_ms() - (int64_t)cfg->pack_after_days * DAY_MS, cutoff, sizeof(cutoff));
    if (rc != 0 && rep.examined == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "packing failed: %s", err_get());
    } else {
        log_info(NULL, NULL, "pack run by %s: %ld ticket(s) packed, %ld kept", service_actor(svc), rep.packed,
                 rep.kept);
        service_reply_json(reply, json_pack("{s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:b,s:o}", "cutoff",
                                            cutoff, "after_days", cfg->pack_after_days, "dictionary",
                                            PACK_DICT_CURRENT, "examined", (json_int_t)rep.examined, "packed",
                                            (json_int_t)rep.packed, "repacked", (json_int_t)rep.repacked, "changed",
                                            (json_int_t)rep.changed, "kept", (json_int_t)rep.kept, "failed",
                                            (json_int_t)rep.failed, "payload_bytes", (json_int_t)rep.payload_bytes,
                                            "packed_bytes", (json_int_t)rep.packed_bytes, "kept_sample",
                                            rep.kept_sample, "more", rep.more, "error",
                                            rc != 0 ? json_string(err_get()) : json_null()));
    }
    json_decref(rep.kept_sample);
}
