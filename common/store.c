#include "store.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The Functions library, embedded at build time from common/redis/sav.lua. */
extern const char store_functions_lua[];

#define STORE_DEFER_MAX 256

/* One command held back for the next store_flush: its argument pointers, lengths and bytes in one block. */
typedef struct store_queued {
    void *block;
    int argc;
    const char **argv;
    size_t *len;
    store_done_fn done;
    void *ctx;
    int no_wait;
} store_queued;

struct store {
    redisContext *ctx;
    char host[SETTINGS_STR];   /* the Redis in use: the configured one, the sentinels' master, or a cluster
                                * node a MOVED pointed to */
    int port;
    char seed_host[SETTINGS_STR]; /* redis.host and redis.port, to start again from when host is unreachable */
    int seed_port;
    int timeout_ms;
    int shards;
    char prefix[32];
    int64_t next_connect_ms; /* monotonic: no reconnect attempt before this */
    int connect_backoff_ms;
    char user[64];             /* this service's ACL user, "" for the default user */
    char password[SETTINGS_STR];
    int refused;               /* Redis refused the user: a configuration error, not an outage */
    int loading;               /* the last attempt found Redis loading its data set: it answers, retrying is cheap */
    store_queued queued[STORE_DEFER_MAX]; /* commands waiting for store_flush, in order */
    int nqueued;
    char sentinel_host[SETTINGS_MAX_SENTINELS][SETTINGS_STR]; /* none: host and port are the master's */
    int sentinel_port[SETTINGS_MAX_SENTINELS];
    int nsentinels;
    int sentinel_at;           /* the sentinel asked first: the last one that answered */
    char master_name[64];
    char sentinel_password[SETTINGS_STR];
    int wait_replicas;         /* WAIT after writes: a write counts once this many replicas have it */
    int wait_ms;
    metrics_counter *m_commands, *m_round_trips; /* what the process costs Redis: every command sent, and how
                                                  * many times it waited for Redis to answer */
};

#define STORE_BACKOFF_MIN_MS 50
#define STORE_BACKOFF_MAX_MS 1000
/* A reconnection first asks PING with this short timeout: a frozen Redis still accepts TCP connections (the
 * kernel does), and waiting the full command timeout at each attempt would block the service's loop for most
 * of an outage instead of letting it answer "Redis unreachable" at once. */
#define STORE_PROBE_MS 200

