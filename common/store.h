/* store: the Redis connection of one process. Every call goes through
 * store_call, which reconnects a dead context (hiredis contexts are dead
 * after any I/O error), re-applies the timeouts and reloads the Functions
 * library, so callers only see "worked", "Redis refused" or "Redis is
 * unreachable" (with err set).
 *
 * Keys: <prefix>:{s<N>}:<name>. The hash tag {s<N>} is the shard of a
 * ticket; every atomic call touches keys of one shard only, so the layout is
 * ready for Redis Cluster. */
#ifndef SAV_STORE_H
#define SAV_STORE_H

#include <stddef.h>
#include <hiredis/hiredis.h>

#include "settings.h"

#define STORE_KEY_LEN 160

typedef struct store store;

/* Connects to Redis (as the service's own ACL user when redis_user is set) and loads the Functions library. An
 * unreachable Redis is retried at each call; NULL with err when out of memory or when Redis refuses the user. */
store *store_open(const settings *s);

/* Closes the connection and frees the store. */
void store_close(store *st);

/* Runs one command (argv with lengths, binary safe). Returns the reply (free with freeReplyObject), NULL with err
 * when Redis is unreachable or timed out. A Redis error reply is returned as a reply of type REDIS_REPLY_ERROR.
 * A connection found dead (Redis restarted since the last call) is reopened and the command sent once more, so
 * every command sent through the store must be idempotent: reads, or Functions guarded by a dedup key. */
redisReply *store_call(store *st, int argc, const char **argv, const size_t *argvlen);

/* Sends n commands in one round trip and returns their n replies in out (free each); 0 or -1 with err. */
int store_pipeline(store *st, int n, const int *argc, const char ***argv, const size_t **argvlen, redisReply **out);

/* Returns 1 if the last call reached Redis, 0 if the connection is down. */
int store_healthy(const store *st);

/* Writes "<prefix>:{s<shard>}:" into out (the common start of a shard's keys). */
void store_shard_prefix(const store *st, int shard, char out[STORE_KEY_LEN]);

/* Writes "<prefix>:{s<shard>}:<name>" into out. */
void store_key(const store *st, int shard, const char *name, char out[STORE_KEY_LEN]);

/* Reads the hash "<prefix>:{s<shard>}:<name>": an array reply (empty when the hash does not exist; free with
 * freeReplyObject), or NULL with err when Redis is unreachable or refuses. */
redisReply *store_hgetall(store *st, int shard, const char *name);

/* Writes the dedup key of a client request: "<prefix>:{s<shard>}:req:<scope>:<request id>". The scope is the
 * command ("customer.add") or the ticket a step applies to, so that one request id reused for another command
 * or another ticket is a new request, never the replay of an unrelated one. */
void store_request_key(const store *st, int shard, const char *scope, const char *request_id, char out[STORE_KEY_LEN]);

/* Returns the shard of a ticket id (its number modulo the shard count). */
int store_ticket_shard(const store *st, const char *ticket_id);

/* Returns the shard a request id maps to (FNV-1a hash modulo the shard count). */
int store_request_shard(const store *st, const char *request_id);

/* Returns the number of shards. */
int store_shards(const store *st);

#define STORE_ARGS_MAX 256
#define STORE_ARGS_SCRATCH 8192

/* The argument list of one command, built piece by piece; formatted values live in its scratch space. */
typedef struct store_args {
    const char *argv[STORE_ARGS_MAX];
    size_t len[STORE_ARGS_MAX];
    int argc;
    char scratch[STORE_ARGS_SCRATCH];
    size_t used;
    int overflow; /* set when an argument did not fit: the call is refused */
    int no_wait;  /* no WAIT after it (redis.wait_replicas): bookkeeping whose loss in a failover only makes its
                   * work be done again (a send's outcome: the claim stays, so the message is sent again, counted
                   * in resent_after_crash), where an unconfirmed write would leave the master's view and the
                   * caller's apart until the claim goes stale and another sender takes it */
} store_args;

/* Starts an empty argument list. */
void store_args_init(store_args *a);

/* Appends a NUL-terminated string (not copied: it must outlive the call; NULL appends ""). */
void store_args_add(store_args *a, const char *s);

/* Appends len bytes (not copied). */
void store_args_addb(store_args *a, const void *data, size_t len);

/* Appends a formatted value, copied into the scratch space. */
void store_args_addf(store_args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs the command; NULL with err when it overflowed or Redis is unreachable. Free the reply with freeReplyObject. */
redisReply *store_args_call(store *st, store_args *a);

/* Returns the value of field `name` in a flat reply (HGETALL: name, value, ...), or "" when absent; owned by the
 * reply. */
const char *store_field(const redisReply *flat, const char *name);

/* Called with a queued command's reply (NULL with err when Redis was unreachable); the callee owns the reply. */
typedef void (*store_done_fn)(void *ctx, redisReply *r);

/* Queues a command (its arguments are copied) for the next store_flush, which sends every queued command in one
 * round trip: with appendfsync always, one fsync covers them all (and WAIT too, unless every queued command is
 * no_wait). A full queue is flushed first. 0, or -1 with err (nothing queued). The queue is the caller's to
 * flush: store_call does not, so a command sent meanwhile runs before the queued ones. */
int store_defer(store *st, const store_args *a, store_done_fn done, void *ctx);

/* Sends the queued commands and calls each one's done, in order; returns how many, or -1 when Redis was
 * unreachable (each done then got NULL). */
int store_flush(store *st);

/* Returns how many commands wait for store_flush. */
size_t store_deferred(const store *st);

/* The members of shard 0's sorted set `name` (a list index), highest score first, at most count: an array reply
 * the caller frees with freeReplyObject, or NULL with err (Redis unreachable, or not a sorted set). */
redisReply *store_newest(store *st, const char *name, long count);

#endif
