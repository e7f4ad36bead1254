#include "relay.h"
#include "clock.h"
#include "bus.h"
#include "envelope.h"
#include "err.h"
#include "log.h"
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define RELAY_GROUP "relay"
#define RELAY_ENTRY_ID_LEN 48
/* A destination that keeps refusing the handshake is reported this often, not at every reconnection. */
#define RELAY_HANDSHAKE_LOG_MS 10000

typedef struct relay_entry {
    char entry_id[RELAY_ENTRY_ID_LEN];
    char msg_id[ENVELOPE_ID_LEN];
    char ticket[16];
    int shard;
    envelope_buf frame;
    int attempts;        /* times handed to a connected destination */
    int64_t sent_at;     /* monotonic ms of the last send */
    int64_t retry_at;    /* the destination answered RETRY: monotonic ms of the next send; 0 otherwise */
    int64_t interval_ms; /* current backoff */
    int acked;           /* ACK received; removal from Redis pending */
} relay_entry;

/* A call the relay queued in the store for one shard: what its answer needs to know. */
typedef struct relay_queued {
    relay *r;
    int shard;
    int catching_up; /* a read of our own pending entries (from last_pending), not of new ones */
    int acks;        /* acknowledged entries named by the queued outbox_ack */
} relay_queued;

struct relay {
    store *st;
    const settings *cfg;
    enum service_id self, dest;
    void *sock;
    void *monitor;                /* the socket's handshake failures */
    int64_t handshake_logged_at;  /* when the last one was logged */
    char stream_name[48];
    char consumer[96];
    relay_entry *entries; /* the window: messages in flight */
    int count;
    int poked;
    int64_t next_scan;
    int64_t redis_backoff_until; /* after a failed Redis call, leave Redis alone until then */
    char (*last_pending)[RELAY_ENTRY_ID_LEN]; /* per shard: "" once caught up with our own pending entries */
    char (*checked_group); /* per shard: consumer group known to exist */
    metrics_counter *m_sent, *m_resent, *m_dead, *m_taken;
    int64_t next_claim;
    relay_queued *queued;     /* per shard, for the reads and acknowledgements queued behind a service's writes */
    int read_full;            /* a queued read filled its batch: more may wait */
    int64_t answered_at;      /* monotonic ms of the destination's last answer */
    int64_t answered_sent_at; /* the latest send time among the messages it answered */
    /* The longest wait for an answer while the destination worked (from the later of its previous answer and the
     * message's send), in this period of RELAY_GAP_PERIOD_MS and the one before: a destination that answers in
     * bursts is silent between two of them, and only a silence well beyond that means it is down. */
    int64_t gap_ms, gap_prev_ms, gap_period_end;
};

#define RELAY_GAP_PERIOD_MS 10000
#define RELAY_SILENCE_MAX_MS 60000

/* How long the destination may stay silent before it counts as down: relay.ack_timeout_ms, or three times the
 * longest wait it made us do lately when that is longer. */
static int64_t relay_silence_ms(const relay *r) {
    int64_t gap = r->gap_ms > r->gap_prev_ms ? r->gap_ms : r->gap_prev_ms, silence = 3 * gap;
    if (silence < r->cfg->relay_ack_timeout_ms) silence = r->cfg->relay_ack_timeout_ms;
    return silence < RELAY_SILENCE_MAX_MS ? silence : RELAY_SILENCE_MAX_MS;
}

/* Takes the wait an answer ended. */
static void relay_note_answer(relay *r, const relay_entry *e, int64_t now) {
    if (now >= r->gap_period_end) {
        r->gap_prev_ms = r->gap_ms, r->gap_ms = 0;
        r->gap_period_end = now + RELAY_GAP_PERIOD_MS;
    }
    int64_t since = r->answered_at > e->sent_at ? r->answered_at : e->sent_at;
    if (now - since > r->gap_ms) r->gap_ms = now - since;
    r->answered_at = now;
    if (e->sent_at > r->answered_sent_at) r->answered_sent_at = e->sent_at;
}

/* When an unanswered entry may be sent again, assuming no more answers come (an answer can only delay it).
 * A destination answers in the order it received, so a late answer usually means a backlog, not a loss: sending
 * again then would double its work just when it has the most. An entry is sent again once its backoff has passed
 * and either the destination has said nothing for relay_silence_ms, or it answered a message sent
 * relay.ack_timeout_ms later than this one (this one was lost, or is stuck behind a slower instance). */