static struct timeval store_tv(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

/* Describes the last I/O error of the context; a timeout (EAGAIN) says so, and that a command may still apply. */
static const char *store_why(const store *st, int timeout_ms, char *buf, size_t len) {
    if (st->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        snprintf(buf, len, "no answer within %d ms", timeout_ms);
    else
        snprintf(buf, len, "%s", st->ctx->errstr);
    return buf;
}

static void store_drop(store *st) {
    if (st->ctx) redisFree(st->ctx);
    st->ctx = NULL;
}

/* A Redis restarting from its AOF answers every command LOADING: it is not there yet, as if it were down, and
 * its refusal is no answer about the data (a record "not found", a step that "could not be recorded"). */
static int store_loading(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0;
}

/* A master the sentinels demoted answers writes READONLY: the data is elsewhere now, as if this one were down. */
static int store_demoted(const redisReply *r) {
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0;
}

/* Asks sentinel k where the master is; sets host and port, or describes in why what the sentinel said. */
static int store_ask_sentinel(store *st, int k, char *why, size_t len) {
    const char *host = st->sentinel_host[k];
    int port = st->sentinel_port[k];
    redisContext *c = redisConnectWithTimeout(host, port, store_tv(STORE_PROBE_MS));
    if (!c || c->err || redisSetTimeout(c, store_tv(STORE_PROBE_MS)) != REDIS_OK) {
        snprintf(why, len, "sentinel %s:%d: %s", host, port, c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return -1;
    }
    redisReply *r = NULL;
    if (st->sentinel_password[0]) {
        const char *argv[] = {"AUTH", st->sentinel_password};
        size_t lens[] = {4, strlen(st->sentinel_password)};
        r = redisCommandArgv(c, 2, argv, lens);
    }
    if (!r || r->type != REDIS_REPLY_ERROR) {
        if (r) freeReplyObject(r);
        r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", st->master_name);
    }
    int rc = -1;
    if (!r)
        snprintf(why, len, "sentinel %s:%d: %s", host, port, c->errstr);
    else if (r->type == REDIS_REPLY_ERROR)
        snprintf(why, len, "sentinel %s:%d: %s", host, port, r->str);
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
             r->element[1]->type != REDIS_REPLY_STRING)
        snprintf(why, len, "sentinel %s:%d does not monitor a master named %s", host, port, st->master_name);
    else {
        snprintf(st->host, sizeof(st->host), "%s", r->element[0]->str);
        st->port = atoi(r->element[1]->str);
        rc = 0;
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* Finds the master through the sentinels, starting with the one that answered last. */
static int store_discover(store *st) {
    char why[512] = "";
    for (int i = 0; i < st->nsentinels; i++) {
        int k = (st->sentinel_at + i) % st->nsentinels;
        if (store_ask_sentinel(st, k, why, sizeof(why)) == 0) {
            st->sentinel_at = k;
            return 0;
        }
        st->sentinel_at = (k + 1) % st->nsentinels;
    }
    err_set("no sentinel of redis.sentinels names the master %s: %s", st->master_name, why);
    return -1;
}

/* A sentinel's answer may be a failover late: the address it gave must say it is the master before it is used. */
static int store_check_master(store *st) {
    redisReply *r = redisCommand(st->ctx, "ROLE");
    if (!r) {
        err_set("redis at %s:%d: ROLE: %s", st->host, st->port, st->ctx->errstr);
        store_drop(st);
        return -1;
    }
    int master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "master") == 0;
    if (!master)
        err_set("redis at %s:%d is not the master %s (%s): a failover is under way", st->host, st->port,
                st->master_name, r->type == REDIS_REPLY_ERROR ? r->str : "its ROLE is not master");
    freeReplyObject(r);
    if (!master) store_drop(st);
    return master ? 0 : -1;
}

/* Loads the library with REPLACE: Functions persist in Redis, but a newer build must install its own. */
static int store_load_functions(store *st) {
    redisReply *r = redisCommand(st->ctx, "FUNCTION LOAD REPLACE %s", store_functions_lua);
    if (!r) {
        err_set("redis FUNCTION LOAD: %s", st->ctx->errstr);
        store_drop(st);
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        err_set("redis refused the Functions library: %s", r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static int store_connect(store *st) {
    struct timeval tv = store_tv(st->timeout_ms);
    st->loading = 0;
    if (st->nsentinels && store_discover(st) != 0) return -1;
    st->ctx = st->host[0] == '/' ? redisConnectUnixWithTimeout(st->host, tv)
                                 : redisConnectWithTimeout(st->host, st->port, tv);
    if (!st->ctx || st->ctx->err) {
        err_set("cannot connect to redis at %s:%d: %s", st->host, st->port,
                st->ctx ? st->ctx->errstr : "out of memory");
        store_drop(st);
        return -1;
    }
    /* The connect timeout does not apply to commands: without this a read blocks forever. */
    int probe_ms = st->timeout_ms < STORE_PROBE_MS ? st->timeout_ms : STORE_PROBE_MS;
    if (redisSetTimeout(st->ctx, store_tv(probe_ms)) != REDIS_OK) {
        err_set("cannot set redis timeout: %s", st->ctx->errstr);
        store_drop(st);
        return -1;
    }
    if (st->user[0]) {
        const char *argv[] = {"AUTH", st->user, st->password};
        size_t lens[] = {4, strlen(st->user), strlen(st->password)};
        redisReply *auth = redisCommandArgv(st->ctx, 3, argv, lens);
        st->refused = auth && auth->type == REDIS_REPLY_ERROR && !store_loading(auth);
        if (!auth || st->refused) {
            char why[256];
            if (auth) snprintf(why, sizeof(why), "%s", auth->str);
            else store_why(st, probe_ms, why, sizeof(why));
            err_set("redis at %s:%d refused the user %s: %s", st->host, st->port, st->user, why);
            if (auth) freeReplyObject(auth);
            store_drop(st);
            return -1;
        }
        freeReplyObject(auth);
    }
    redisReply *pong = redisCommand(st->ctx, "PING");
    if (!pong) {
        char why[128];
        err_set("redis at %s:%d does not answer: %s", st->host, st->port, store_why(st, probe_ms, why, sizeof(why)));
        store_drop(st);
        return -1;
    }
    st->loading = store_loading(pong);
    if (st->loading) err_set("redis at %s:%d is loading its data set: %s", st->host, st->port, pong->str);
    freeReplyObject(pong);
    if (st->loading) {
        store_drop(st);
        return -1;
    }
    if (st->nsentinels && store_check_master(st) != 0) return -1;
    if (redisSetTimeout(st->ctx, tv) != REDIS_OK) {
        err_set("cannot set redis timeout: %s", st->ctx->errstr);
        store_drop(st);
        return -1;
    }
    return store_load_functions(st);
}

store *store_open(const settings *s) {
    store *st = calloc(1, sizeof(*st));
    if (!st) {
        err_set("out of memory");
        return NULL;
    }
    snprintf(st->host, sizeof(st->host), "%s", s->redis_host);
    snprintf(st->seed_host, sizeof(st->seed_host), "%s", s->redis_host);
    st->seed_port = s->redis_port;
    snprintf(st->prefix, sizeof(st->prefix), "%s", s->redis_prefix);
    st->port = s->redis_port;
    st->timeout_ms = s->redis_timeout_ms;
    st->shards = s->redis_shards;
    st->nsentinels = settings_sentinels(s, st->sentinel_host, st->sentinel_port);
    snprintf(st->master_name, sizeof(st->master_name), "%s", s->redis_master_name);
    snprintf(st->sentinel_password, sizeof(st->sentinel_password), "%s", s->redis_sentinel_password);
    st->wait_replicas = s->redis_wait_replicas;
    st->wait_ms = s->redis_wait_ms;
    st->m_commands = metrics_counter_new("sav_redis_commands_total",
                                         "Commands sent to Redis (a Function call counts once)", NULL, NULL);
    st->m_round_trips = metrics_counter_new("sav_redis_round_trips_total",
                                            "Times the process sent commands to Redis and waited for the answers",
                                            NULL, NULL);
    if (s->self < SVC_COUNT && strcmp(s->redis_user[s->self], "none") != 0) {
        snprintf(st->user, sizeof(st->user), "%s", s->redis_user[s->self]);
        snprintf(st->password, sizeof(st->password), "%s", s->redis_password[s->self]);
    }
    if (store_connect(st) == 0) return st;
    if (st->refused) {
        /* A wrong user or password will not heal by waiting: the service must not start. */
        free(st);
        return NULL;
    }
    log_warn(NULL, NULL, "%s (will retry)", err_get());
    return st;
}

void store_close(store *st) {
    if (!st) return;
    store_drop(st);
    free(st);
}

/* Connects if needed, at most once per backoff period so a down Redis is not hammered. A loading Redis answers
 * at once: a request that arrives just after it finished must not be refused for a backoff still running. */
static int store_ready(store *st) {
    if (st->ctx) return 0;
    int64_t now = clock_mono_ms();
    if (now < st->next_connect_ms && !st->loading) {
        err_set("redis at %s:%d is unreachable (next attempt in %lld ms)", st->host, st->port,
                (long long)(st->next_connect_ms - now));
        return -1;
    }
    if (store_connect(st) == 0) {
        st->connect_backoff_ms = 0;
        return 0;
    }
    /* A cluster node a MOVED led to may be gone (failed over): the configured node knows where the slot is now. */
    snprintf(st->host, sizeof(st->host), "%s", st->seed_host);
    st->port = st->seed_port;
    st->connect_backoff_ms = st->connect_backoff_ms ? st->connect_backoff_ms * 2 : STORE_BACKOFF_MIN_MS;
    if (st->connect_backoff_ms > STORE_BACKOFF_MAX_MS) st->connect_backoff_ms = STORE_BACKOFF_MAX_MS;
    st->next_connect_ms = now + st->connect_backoff_ms;
    return -1;
}

static int store_pipeline_as(store *st, int n, const int *argc, const char ***argv, const size_t **argvlen,
                             redisReply **out, int may_wait);

redisReply *store_call(store *st, int argc, const char **argv, const size_t *argvlen) {
    redisReply *r = NULL;
    return store_pipeline_as(st, 1, &argc, &argv, &argvlen, &r, 1) == 0 ? r : NULL;
}

/* Commands that never write: after them there is nothing for WAIT to wait for. Any other one counts as a write. */
static const char *const store_read_commands[] = {
    "FCALL_RO", "HGET", "HMGET", "HGETALL", "HEXISTS", "HLEN", "GET", "MGET", "EXISTS", "TTL", "PTTL", "TYPE",
    "SCAN", "ZRANGE", "ZRANGEBYSCORE", "ZREVRANGE", "ZSCORE", "ZCARD", "LRANGE", "LLEN", "XRANGE", "XREVRANGE",
    "XLEN", "XINFO", "XPENDING", "SMEMBERS", "SISMEMBER", "PING", "INFO", "ROLE", "TIME", NULL};

static int store_writes(const char *cmd, size_t len) {
    for (int i = 0; store_read_commands[i]; i++)
        if (strlen(store_read_commands[i]) == len && strncasecmp(cmd, store_read_commands[i], len) == 0) return 0;
    return 1;
}

/* Reads the n replies (and WAIT's if waited); on a broken connection frees what was read, sets *stale. */
static int store_read_replies(store *st, int n, redisReply **out, const char *what, int *stale) {
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(st->ctx, &r) != REDIS_OK) {
            char why[128];
            err_set("redis %s: %s", what, store_why(st, st->timeout_ms, why, sizeof(why)));
            *stale = st->ctx->err == REDIS_ERR_EOF || st->ctx->err == REDIS_ERR_IO;
            for (int j = 0; j < i; j++) freeReplyObject(out[j]);
            store_drop(st);
            return -1;
        }
        out[i] = r;
    }
    return 0;
}

/* Redis Cluster: every key of a shard has one hash tag, so one node holds them all. MOVED names that node: the
 * commands (none of which was applied) go there, and on. ASK, TRYAGAIN and CLUSTERDOWN mean the slot is moving or
 * the cluster is failing over: unavailable for now, the caller tries again. Returns -1 for such an answer. */
static int store_redirected(store *st, const char *error, int *stale) {
    if (strncmp(error, "MOVED ", 6) == 0) {
        const char *addr = strrchr(error, ' '), *colon = strrchr(error, ':');
        if (addr && colon && colon > addr && !st->nsentinels) {
            err_set("redis at %s:%d does not hold this shard's slot: %s", st->host, st->port, error);
            log_info(NULL, NULL, "redis cluster: %s, following", error);
            /* An empty host ("MOVED 3999 :6381", an unknown endpoint) is the node's own address. */
            if (colon > addr + 1) snprintf(st->host, sizeof(st->host), "%.*s", (int)(colon - addr - 1), addr + 1);
            st->port = atoi(colon + 1);
            store_drop(st);
            *stale = 1;
            return -1;
        }
    }
    if (strncmp(error, "MOVED ", 6) == 0 || strncmp(error, "ASK ", 4) == 0 || strncmp(error, "TRYAGAIN", 8) == 0 ||
        strncmp(error, "CLUSTERDOWN", 11) == 0) {
        err_set("redis cluster at %s:%d: %s (the slot is moving or the cluster failing over: try again)", st->host,
                st->port, error);
        return -1;
    }
    return 0;
}

/* The replies of a pipeline that are no answer about the data: Redis still loading, a master demoted by a
 * failover (the commands go to the new one), or too few replicas confirming the writes within wait_ms (they may
 * still be lost in a failover: not acknowledged, as after a timeout). */
static int store_replies_stand(store *st, int n, redisReply **out, const redisReply *waited, const char *what,
                               int *stale) {
    for (int i = 0; i < n; i++) {
        if (store_loading(out[i])) {
            err_set("redis %s: %s", what, out[i]->str);
            return -1;
        }
        if (store_demoted(out[i])) {
            err_set("redis at %s:%d is no longer the master: %s", st->host, st->port, out[i]->str);
            store_drop(st);
            *stale = st->nsentinels > 0;
            return -1;
        }
        if (out[i]->type == REDIS_REPLY_ERROR && store_redirected(st, out[i]->str, stale) != 0) return -1;
    }
    if (waited && (waited->type != REDIS_REPLY_INTEGER || waited->integer < st->wait_replicas)) {
        if (waited->type == REDIS_REPLY_INTEGER)
            err_set("redis %s not acknowledged: %lld of the %d replica(s) of redis.wait_replicas had it within %d ms",
                    what, waited->integer, st->wait_replicas, st->wait_ms);
        else
            err_set("redis %s: WAIT: %s", what, waited->type == REDIS_REPLY_ERROR ? waited->str : "unexpected reply");
        return -1;
    }
    return 0;
}

/* One attempt of a pipeline; sets *stale when the connection turned out to be dead or the master moved. */
static int store_pipeline_once(store *st, int n, const int *argc, const char ***argv, const size_t **argvlen,
                               redisReply **out, int may_wait, int *stale) {
    const char *what = n == 1 ? argv[0][0] : "pipeline";
    int wait = 0;
    *stale = 0;
    if (store_ready(st) != 0) return -1;
    for (int i = 0; i < n; i++) {
        wait |= may_wait && st->wait_replicas > 0 && store_writes(argv[i][0], argvlen[i][0]);
        if (redisAppendCommandArgv(st->ctx, argc[i], argv[i], argvlen[i]) != REDIS_OK) {
            err_set("redis %s: %s", what, st->ctx->errstr);
            store_drop(st);
            return -1;
        }
    }
    if (wait && redisAppendCommand(st->ctx, "WAIT %d %d", st->wait_replicas, st->wait_ms) != REDIS_OK) {
        err_set("redis %s: %s", what, st->ctx->errstr);
        store_drop(st);
        return -1;
    }
    metrics_add(st->m_commands, (uint64_t)(n + wait));
    metrics_add(st->m_round_trips, 1);
    redisReply *waited = NULL;
    if (store_read_replies(st, n, out, what, stale) != 0) return -1;
    if (wait && store_read_replies(st, 1, &waited, what, stale) != 0) {
        for (int j = 0; j < n; j++) freeReplyObject(out[j]);
        return -1;
    }
    int rc = store_replies_stand(st, n, out, waited, what, stale);
    if (rc != 0)
        for (int j = 0; j < n; j++) freeReplyObject(out[j]);
    if (waited) freeReplyObject(waited);
    return rc;
}

static int store_pipeline_as(store *st, int n, const int *argc, const char ***argv, const size_t **argvlen,
                             redisReply **out, int may_wait) {
    int stale;
    /* A connection found dead (Redis restarted) or a master demoted is reopened and the pipeline sent once more. */
    if (store_pipeline_once(st, n, argc, argv, argvlen, out, may_wait, &stale) == 0) return 0;
    return stale ? store_pipeline_once(st, n, argc, argv, argvlen, out, may_wait, &stale) : -1;
}

int store_pipeline(store *st, int n, const int *argc, const char ***argv, const size_t **argvlen, redisReply **out) {
    return store_pipeline_as(st, n, argc, argv, argvlen, out, 1);
}

int store_healthy(const store *st) {
    return st->ctx != NULL;
}

void store_shard_prefix(const store *st, int shard, char out[STORE_KEY_LEN]) {
    snprintf(out, STORE_KEY_LEN, "%s:{s%d}:", st->prefix, shard);
}

void store_key(const store *st, int shard, const char *name, char out[STORE_KEY_LEN]) {
    snprintf(out, STORE_KEY_LEN, "%s:{s%d}:%s", st->prefix, shard, name);
}

redisReply *store_hgetall(store *st, int shard, const char *name) {
    char key[STORE_KEY_LEN];
    store_key(st, shard, name, key);
    const char *argv[] = {"HGETALL", key};
    size_t lens[] = {7, strlen(key)};
    redisReply *r = store_call(st, 2, argv, lens);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set("HGETALL %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

void store_request_key(const store *st, int shard, const char *scope, const char *request_id, char out[STORE_KEY_LEN]) {
    snprintf(out, STORE_KEY_LEN, "%s:{s%d}:req:%s:%s", st->prefix, shard, scope, request_id);
}

int store_ticket_shard(const store *st, const char *ticket_id) {
    /* T-YYYY-NNNNNN: shard k hands out numbers k+1, k+1+S, k+1+2S... */
    long n = strtol(ticket_id + 7, NULL, 10);
    return n > 0 ? (int)((n - 1) % st->shards) : 0;
}

int store_request_shard(const store *st, const char *request_id) {
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)request_id; *p; p++) h = (h ^ *p) * 16777619u;
    return (int)(h % (uint32_t)st->shards);
}

int store_shards(const store *st) {
    return st->shards;
}

void store_args_init(store_args *a) {
    a->argc = 0;
    a->used = 0;
    a->overflow = 0;
    a->no_wait = 0;
}

void store_args_addb(store_args *a, const void *data, size_t len) {
    if (a->argc >= STORE_ARGS_MAX) {
        a->overflow = 1;
        return;
    }
    a->argv[a->argc] = data ? data : "";
    a->len[a->argc++] = data ? len : 0;
}

void store_args_add(store_args *a, const char *s) {
    store_args_addb(a, s, s ? strlen(s) : 0);
}

void store_args_addf(store_args *a, const char *fmt, ...) {
    size_t room = STORE_ARGS_SCRATCH - a->used;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->scratch + a->used, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        a->overflow = 1;
        return;
    }
    store_args_addb(a, a->scratch + a->used, (size_t)n);
    a->used += (size_t)n + 1;
}

redisReply *store_args_call(store *st, store_args *a) {
    if (a->overflow || a->argc == 0) {
        err_set("redis command has too many or too long arguments");
        return NULL;
    }
    redisReply *r = NULL;
    const char **argv = a->argv;
    const size_t *len = a->len;
    return store_pipeline_as(st, 1, &a->argc, &argv, &len, &r, !a->no_wait) == 0 ? r : NULL;
}

redisReply *store_newest(store *st, const char *name, long count) {
    char key[STORE_KEY_LEN];
    store_key(st, 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "ZREVRANGE"), store_args_add(&a, key), store_args_add(&a, "0");
    store_args_addf(&a, "%ld", count - 1);
    redisReply *r = store_args_call(st, &a);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set("redis ZREVRANGE %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

const char *store_field(const redisReply *flat, const char *name) {
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const redisReply *k = flat->element[i], *v = flat->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) return v->str;
    }
    return "";
}

int store_defer(store *st, const store_args *a, store_done_fn done, void *ctx) {
    if (a->overflow || a->argc == 0) {
        err_set("redis command has too many or too long arguments");
        return -1;
    }
    if (st->nqueued == STORE_DEFER_MAX && store_flush(st) < 0) return -1;
    size_t total = (size_t)a->argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < a->argc; i++) total += a->len[i] + 1;
    store_queued *q = &st->queued[st->nqueued];
    if (!(q->block = malloc(total))) {
        err_set("out of memory queueing a redis command");
        return -1;
    }
    q->argv = q->block;
    q->len = (size_t *)(void *)(q->argv + a->argc);
    char *p = (char *)(q->len + a->argc);
    for (int i = 0; i < a->argc; i++) {
        memcpy(p, a->argv[i], a->len[i]);
        p[a->len[i]] = '\0';
        q->argv[i] = p, q->len[i] = a->len[i];
        p += a->len[i] + 1;
    }
    q->argc = a->argc, q->done = done, q->ctx = ctx, q->no_wait = a->no_wait;
    st->nqueued++;
    return 0;
}

size_t store_deferred(const store *st) { return (size_t)st->nqueued; }

int store_flush(store *st) {
    int n = st->nqueued;
    if (n == 0) return 0;
    int argc[STORE_DEFER_MAX] = {0};
    const char **argv[STORE_DEFER_MAX] = {0};
    const size_t *lens[STORE_DEFER_MAX] = {0};
    redisReply *replies[STORE_DEFER_MAX] = {0};
    int may_wait = 0;
    for (int i = 0; i < n; i++) {
        argc[i] = st->queued[i].argc, argv[i] = st->queued[i].argv, lens[i] = st->queued[i].len;
        may_wait |= !st->queued[i].no_wait;
    }
    st->nqueued = 0;
    int rc = store_pipeline_as(st, n, argc, argv, lens, replies, may_wait);
    /* Unreachable: each gets NULL (err set), as from store_call; some may still have been applied (a timeout). */
    for (int i = 0; i < n; i++) {
        store_queued *q = &st->queued[i];
        redisReply *r = rc == 0 ? replies[i] : NULL;
        q->done(q->ctx, r);
        free(q->block);
    }
    return rc == 0 ? n : -1;
}
