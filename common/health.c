#include "health.h"
#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static redisReply *health_call(store *st, int argc, const char **argv) {
    size_t lens[6];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = store_call(st, argc, argv, lens);
    if (r && r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Adds one stream's length to the depth, and its first entry's age (its id starts with the UTC ms it was
 * written) to the oldest. */
static void health_stream(store *st, const char *key, health_facts *h, int64_t now) {
    const char *len_argv[] = {"XLEN", key};
    redisReply *r = health_call(st, 2, len_argv);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        h->outbox_depth += (uint64_t)r->integer;
        const char *first_argv[] = {"XRANGE", key, "-", "+", "COUNT", "1"};
        redisReply *f = health_call(st, 6, first_argv);
        if (f && f->type == REDIS_REPLY_ARRAY && f->elements == 1 && f->element[0]->type == REDIS_REPLY_ARRAY &&
            f->element[0]->elements >= 1 && f->element[0]->element[0]->type == REDIS_REPLY_STRING) {
            int64_t age = now - atoll(f->element[0]->element[0]->str);
            if (age > h->oldest_pending_ms) h->oldest_pending_ms = age;
        }
        if (f) freeReplyObject(f);
    }
    if (r) freeReplyObject(r);
}

/* Reads role and lag from INFO replication: a master's slowest replica (lag= in seconds), a replica's
 * master_last_io_seconds_ago. */
static void health_replication(store *st, health_facts *h) {
    const char *argv[] = {"INFO", "replication"};
    redisReply *r = health_call(st, 2, argv);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return;
    }
    for (char *line = r->str; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "role:", 5) == 0) {
            size_t n = strcspn(line + 5, "\r\n");
            snprintf(h->redis_role, sizeof(h->redis_role), "%.*s", (int)n, line + 5);
            if (strcmp(h->redis_role, "master") == 0 && h->redis_lag_ms < 0) h->redis_lag_ms = 0;
        } else if (strncmp(line, "slave", 5) == 0 && strstr(line, ",lag=")) {
            int64_t lag = atoll(strstr(line, ",lag=") + 5) * 1000;
            if (lag > h->redis_lag_ms) h->redis_lag_ms = lag;
        } else if (strncmp(line, "master_last_io_seconds_ago:", 27) == 0) {
            h->redis_lag_ms = atoll(line + 27) * 1000;
        }
    }
    freeReplyObject(r);
}

void health_read(store *st, const char *const *outboxes, int n, health_facts *out) {
    memset(out, 0, sizeof(*out));
    out->redis_lag_ms = -1;
    out->at_ms = clock_now_ms();
    const char *argv[] = {"PING"};
    redisReply *r = health_call(st, 1, argv);
    out->redis_ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!out->redis_ok) return;
    for (int shard = 0; shard < store_shards(st); shard++) {
        char key[STORE_KEY_LEN];
        for (int i = 0; i < n; i++) {
            store_key(st, shard, outboxes[i], key);
            health_stream(st, key, out, out->at_ms);
        }
        store_key(st, shard, "deadletter", key);
        const char *len_argv[] = {"XLEN", key};
        redisReply *d = health_call(st, 2, len_argv);
        if (d && d->type == REDIS_REPLY_INTEGER) out->dead_letters += (uint64_t)d->integer;
        if (d) freeReplyObject(d);
    }
    health_replication(st, out);
}

void health_json(const health_facts *h, httpd_reply *reply) {
    httpd_printf(reply, "\"redis_ok\": %s, \"outbox_depth\": %llu, \"oldest_pending_ms\": %lld, \"dead_letters\": %llu, "
                        "\"redis_role\": \"%s\", \"redis_lag_ms\": %lld, \"checked_at_ms\": %lld",
                 h->redis_ok ? "true" : "false", (unsigned long long)h->outbox_depth, (long long)h->oldest_pending_ms,
                 (unsigned long long)h->dead_letters, h->redis_role, (long long)h->redis_lag_ms, (long long)h->at_ms);
}