static int64_t relay_entry_due(const relay *r, const relay_entry *e) {
    if (e->retry_at) return e->retry_at;
    int64_t due = e->sent_at + e->interval_ms;
    if (r->answered_sent_at >= e->sent_at + r->cfg->relay_ack_timeout_ms) return due;
    int64_t silent_from = r->answered_at + relay_silence_ms(r);
    return silent_from > due ? silent_from : due;
}

/* Starts the arguments of a call that only keeps the relay's books: reading, claiming, removing acknowledged
 * entries. Losing one in a failover only makes a message go again (its destination applies it once), so it does
 * not wait for replicas (redis.wait_replicas): with none up, each would stall the service's loop. */
static void relay_bookkeeping(store_args *a) {
    store_args_init(a);
    a->no_wait = 1;
}

static int relay_ensure_group(relay *r, int shard) {
    if (r->checked_group[shard]) return 0;
    char key[STORE_KEY_LEN];
    store_key(r->st, shard, r->stream_name, key);
    const char *argv[] = {"XGROUP", "CREATE", key, RELAY_GROUP, "0", "MKSTREAM"};
    size_t lens[] = {6, 6, strlen(key), strlen(RELAY_GROUP), 1, 8};
    redisReply *rep = store_call(r->st, 6, argv, lens);
    if (!rep) return -1;
    int ok = rep->type != REDIS_REPLY_ERROR || strncmp(rep->str, "BUSYGROUP", 9) == 0;
    if (!ok) err_set("XGROUP CREATE %s: %s", key, rep->str);
    freeReplyObject(rep);
    if (ok) r->checked_group[shard] = 1;
    return ok ? 0 : -1;
}

relay *relay_new(store *st, const settings *s, enum service_id self, enum service_id dest, const bus_peer *peer) {
    relay *r = calloc(1, sizeof(*r));
    if (!r) goto oom;
    r->st = st;
    r->cfg = s;
    r->self = self;
    r->dest = dest;
    snprintf(r->stream_name, sizeof(r->stream_name), "outbox:%s", settings_service_name(dest));
    snprintf(r->consumer, sizeof(r->consumer), "%s-%s", settings_service_name(self), s->instance);
    r->entries = calloc((size_t)s->relay_window, sizeof(relay_entry));
    r->last_pending = calloc((size_t)store_shards(st), RELAY_ENTRY_ID_LEN);
    r->checked_group = calloc((size_t)store_shards(st), 1);
    r->queued = calloc((size_t)store_shards(st), sizeof(relay_queued));
    if (!r->entries || !r->last_pending || !r->checked_group || !r->queued) goto oom;
    for (int i = 0; i < store_shards(st); i++) r->queued[i].r = r, r->queued[i].shard = i;
    for (int i = 0; i < store_shards(st); i++) strcpy(r->last_pending[i], "0");
    r->sock = bus_socket(ZMQ_DEALER, s);
    if (!r->sock) goto fail;
    r->monitor = bus_monitor_open(r->sock);
    if (!r->monitor) goto fail;
    r->handshake_logged_at = clock_mono_ms() - RELAY_HANDSHAKE_LOG_MS;
    if (bus_connect(r->sock, peer) != 0) {
        char why[512];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("relay to %s: %s", settings_service_name(dest), why);
        goto fail;
    }
    r->poked = 1;
    const char *to = settings_service_name(dest);
    r->m_sent = metrics_counter_new("sav_relay_sent_total", "Messages relayed, first sends, by destination", "dest", to);
    r->m_resent = metrics_counter_new("sav_relay_resent_total", "Messages sent again for want of an acknowledgement",
                                      "dest", to);
    r->m_dead = metrics_counter_new("sav_relay_dead_letters_total", "Messages moved to the dead letters", "dest", to);
    r->m_taken = metrics_counter_new("sav_relay_taken_over_total", "Messages taken over from a relay that died",
                                     "dest", to);
    return r;
oom:
    err_set("out of memory creating a relay");
fail:
    relay_free(r);
    return NULL;
}

void relay_free(relay *r) {
    if (!r) return;
    bus_monitor_close(r->sock, r->monitor);
    if (r->sock) zmq_close(r->sock);
    for (int i = 0; i < r->count; i++) envelope_buf_free(&r->entries[i].frame);
    free(r->entries);
    free(r->last_pending);
    free(r->checked_group);
    free(r->queued);
    free(r);
}

void *relay_socket(relay *r) {
    return r->sock;
}

void relay_poke(relay *r) {
    r->poked = 1;
}

int relay_in_flight(const relay *r) {
    return r->count;
}

const char *relay_stream_name(const relay *r) {
    return r->stream_name;
}

static relay_entry *relay_find_msg(relay *r, const char *msg_id) {
    for (int i = 0; i < r->count; i++)
        if (strcmp(r->entries[i].msg_id, msg_id) == 0) return &r->entries[i];
    return NULL;
}

static int relay_has_entry(const relay *r, int shard, const char *entry_id) {
    for (int i = 0; i < r->count; i++)
        if (r->entries[i].shard == shard && strcmp(r->entries[i].entry_id, entry_id) == 0) return 1;
    return 0;
}

static void relay_remove(relay *r, relay_entry *e) {
    envelope_buf_free(&e->frame);
    *e = r->entries[--r->count];
    memset(&r->entries[r->count], 0, sizeof(relay_entry));
}

static void relay_send(relay *r, relay_entry *e) {
    const void *frames[2] = {"", e->frame.data};
    size_t lens[2] = {0, e->frame.len};
    /* ZMQ_IMMEDIATE refuses the send while the destination is not connected: that is no
     * delivery attempt, so a destination that is down for a long time dead-letters nothing. */
    if (bus_send(r->sock, 2, frames, lens) == 0)
        metrics_add(e->attempts++ ? r->m_resent : r->m_sent, 1);
    else
        log_debug(e->ticket, e->msg_id, "send to %s deferred: %s", settings_service_name(r->dest), err_get());
    e->sent_at = clock_mono_ms();
    e->retry_at = 0;
}

#define RELAY_REDIS_BACKOFF_MS 250

/* After a failed call, an XREADGROUP may have delivered entries whose reply was lost: they sit pending under
 * our name, so read our pending entries again (relay_admit skips those already in flight). */
static void relay_redis_failed(relay *r) {
    r->redis_backoff_until = clock_mono_ms() + RELAY_REDIS_BACKOFF_MS;
    for (int i = 0; i < store_shards(r->st); i++) strcpy(r->last_pending[i], "0");
}

/* Finds a field's value in a stream entry's flat field list. */
static const redisReply *relay_field(const redisReply *fields, const char *name) {
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING && strcmp(fields->element[i]->str, name) == 0)
            return fields->element[i + 1];
    return NULL;
}

/* Moves an entry to the dead-letter stream; the entry stays pending if Redis cannot be reached. */
static int relay_dead_letter(relay *r, int shard, const char *entry_id, const char *reason, int attempts) {
    char stream[STORE_KEY_LEN], dead[STORE_KEY_LEN], att[16], now[24];
    store_key(r->st, shard, r->stream_name, stream);
    store_key(r->st, shard, "deadletter", dead);
    snprintf(att, sizeof(att), "%d", attempts);
    snprintf(now, sizeof(now), "%lld", (long long)clock_now_ms());
    const char *dest = settings_service_name(r->dest);
    const char *argv[] = {"FCALL", "outbox_dead", "2", stream, dead, RELAY_GROUP, entry_id, dest, reason, att, now};
    size_t lens[11];
    for (int i = 0; i < 11; i++) lens[i] = strlen(argv[i]);
    redisReply *rep = store_call(r->st, 11, argv, lens);
    if (!rep) return -1;
    int rc = rep->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc) err_set("outbox_dead: %s", rep->str);
    freeReplyObject(rep);
    if (rc == 0) log_error(NULL, entry_id, "dead-lettered message for %s after %d attempt(s): %s", dest, attempts, reason);
    if (rc == 0) metrics_add(r->m_dead, 1);
    return rc;
}

/* Turns one stream entry into an in-flight message; a malformed entry goes to the dead letters. */
static void relay_admit(relay *r, int shard, const redisReply *entry) {
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[1]->type != REDIS_REPLY_ARRAY)
        return; /* an entry deleted while pending reads as nil fields: nothing to send */
    const char *entry_id = entry->element[0]->str;
    if (relay_has_entry(r, shard, entry_id)) return;
    const redisReply *f = entry->element[1];
    const redisReply *id = relay_field(f, "id"), *type = relay_field(f, "type"), *tid = relay_field(f, "ticket");
    const redisReply *at = relay_field(f, "at"), *src = relay_field(f, "src"), *body = relay_field(f, "body");
    if (!id || !type || !tid || !at || !src || !body || id->len >= ENVELOPE_ID_LEN || tid->len >= 16) {
        relay_dead_letter(r, shard, entry_id, "malformed outbox entry", 0);
        return;
    }
    relay_entry *e = &r->entries[r->count];
    if (envelope_pack_raw((Sav__MessageType)atoi(type->str), id->str, tid->str, src->str, atoll(at->str),
                          (const uint8_t *)body->str, body->len, &e->frame) != 0) {
        log_error(tid->str, id->str, "%s", err_get());
        return;
    }
    snprintf(e->entry_id, sizeof(e->entry_id), "%s", entry_id);
    snprintf(e->msg_id, sizeof(e->msg_id), "%s", id->str);
    snprintf(e->ticket, sizeof(e->ticket), "%s", tid->str);
    e->shard = shard;
    e->attempts = 0;
    e->acked = 0;
    e->interval_ms = r->cfg->relay_ack_timeout_ms;
    r->count++;
    relay_send(r, e);
}

/* Builds the read of up to the free window (at most relay.batch) from one shard's outbox: our own pending entries
 * first (left by a previous run under the same name), then new ones. Returns 0 when there is no room, 1 when
 * built, -1 with err. */
static int relay_read_args(relay *r, int shard, store_args *a, int *catching_up) {
    int room = r->cfg->relay_window - r->count;
    if (room <= 0) return 0;
    if (room > r->cfg->relay_batch) room = r->cfg->relay_batch;
    if (relay_ensure_group(r, shard) != 0) return -1;
    char key[STORE_KEY_LEN];
    store_key(r->st, shard, r->stream_name, key);
    *catching_up = r->last_pending[shard][0] != '\0';
    relay_bookkeeping(a);
    store_args_add(a, "XREADGROUP"), store_args_add(a, "GROUP"), store_args_add(a, RELAY_GROUP);
    store_args_add(a, r->consumer), store_args_add(a, "COUNT"), store_args_addf(a, "%d", room);
    store_args_add(a, "STREAMS"), store_args_addf(a, "%s", key);
    store_args_addf(a, "%s", *catching_up ? r->last_pending[shard] : ">");
    return 1;
}

/* Sends the entries a read returned; returns how many, or -1 with err. */
static int relay_read_reply(relay *r, int shard, int catching_up, const redisReply *rep) {
    if (rep->type == REDIS_REPLY_ERROR) {
        err_set("XREADGROUP %s: %s", r->stream_name, rep->str);
        if (strncmp(rep->str, "NOGROUP", 7) == 0) r->checked_group[shard] = 0;
        return -1;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) {
        if (catching_up) r->last_pending[shard][0] = '\0';
        return 0;
    }
    const redisReply *entries = rep->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
        relay_admit(r, shard, entries->element[i]);
        if (catching_up)
            snprintf(r->last_pending[shard], RELAY_ENTRY_ID_LEN, "%s", entries->element[i]->element[0]->str);
    }
    if (catching_up && entries->elements == 0) r->last_pending[shard][0] = '\0';
    return (int)entries->elements;
}

/* Reads up to the free window from one shard's outbox; returns entries read or -1. */
static int relay_read_shard(relay *r, int shard) {
    store_args a;
    int catching_up, built = relay_read_args(r, shard, &a, &catching_up);
    if (built <= 0) return built;
    redisReply *rep = store_args_call(r->st, &a);
    if (!rep) return -1;
    int n = relay_read_reply(r, shard, catching_up, rep);
    freeReplyObject(rep);
    return n;
}

static void relay_read(relay *r) {
    int full = 0;
    for (int shard = 0; shard < store_shards(r->st); shard++) {
        int n = relay_read_shard(r, shard);
        if (n < 0) {
            log_warn(NULL, NULL, "relay to %s: %s", settings_service_name(r->dest), err_get());
            relay_redis_failed(r);
            return;
        }
        if (n >= r->cfg->relay_batch || r->last_pending[shard][0]) full = 1;
    }
    /* Stay awake while there may be more to read; otherwise wait for a poke or the next scan. */
    r->poked = full;
}

#define RELAY_ACKS_PER_CALL 240

/* Builds the removal of one shard's acknowledged entries (outbox_ack); returns how many it names (0: none). */
static int relay_ack_args(relay *r, int shard, store_args *a) {
    char key[STORE_KEY_LEN];
    store_key(r->st, shard, r->stream_name, key);
    relay_bookkeeping(a);
    store_args_add(a, "FCALL"), store_args_add(a, "outbox_ack"), store_args_add(a, "1");
    store_args_addf(a, "%s", key), store_args_add(a, RELAY_GROUP);
    int n = 0;
    for (int i = 0; i < r->count && n < RELAY_ACKS_PER_CALL; i++)
        if (r->entries[i].acked && r->entries[i].shard == shard) store_args_add(a, r->entries[i].entry_id), n++;
    return n;
}

/* Forgets the entries an outbox_ack removed (the first n acknowledged ones of the shard, in window order). */
static void relay_acks_applied(relay *r, int shard, int n, const redisReply *rep) {
    if (rep->type == REDIS_REPLY_ERROR) {
        log_error(NULL, NULL, "outbox_ack on %s: %s", r->stream_name, rep->str);
        return;
    }
    int marked[RELAY_ACKS_PER_CALL], k = 0;
    for (int i = 0; i < r->count && k < n; i++)
        if (r->entries[i].acked && r->entries[i].shard == shard) marked[k++] = i;
    /* From the end: removing an entry moves the window's last one into its place. */
    while (k > 0) relay_remove(r, &r->entries[marked[--k]]);
}

/* Removes acknowledged entries from their outbox streams, one Redis call per shard. */
static void relay_flush_acks(relay *r) {
    for (int shard = 0; shard < store_shards(r->st); shard++) {
        store_args a;
        int n = relay_ack_args(r, shard, &a);
        if (n == 0) continue;
        redisReply *rep = store_args_call(r->st, &a);
        if (!rep) { /* keep them marked: flushed when Redis is back */
            relay_redis_failed(r);
            return;
        }
        relay_acks_applied(r, shard, n, rep);
        freeReplyObject(rep);
    }
}

static void relay_resend_due(relay *r) {
    int64_t now = clock_mono_ms();
    for (int i = 0; i < r->count; i++) {
        relay_entry *e = &r->entries[i];
        if (e->acked || relay_entry_due(r, e) > now) continue;
        if (e->attempts >= r->cfg->relay_max_attempts) {
            if (relay_dead_letter(r, e->shard, e->entry_id, "no acknowledgement", e->attempts) == 0) {
                relay_remove(r, e);
                i--;
            } else {
                relay_redis_failed(r);
                return;
            }
            continue;
        }
        log_info(e->ticket, e->msg_id, "resending to %s (attempt %d)", settings_service_name(r->dest), e->attempts + 1);
        e->interval_ms *= 2;
        if (e->interval_ms > r->cfg->relay_backoff_max_ms) e->interval_ms = r->cfg->relay_backoff_max_ms;
        relay_send(r, e);
    }
}

static void relay_on_ack(relay *r, const Sav__Envelope *env) {
    Sav__Ack *ack = (Sav__Ack *)envelope_body(env, &sav__ack__descriptor);
    if (!ack) {
        log_warn(NULL, env->message_id, "bad ack from %s: %s", settings_service_name(r->dest), err_get());
        return;
    }
    relay_entry *e = relay_find_msg(r, ack->message_id);
    if (e && !e->acked) {
        relay_note_answer(r, e, clock_mono_ms());
        if (ack->status == SAV__ACK__STATUS__ACK) {
            e->acked = 1;
        } else if (ack->status == SAV__ACK__STATUS__RETRY) {
            log_info(e->ticket, e->msg_id, "%s asks to retry later: %s", settings_service_name(r->dest),
                     ack->reason ? ack->reason : "");
            e->retry_at = clock_mono_ms() + e->interval_ms;
        } else if (relay_dead_letter(r, e->shard, e->entry_id, ack->reason ? ack->reason : "rejected",
                                     e->attempts) == 0) {
            relay_remove(r, e);
        }
    }
    sav__ack__free_unpacked(ack, NULL);
}

void relay_on_readable(relay *r) {
    bus_msg m;
    while (bus_recv(r->sock, &m) == 1) {
        size_t len;
        const uint8_t *data = bus_frame(&m, m.nframes - 1, &len);
        Sav__Envelope *env = data ? envelope_unpack(data, len, (size_t)r->cfg->max_frame_bytes) : NULL;
        Sav__ErrorReply *er = env && env->type == SAV__MESSAGE_TYPE__ERROR_REPLY
                                  ? (Sav__ErrorReply *)envelope_body(env, &sav__error_reply__descriptor)
                                  : NULL;
        if (env && env->type == SAV__MESSAGE_TYPE__EVENT_ACK)
            relay_on_ack(r, env);
        else if (er)
            log_error(NULL, env->message_id, "%s refused a message: %s", settings_service_name(r->dest), er->message);
        else
            log_warn(NULL, NULL, "unexpected reply from %s: %s", settings_service_name(r->dest),
                     env ? envelope_type_name(env->type) : err_get());
        if (er) sav__error_reply__free_unpacked(er, NULL);
        envelope_free(env);
        bus_msg_close(&m);
    }
}

/* Reports why the destination does not let the relay in (a key it does not know, CURVE off on one side). */
static void relay_check_handshake(relay *r, int64_t now) {
    int event = 0, value = 0, failed = 0;
    char why[256];
    while (bus_monitor_read(r->monitor, &event, &value)) failed = 1;
    if (!failed || now - r->handshake_logged_at < RELAY_HANDSHAKE_LOG_MS) return;
    bus_handshake_describe(event, value, why, sizeof(why));
    log_error(NULL, NULL, "relay to %s: cannot connect to %s: %s; its messages wait in the outbox",
              settings_service_name(r->dest), r->cfg->endpoint[r->dest], why);
    r->handshake_logged_at = now;
}

#define RELAY_KEEP_CHUNK 240

/* Keeps the entries in hand this relay's: XCLAIM to itself resets their idle time, so that no other instance's
 * relay takes them over while this one still waits for their acknowledgement. */
static int relay_keep(relay *r, int shard, const char *key) {
    for (int i = 0; i < r->count;) {
        store_args a;
        relay_bookkeeping(&a);
        store_args_add(&a, "XCLAIM"), store_args_add(&a, key), store_args_add(&a, RELAY_GROUP);
        store_args_add(&a, r->consumer), store_args_add(&a, "0");
        int n = 0;
        for (; i < r->count && n < RELAY_KEEP_CHUNK; i++)
            if (r->entries[i].shard == shard && !r->entries[i].acked) store_args_add(&a, r->entries[i].entry_id), n++;
        if (n == 0) break;
        store_args_add(&a, "JUSTID");
        redisReply *rep = store_args_call(r->st, &a);
        if (!rep) return -1;
        if (rep->type == REDIS_REPLY_ERROR) log_warn(NULL, NULL, "XCLAIM on %s: %s", key, rep->str);
        freeReplyObject(rep);
    }
    return 0;
}

/* Takes over the entries another relay left idle longer than relay.takeover_ms: its instance died holding them
 * (a live one keeps its own, see relay_keep). They are sent again; the destination applies each once. */
static int relay_take_over(relay *r, int shard, const char *key) {
    int room = r->cfg->relay_window - r->count;
    if (room <= 0) return 0;
    if (room > r->cfg->relay_batch) room = r->cfg->relay_batch;
    store_args a;
    relay_bookkeeping(&a);
    store_args_add(&a, "XAUTOCLAIM"), store_args_add(&a, key), store_args_add(&a, RELAY_GROUP);
    store_args_add(&a, r->consumer), store_args_addf(&a, "%d", r->cfg->relay_takeover_ms), store_args_add(&a, "0-0");
    store_args_add(&a, "COUNT"), store_args_addf(&a, "%d", room);
    redisReply *rep = store_args_call(r->st, &a);
    if (!rep) return -1;
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 && rep->element[1]->type == REDIS_REPLY_ARRAY) {
        const redisReply *entries = rep->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            int before = r->count;
            relay_admit(r, shard, entries->element[i]);
            if (r->count > before) {
                metrics_add(r->m_taken, 1);
                log_info(r->entries[before].ticket, r->entries[before].msg_id, "taken over from a relay that died");
            }
        }
    } else if (rep->type == REDIS_REPLY_ERROR) {
        log_warn(NULL, NULL, "XAUTOCLAIM on %s: %s", key, rep->str);
        if (strncmp(rep->str, "NOGROUP", 7) == 0) r->checked_group[shard] = 0;
    }
    freeReplyObject(rep);
    return 0;
}

static void relay_claim(relay *r) {
    int64_t now = clock_mono_ms();
    if (now < r->next_claim) return;
    r->next_claim = now + r->cfg->relay_claim_ms;
    for (int shard = 0; shard < store_shards(r->st); shard++) {
        char key[STORE_KEY_LEN];
        store_key(r->st, shard, r->stream_name, key);
        if (relay_ensure_group(r, shard) != 0 || relay_keep(r, shard, key) != 0 || relay_take_over(r, shard, key) != 0) {
            relay_redis_failed(r);
            return;
        }
    }
}

static void relay_acks_done(void *ctx, redisReply *rep) {
    relay_queued *q = ctx;
    relay *r = q->r;
    if (!rep) {
        relay_redis_failed(r);
        return;
    }
    relay_acks_applied(r, q->shard, q->acks, rep);
    freeReplyObject(rep);
}

static void relay_read_done(void *ctx, redisReply *rep) {
    relay_queued *q = ctx;
    relay *r = q->r;
    int n = rep ? relay_read_reply(r, q->shard, q->catching_up, rep) : -1;
    if (rep) freeReplyObject(rep);
    if (n < 0) {
        log_warn(NULL, NULL, "relay to %s: %s", settings_service_name(r->dest), err_get());
        relay_redis_failed(r);
        return;
    }
    if (n >= r->cfg->relay_batch || r->last_pending[q->shard][0]) r->read_full = 1;
    if (q->shard == store_shards(r->st) - 1) {
        /* The read came after the writes that poked the relay: it saw their entries. */
        r->poked = r->read_full;
        r->read_full = 0;
        r->next_scan = clock_mono_ms() + r->cfg->relay_scan_ms;
    }
}

void relay_queue(relay *r, int fed) {
    if (clock_mono_ms() < r->redis_backoff_until) return;
    for (int shard = 0; shard < store_shards(r->st); shard++) {
        store_args a;
        r->queued[shard].acks = relay_ack_args(r, shard, &a);
        if (r->queued[shard].acks > 0 && store_defer(r->st, &a, relay_acks_done, &r->queued[shard]) != 0) return;
    }
    for (int shard = 0; fed && shard < store_shards(r->st); shard++) {
        store_args a;
        if (relay_read_args(r, shard, &a, &r->queued[shard].catching_up) != 1 ||
            store_defer(r->st, &a, relay_read_done, &r->queued[shard]) != 0)
            return;
    }
}

void relay_tick(relay *r) {
    int64_t now = clock_mono_ms();
    relay_check_handshake(r, now);
    if (now < r->redis_backoff_until) return;
    relay_flush_acks(r);
    relay_resend_due(r);
    relay_claim(r);
    if (r->poked || now >= r->next_scan) {
        relay_read(r);
        r->next_scan = now + r->cfg->relay_scan_ms;
    }
}

int64_t relay_next_due(const relay *r) {
    int64_t now = clock_mono_ms();
    if (now < r->redis_backoff_until) return r->redis_backoff_until;
    if (r->poked && r->count < r->cfg->relay_window) return now;
    int64_t due = r->next_scan < r->next_claim ? r->next_scan : r->next_claim;
    for (int i = 0; i < r->count; i++) {
        if (r->entries[i].acked) return now;
        int64_t at = relay_entry_due(r, &r->entries[i]);
        if (at < due) due = at;
    }
    return due;
}
