#include "service.h"
#include "auth.h"
#include "bus.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "health.h"
#include "httpd.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "textfile.h"
#include "zap.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#ifndef SAV_VERSION
#define SAV_VERSION "0.0.0"
#endif

#define SERVICE_MAX_RELAYS SVC_COUNT
#define SERVICE_POLL_MAX_MS 1000
/* How often the authorised clients file is looked at (also before every handshake). */
#define SERVICE_AUTH_CHECK_MS 1000
/* Refused handshakes are logged at most this often, with the count of the others. */
#define SERVICE_HANDSHAKE_LOG_MS 1000

/* The message being handled: where its answer goes. */
typedef struct service_message {
    const uint8_t *identity;
    size_t idlen;
    const Sav__Envelope *env;
    int64_t received_us; /* monotonic */
} service_message;

/* A message whose answer waits for its queued write, with everything needed to send it then. */
typedef struct service_pending {
    service *svc;
    uint8_t identity[256];
    size_t idlen;
    char message_id[ENVELOPE_ID_LEN];
    char ticket[ENVELOPE_ID_LEN];
    int type;
    enum service_id poke;      /* an event: the relay to wake once it is applied (SVC_COUNT: none) */
    service_finish_fn finish;  /* a request: builds its reply (NULL for an event) */
    void *ctx;
    int64_t received_us;
} service_pending;

#define SERVICE_PENDING_MAX 256
/* Messages read from the ROUTER at one time: bounded so that the relays keep running under a flood. */
#define SERVICE_BURST 256
#define SERVICE_AHEAD_SIG 512

/* One message of a burst: as received, decoded, and the reply to the read its handler starts with when that
 * read went to Redis with the burst's other reads. */
typedef struct service_read {
    int sent;                        /* this read went ahead, and its reply was not taken yet */
    redisReply *reply;               /* NULL when Redis was unreachable */
    char sig[SERVICE_AHEAD_SIG];     /* its arguments, to give it only to the same read */
} service_read;

typedef struct service_incoming {
    bus_msg msg;
    Sav__Envelope *env;  /* NULL when not [identity][empty][envelope] or refused (refusal says why) */
    char refusal[256];
    service_read ahead[SERVICE_READS_AHEAD];
} service_incoming;
#define SERVICE_MAX_ROUTES 8
#define SERVICE_HEALTH_MS 1000   /* how often the health the HTTP probes read is refreshed */
#define SERVICE_LIVE_MS 10000    /* a loop silent this long is not alive */
#define SERVICE_TYPE_METRICS 128 /* message types counted (their numbers are below this) */

/* What each message type costs: how many, and how long until their answer went. */
typedef struct service_type_metrics {
    metrics_counter *count;
    metrics_histogram *seconds;
} service_type_metrics;

struct service {
    const service_def *def;
    settings cfg;
    store *st;
    void *router;
    relay *relays[SERVICE_MAX_RELAYS];
    enum service_id relay_dest[SERVICE_MAX_RELAYS];
    size_t nrelays;
    catalog *cat;
    long long cat_version;
    int64_t next_catalog_check;
    int64_t next_tick;
    void *state;
    auth_table *auth;             /* the identities admitted; NULL when security.curve is off */
    zap *zap;
    void *monitor;                /* the ROUTER's handshake failures */
    int64_t handshake_logged_at;
    unsigned handshakes_quiet;    /* refused handshakes not logged since */
    int64_t next_auth_check;
    keys_pair keys;               /* this service's CURVE key pair */
    char public_keys[SVC_COUNT][KEYS_Z85_LEN + 1];
    int serving;                  /* a request is being handled */
    const auth_identity *caller;  /* who sent it (NULL when security.curve is off) */
    const service_message *current; /* the message being handled, for a handler that queues its write */
    service_incoming *burst;      /* SERVICE_BURST messages read at once */
    store_args *reads;            /* SERVICE_READS_AHEAD, where a route builds its reads ahead */
    service_incoming *handling;   /* the one of them being handled */
    char pending[SERVICE_PENDING_MAX][ENVELOPE_ID_LEN]; /* the tickets with a queued write */
    unsigned feeds;               /* bit per service: a queued write may append to the outbox towards it */
    int npending;
    httpd *http;                  /* SERVICE.http_listen: health, metrics, and the routes the service adds */
    httpd_route routes[SERVICE_MAX_ROUTES];
    size_t nroutes;
    pthread_mutex_t health_lock;  /* health is read by the listener's thread */
    health_facts health;
    _Atomic int64_t heartbeat_ms; /* the loop's last turn (monotonic) */
    int64_t next_health_ms, started_ms;
    service_type_metrics types[SERVICE_TYPE_METRICS];
    metrics_gauge *g_redis_up, *g_outbox_depth, *g_outbox_oldest, *g_dead_letters;
};

static volatile sig_atomic_t service_stop;

static void service_on_signal(int sig) {
    (void)sig;
    service_stop = 1;
}

const settings *service_settings(const service *svc) { return &svc->cfg; }
store *service_store(service *svc) { return svc->st; }
void service_set_state(service *svc, void *state) { svc->state = state; }
void *service_state(service *svc) { return svc->state; }
const catalog *service_catalog(const service *svc) { return svc->cat; }
long long service_catalog_version(const service *svc) { return svc->cat_version; }

const char *service_actor(const service *svc) {
    if (!svc->serving) return settings_service_name(svc->def->id);
    return svc->caller ? svc->caller->name : "anonymous";
}

int service_catalog_publish(service *svc, const char *json, size_t len, const catalog *parsed, int only_if_absent,
                            long long *version) {
    char key[STORE_KEY_LEN], vkey[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    store_key(svc->st, 0, "catalog", key);
    store_key(svc->st, 0, "catalog:version", vkey);
    store_shard_prefix(svc->st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "catalog_store"), store_args_add(&a, "2");
    store_args_add(&a, key), store_args_add(&a, vkey), store_args_add(&a, prefix);
    store_args_addb(&a, json, len);
    store_args_add(&a, only_if_absent ? "1" : "0");
    const catalog_part *p;
    for (size_t i = 0; (p = catalog_part_at(parsed, i)) != NULL; i++)
        for (int j = 0; j < p->nstock; j++) {
            store_args_add(&a, p->stock[j].centre), store_args_add(&a, p->ref);
            store_args_addf(&a, "%d", p->stock[j].quantity);
        }
    redisReply *r = store_args_call(svc->st, &a);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    if (rc == 0)
        *version = r->integer;
    else
        err_set("catalog_store: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    return rc;
}

/* Publishes catalog.path when Redis has no catalog yet (the first start); the file also serves while
 * Redis is down. 0, or -1 with err when the file itself is bad. */
static int service_catalog_bootstrap(service *svc) {
    char path[PATH_MAX];
    size_t len;
    settings_resolve_path(&svc->cfg, svc->cfg.catalog_path, path, sizeof(path));
    char *json = textfile_read(path, (size_t)svc->cfg.max_frame_bytes, &len);
    if (!json) return -1;
    catalog *parsed = catalog_parse(json, len);
    if (!parsed) {
        char why[512];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("%s: %s", path, why);
        free(json);
        return -1;
    }
    long long version;
    if (service_catalog_publish(svc, json, len, parsed, 1, &version) != 0)
        log_warn(NULL, NULL, "catalog not published (%s): using %s until Redis answers", err_get(), path);
    free(json);
    if (!svc->cat) {
        svc->cat = parsed;
        svc->cat_version = 0;
    } else {
        catalog_free(parsed);
    }
    return 0;
}

int service_catalog_sync(service *svc) {
    char key[STORE_KEY_LEN], vkey[STORE_KEY_LEN];
    store_key(svc->st, 0, "catalog", key);
    store_key(svc->st, 0, "catalog:version", vkey);
    const char *argv[] = {"GET", vkey};
    size_t lens[] = {3, strlen(vkey)};
    redisReply *r = store_call(svc->st, 2, argv, lens);
    if (!r) return -1;
    long long version = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;
    freeReplyObject(r);
    if (version == 0 || version == svc->cat_version) return 0;
    argv[1] = key, lens[1] = strlen(key);
    r = store_call(svc->st, 2, argv, lens);
    if (!r) return -1;
    catalog *fresh = r->type == REDIS_REPLY_STRING ? catalog_parse(r->str, r->len) : NULL;
    freeReplyObject(r);
    if (!fresh) {
        log_error(NULL, NULL, "catalog version %lld in Redis is unusable: %s", version, err_get());
        return -1;
    }
    catalog_free(svc->cat);
    svc->cat = fresh;
    svc->cat_version = version;
    log_info(NULL, NULL, "catalog version %lld in force", version);
    return 0;
}

/* Reads the authorised clients file again if it changed; a file that does not parse leaves the identities alone. */
static void service_auth_refresh(service *svc) {
    int rc = auth_reload(svc->auth);
    if (rc > 0)
        log_info(NULL, NULL, "authorised clients read: %zu operator(s)", auth_operators(svc->auth));
    else if (rc < 0)
        log_error(NULL, NULL, "authorised clients not read again, the identities in force stay: %s", err_get());
    svc->next_auth_check = clock_mono_ms() + SERVICE_AUTH_CHECK_MS;
}

/* Logs the handshakes the ROUTER refused (plain clients, clients with a wrong server key). Refused keys are
 * logged by the ZAP handler. A plain client may also hang up first, when it reads our greeting before we read
 * its own: that, like a port probe, is only a handshake cut short, logged at info. */
static void service_log_handshakes(service *svc) {
    int event, value;
    int64_t now = clock_mono_ms();
    while (bus_monitor_read(svc->monitor, &event, &value)) {
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) continue;
        if (now - svc->handshake_logged_at < SERVICE_HANDSHAKE_LOG_MS) {
            svc->handshakes_quiet++;
            continue;
        }
        char why[256];
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            bus_handshake_describe(event, value, why, sizeof(why));
        else
            snprintf(why, sizeof(why), "the peer hung up during the handshake (not a CURVE client of this service, "
                                       "or a port probe)");
        log_write(event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? LOG_WARN : LOG_INFO, NULL, NULL,
                  "refused a connection on %s: %s (%u other refusal(s) since the last report)",
                  svc->cfg.endpoint[svc->def->id], why, svc->handshakes_quiet);
        svc->handshake_logged_at = now;
        svc->handshakes_quiet = 0;
    }
}

/* Runs what is due besides messages: catalog refresh and the service's timers. */
static void service_health_refresh(service *svc);

static void service_timers(service *svc) {
    int64_t now = clock_mono_ms();
    atomic_store(&svc->heartbeat_ms, now);
    service_health_refresh(svc);
    if (svc->def->uses_catalog && now >= svc->next_catalog_check) {
        svc->next_catalog_check = now + svc->cfg.catalog_check_ms;
        if (service_catalog_sync(svc) != 0) log_warn(NULL, NULL, "catalog check: %s", err_get());
    }
    if (svc->def->tick && now >= svc->next_tick) {
        svc->next_tick = now + svc->cfg.scheduler_ms;
        svc->def->tick(svc);
    }
}

relay *service_relay(service *svc, enum service_id dest) {
    for (size_t i = 0; i < svc->nrelays; i++)
        if (svc->relay_dest[i] == dest) return svc->relays[i];
    return NULL;
}

void service_reply_msg(service_reply *reply, Sav__MessageType type, const ProtobufCMessage *msg) {
    envelope_buf_free(&reply->body);
    reply->type = type;
    reply->body.len = protobuf_c_message_get_packed_size(msg);
    reply->body.data = malloc(reply->body.len ? reply->body.len : 1);
    if (!reply->body.data) {
        reply->body.len = 0;
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, reply->body.data);
}

void service_reply_error(service_reply *reply, Sav__ErrorCode code, const char *fmt, ...) {
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    Sav__ErrorReply er = SAV__ERROR_REPLY__INIT;
    er.code = code;
    er.message = text;
    service_reply_msg(reply, SAV__MESSAGE_TYPE__ERROR_REPLY, &er.base);
}

void service_seen_key(service *svc, const Sav__Envelope *in, char out[STORE_KEY_LEN]) {
    char name[128];
    snprintf(name, sizeof(name), "seen:%s:%s", settings_service_name(svc->def->id), in->message_id);
    store_key(svc->st, store_ticket_shard(svc->st, in->ticket_id), name, out);
}

/* The Ack status a Function's answer stands for (see service_ack_status), r left to the caller. */
static Sav__Ack__Status service_ack_of(const char *ticket, const char *message_id, const redisReply *r, char *reason,
                                       size_t reason_len) {
    Sav__Ack__Status status = SAV__ACK__STATUS__RETRY;
    if (!r) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
    } else if (r->type == REDIS_REPLY_STRING && strncmp(r->str, "retry:", 6) == 0) {
        snprintf(reason, reason_len, "%s", r->str + 6);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        if (strcmp(r->str, "duplicate") == 0) log_info(ticket, message_id, "duplicate, acknowledged again");
        status = SAV__ACK__STATUS__ACK;
    } else {
        /* A script error is a bug or an overloaded Redis, not a bad message: keep it for a retry. */
        snprintf(reason, reason_len, "redis refused: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        log_error(ticket, message_id, "%s", reason);
    }
    return status;
}

Sav__Ack__Status service_ack_status(service *svc, const Sav__Envelope *in, redisReply *r, char *reason,
                                    size_t reason_len) {
    (void)svc;
    Sav__Ack__Status status = service_ack_of(in->ticket_id, in->message_id, r, reason, reason_len);
    if (r) freeReplyObject(r);
    return status;
}

Sav__Ack__Status service_apply_event(service *svc, const Sav__Envelope *in, const service_change *c, char *reason,
                                     size_t reason_len) {
    if (!in->ticket_id) {
        snprintf(reason, reason_len, "%s without a ticket id", envelope_type_name(in->type));
        return SAV__ACK__STATUS__REJECT;
    }
    int shard = store_ticket_shard(svc->st, in->ticket_id);
    char seen[STORE_KEY_LEN], outbox[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[48];
    service_seen_key(svc, in, seen);
    snprintf(name, sizeof(name), "outbox:%s", c->dest < SVC_COUNT ? settings_service_name(c->dest) : "none");
    store_key(svc->st, shard, name, outbox);
    store_shard_prefix(svc->st, shard, prefix);
    envelope_buf body = {0};
    if (c->dest < SVC_COUNT) {
        body.len = protobuf_c_message_get_packed_size(c->out_body);
        body.data = malloc(body.len ? body.len : 1);
        if (!body.data) {
            snprintf(reason, reason_len, "out of memory");
            return SAV__ACK__STATUS__RETRY;
        }
        protobuf_c_message_pack(c->out_body, body.data);
    }
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "event_apply"), store_args_add(&a, "2");
    store_args_add(&a, seen), store_args_add(&a, outbox);
    store_args_add(&a, prefix), store_args_add(&a, in->ticket_id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", svc->cfg.dedup_ttl_days * 86400);
    store_args_add(&a, c->section), store_args_add(&a, c->need_state), store_args_add(&a, c->new_state);
    store_args_add(&a, c->event), store_args_add(&a, settings_service_name(svc->def->id));
    store_args_add(&a, c->detail);
    if (c->dest < SVC_COUNT)
        store_args_addf(&a, "%d", (int)c->out_type);
    else
        store_args_add(&a, "");
    store_args_addb(&a, body.data, body.len);
    store_args_add(&a, c->unless_decided ? "1" : "0");
    for (size_t i = 0; i < 2 * c->nfields; i++) store_args_add(&a, c->fields[i]);
    Sav__Ack__Status status = service_ack_after(svc, in, &a, c->dest, reason, reason_len);
    envelope_buf_free(&body);
    return status;
}

/* Reads the service's health from Redis now. */
static void service_health_read(service *svc, health_facts *h) {
    const char *outboxes[SERVICE_MAX_RELAYS];
    for (size_t i = 0; i < svc->nrelays; i++) outboxes[i] = relay_stream_name(svc->relays[i]);
    health_read(svc->st, outboxes, (int)svc->nrelays, h);
}

static void service_on_ping(service *svc, const Sav__Envelope *req, service_reply *reply) {
    (void)req;
    health_facts h;
    service_health_read(svc, &h);
    Sav__Pong pong = SAV__PONG__INIT;
    pong.service = (char *)settings_service_name(svc->def->id);
    pong.version = SAV_VERSION;
    char bound[SETTINGS_STR];
    settings_bind_endpoint(&svc->cfg, svc->def->id, bound);
    pong.endpoint = bound;
    pong.instance = svc->cfg.instance;
    pong.has_uptime_s = 1, pong.uptime_s = (clock_mono_ms() - svc->started_ms) / 1000;
    pong.redis_ok = h.redis_ok;
    if (h.redis_ok) {
        pong.has_outbox_depth = 1, pong.outbox_depth = h.outbox_depth;
        pong.has_dead_letters = 1, pong.dead_letters = h.dead_letters;
        pong.has_oldest_pending_ms = 1, pong.oldest_pending_ms = h.oldest_pending_ms;
        pong.redis_role = h.redis_role;
        pong.has_redis_lag_ms = h.redis_lag_ms >= 0, pong.redis_lag_ms = h.redis_lag_ms;
    }
    service_reply_msg(reply, SAV__MESSAGE_TYPE__PONG, &pong.base);
}

/* ---- health and metrics over HTTP ------------------------------------------ */

int service_http_route(service *svc, const char *path, httpd_handler handler, void *ctx) {
    if (svc->nroutes == SERVICE_MAX_ROUTES) {
        err_set("too many HTTP routes");
        return -1;
    }
    svc->routes[svc->nroutes++] = (httpd_route){path, handler, ctx, NULL};
    return 0;
}

static health_facts service_health_copy(service *svc) {
    pthread_mutex_lock(&svc->health_lock);
    health_facts h = svc->health;
    pthread_mutex_unlock(&svc->health_lock);
    return h;
}

/* GET /health/live: the loop still turns (Kubernetes' liveness, systemd's watchdog). */
static int service_http_live(void *ctx, const httpd_request *req, httpd_reply *reply) {
    (void)req;
    service *svc = ctx;
    int64_t quiet = clock_mono_ms() - atomic_load(&svc->heartbeat_ms);
    httpd_printf(reply, quiet < SERVICE_LIVE_MS ? "alive\n" : "stuck: no turn of the loop for %lld ms\n", (long long)quiet);
    return quiet < SERVICE_LIVE_MS ? 200 : 503;
}

/* GET /health/ready: the service can do its work (it reaches Redis and is not stopping). */
static int service_http_ready(void *ctx, const httpd_request *req, httpd_reply *reply) {
    (void)req;
    service *svc = ctx;
    health_facts h = service_health_copy(svc);
    int ready = h.redis_ok && !service_stop;
    httpd_printf(reply, "%s\n", ready ? "ready" : service_stop ? "not ready: stopping" : "not ready: redis unreachable");
    return ready ? 200 : 503;
}

/* GET /health: everything savctl status shows, as JSON. */
static int service_http_health(void *ctx, const httpd_request *req, httpd_reply *reply) {
    (void)req;
    service *svc = ctx;
    health_facts h = service_health_copy(svc);
    httpd_printf(reply, "{\"service\": \"%s\", \"instance\": \"%s\", \"version\": \"%s\", \"status\": \"%s\", "
                        "\"uptime_s\": %lld, ", settings_service_name(svc->def->id), svc->cfg.instance, SAV_VERSION,
                 h.redis_ok ? "up" : "degraded", (long long)((clock_mono_ms() - svc->started_ms) / 1000));
    health_json(&h, reply);
    httpd_printf(reply, "}\n");
    return h.redis_ok ? 200 : 503;
}

static int service_http_metrics(void *ctx, const httpd_request *req, httpd_reply *reply) {
    (void)ctx, (void)req;
    metrics_render(reply);
    return 200;
}

/* Refreshes what the probes and the gauges read, at most every SERVICE_HEALTH_MS. */
static void service_health_refresh(service *svc) {
    if (!svc->http || clock_mono_ms() < svc->next_health_ms) return;
    svc->next_health_ms = clock_mono_ms() + SERVICE_HEALTH_MS;
    health_facts h;
    service_health_read(svc, &h);
    pthread_mutex_lock(&svc->health_lock);
    svc->health = h;
    pthread_mutex_unlock(&svc->health_lock);
    metrics_set(svc->g_redis_up, h.redis_ok);
    metrics_set(svc->g_outbox_depth, (double)h.outbox_depth);
    metrics_set(svc->g_outbox_oldest, (double)h.oldest_pending_ms / 1000.0);
    metrics_set(svc->g_dead_letters, (double)h.dead_letters);
}

/* Starts SERVICE.http_listen with the service's routes and the common ones; 0 or -1 with err. */
static int service_http_start(service *svc) {
    const char *listen = svc->cfg.http_listen[svc->def->id];
    if (strcmp(listen, "off") == 0) return 0;
    if (service_http_route(svc, "/health", service_http_health, svc) != 0 ||
        service_http_route(svc, "/health/live", service_http_live, svc) != 0 ||
        service_http_route(svc, "/health/ready", service_http_ready, svc) != 0 ||
        service_http_route(svc, "/metrics", service_http_metrics, svc) != 0)
        return -1;
    svc->routes[svc->nroutes - 1].content_type = "text/plain; version=0.0.4; charset=utf-8";
    svc->g_redis_up = metrics_gauge_new("sav_redis_up", "1 when the service reaches Redis", NULL, NULL);
    svc->g_outbox_depth = metrics_gauge_new("sav_outbox_depth", "Messages waiting in this service's outboxes", NULL, NULL);
    svc->g_outbox_oldest = metrics_gauge_new("sav_outbox_oldest_seconds", "Age of the oldest of them", NULL, NULL);
    svc->g_dead_letters = metrics_gauge_new("sav_dead_letters", "Messages in the dead-letter stream", NULL, NULL);
    service_health_refresh(svc);
    svc->http = httpd_start(listen, svc->routes, svc->nroutes);
    if (!svc->http) return -1;
    svc->next_health_ms = 0;
    service_health_refresh(svc);
    log_info(NULL, NULL, "HTTP health and metrics on %s", listen);
    return 0;
}

/* Counts a message of this type and the time until its answer went. */
static void service_count(service *svc, int type, int64_t received_us) {
    if (type < 0 || type >= SERVICE_TYPE_METRICS) return;
    service_type_metrics *m = &svc->types[type];
    const char *name = envelope_type_name(type);
    if (!m->count && name) {
        m->count = metrics_counter_new("sav_messages_total", "Messages handled, by type", "type", name);
        m->seconds = metrics_histogram_new("sav_message_seconds", "From a message's arrival to its answer, by type",
                                           "type", name);
    }
    metrics_add(m->count, 1);
    metrics_observe_us(m->seconds, clock_mono_us() - received_us);
}

void service_reply_json(service_reply *reply, json_t *result) {
    char *text = result ? json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(result);
    if (!text) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "cannot encode the result");
        return;
    }
    Sav__CommandResult r = SAV__COMMAND_RESULT__INIT;
    r.json = text;
    service_reply_msg(reply, SAV__MESSAGE_TYPE__COMMAND_RESULT, &r.base);
    free(text);
}

int service_reply_failure(service_reply *reply, const redisReply *r, const char *what) {
    if (!r)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOTFOUND", 8) == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no %s", what);
    else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "REFUSED ", 8) == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", r->str + 8);
    else if (r->type == REDIS_REPLY_ERROR)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", r->str);
    else
        return 0;
    return 1;
}

/* Refuses (0, reply set, logged) an action the caller's role may not perform; 1 when it may. */
static int service_allowed(service *svc, const Sav__Envelope *env, const char *action, service_reply *reply) {
    if (!svc->auth || auth_allows(svc->caller->role, action)) return 1;
    const char *role = auth_role_name(svc->caller->role);
    log_warn(env->ticket_id, env->message_id, "refused %s from %s (role %s): not allowed for the role", action,
             svc->caller->name, role);
    service_reply_error(reply, SAV__ERROR_CODE__ERR_FORBIDDEN, "%s (role %s) may not run %s", svc->caller->name, role,
                        action);
    return 0;
}

/* whoami: the identity this service authenticated, its role and what it may run here. */
static void service_on_whoami(service *svc, service_reply *reply) {
    json_t *commands = json_array();
    for (size_t i = 0; i < svc->def->nroutes; i++) {
        const char *name = envelope_type_name(svc->def->routes[i].type);
        if (svc->def->routes[i].on_request && (!svc->auth || auth_allows(svc->caller->role, name)))
            json_array_append_new(commands, json_string(name));
    }
    for (size_t i = 0; i < svc->def->ncommands; i++)
        if (!svc->auth || auth_allows(svc->caller->role, svc->def->commands[i].name))
            json_array_append_new(commands, json_string(svc->def->commands[i].name));
    service_reply_json(reply, json_pack("{s:s,s:s?,s:b,s:s,s:o}", "identity", service_actor(svc), "role",
                                        svc->auth ? auth_role_name(svc->caller->role) : NULL, "authenticated",
                                        svc->auth != NULL, "service", settings_service_name(svc->def->id),
                                        "commands", commands));
}

static void service_on_command(service *svc, const Sav__Envelope *env, service_reply *reply) {
    Sav__Command *cmd = (Sav__Command *)envelope_body(env, &sav__command__descriptor);
    if (!cmd) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (!service_allowed(svc, env, cmd->name, reply)) {
        sav__command__free_unpacked(cmd, NULL);
        return;
    }
    if (strcmp(cmd->name, "whoami") == 0) {
        service_on_whoami(svc, reply);
        sav__command__free_unpacked(cmd, NULL);
        return;
    }
    const service_command *found = NULL;
    for (size_t i = 0; i < svc->def->ncommands && !found; i++)
        if (strcmp(svc->def->commands[i].name, cmd->name) == 0) found = &svc->def->commands[i];
    if (!found)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_USAGE, "%s has no command \"%s\"",
                            settings_service_name(svc->def->id), cmd->name);
    else if (command_check_names(cmd, found->args) != 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_USAGE, "%s", err_get());
    else
        found->run(svc, cmd, reply);
    sav__command__free_unpacked(cmd, NULL);
}

static const service_route *service_find_route(const service *svc, int type) {
    for (size_t i = 0; i < svc->def->nroutes; i++)
        if ((int)svc->def->routes[i].type == type) return &svc->def->routes[i];
    return NULL;
}

static void service_ack(service_reply *reply, const char *message_id, Sav__Ack__Status status, const char *reason) {
    Sav__Ack ack = SAV__ACK__INIT;
    ack.message_id = (char *)message_id;
    ack.status = status;
    ack.reason = reason[0] ? (char *)reason : NULL;
    service_reply_msg(reply, SAV__MESSAGE_TYPE__EVENT_ACK, &ack.base);
}

/* Decides the reply to one decoded envelope. */
static void service_dispatch(service *svc, const Sav__Envelope *env, service_reply *reply) {
    /* A command's action is its name, checked once the body is decoded. */
    if (env->type != SAV__MESSAGE_TYPE__COMMAND && !service_allowed(svc, env, envelope_type_name(env->type), reply))
        return;
    if (env->type == SAV__MESSAGE_TYPE__PING) {
        service_on_ping(svc, env, reply);
        return;
    }
    if (env->type == SAV__MESSAGE_TYPE__COMMAND) {
        service_on_command(svc, env, reply);
        return;
    }
    const service_route *route = service_find_route(svc, env->type);
    if (route && route->on_request) {
        route->on_request(svc, env, reply);
        return;
    }
    char reason[256] = "";
    Sav__Ack__Status status = SAV__ACK__STATUS__REJECT;
    if (route) {
        status = route->on_event(svc, env, reason, sizeof(reason));
        if (status == SERVICE_ACK_LATER) {
            reply->later = 1;
            return;
        }
    } else if (env->type >= SAV__MESSAGE_TYPE__TICKET_RECEIVED) {
        snprintf(reason, sizeof(reason), "%s does not handle %s", settings_service_name(svc->def->id),
                 envelope_type_name(env->type));
    } else {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_USAGE, "%s does not serve %s requests",
                            settings_service_name(svc->def->id), envelope_type_name(env->type));
        return;
    }
    if (status != SAV__ACK__STATUS__ACK)
        log_warn(env->ticket_id, env->message_id, "%s %s: %s", envelope_type_name(env->type),
                 status == SAV__ACK__STATUS__RETRY ? "retry" : "rejected", reason);
    service_ack(reply, env->message_id, status, reason);
}

static void service_send_reply(service *svc, const uint8_t *identity, size_t idlen, const char *message_id,
                               const char *ticket, service_reply *reply) {
    envelope_buf frame = {0};
    if (envelope_pack_raw(reply->type, message_id, ticket, settings_service_name(svc->def->id), clock_now_ms(),
                          reply->body.data, reply->body.len, &frame) != 0) {
        log_error(ticket, message_id, "cannot pack reply: %s", err_get());
        return;
    }
    const void *frames[3] = {identity, "", frame.data};
    size_t lens[3] = {idlen, 0, frame.len};
    /* ROUTER_MANDATORY: a peer that went away is reported, not silently dropped; it will retry. */
    if (bus_send(svc->router, 3, frames, lens) != 0)
        log_warn(ticket, message_id, "reply not delivered: %s", err_get());
    envelope_buf_free(&frame);
}

/* Sends the queued writes of the burst, then every answer that waited for them. The relays' acknowledgements,
 * and the reads of the outboxes those writes append to, go in the same round trip, after the writes. */
static void service_flush(service *svc) {
    if (store_deferred(svc->st)) {
        for (size_t i = 0; i < svc->nrelays; i++)
            relay_queue(svc->relays[i], (svc->feeds >> svc->relay_dest[i]) & 1);
        store_flush(svc->st);
    }
    svc->feeds = 0;
    svc->npending = 0;
}

static int service_ticket_pending(const service *svc, const char *ticket) {
    for (int i = 0; ticket && i < svc->npending; i++)
        if (strcmp(svc->pending[i], ticket) == 0) return 1;
    return 0;
}

/* Copies where the current message's answer goes; NULL with err when out of memory. */
static service_pending *service_pending_new(service *svc) {
    const service_message *m = svc->current;
    service_pending *p = calloc(1, sizeof(*p));
    if (!p || m->idlen > sizeof(p->identity)) {
        err_set("%s", p ? "identity too long" : "out of memory");
        free(p);
        return NULL;
    }
    p->svc = svc;
    memcpy(p->identity, m->identity, m->idlen);
    p->idlen = m->idlen;
    snprintf(p->message_id, sizeof(p->message_id), "%s", m->env->message_id);
    snprintf(p->ticket, sizeof(p->ticket), "%s", m->env->ticket_id ? m->env->ticket_id : "");
    p->type = m->env->type;
    p->received_us = m->received_us;
    if (m->env->ticket_id && svc->npending < SERVICE_PENDING_MAX)
        snprintf(svc->pending[svc->npending++], ENVELOPE_ID_LEN, "%s", m->env->ticket_id);
    return p;
}

static void service_event_done(void *ctx, redisReply *r) {
    service_pending *p = ctx;
    char reason[256] = "";
    const char *ticket = p->ticket[0] ? p->ticket : NULL;
    Sav__Ack__Status status = service_ack_of(ticket, p->message_id, r, reason, sizeof(reason));
    if (status == SAV__ACK__STATUS__ACK && p->poke < SVC_COUNT) relay_poke(service_relay(p->svc, p->poke));
    if (status != SAV__ACK__STATUS__ACK)
        log_warn(ticket, p->message_id, "%s retry: %s", envelope_type_name(p->type), reason);
    service_reply reply = {0};
    service_ack(&reply, p->message_id, status, reason);
    service_send_reply(p->svc, p->identity, p->idlen, p->message_id, ticket, &reply);
    service_count(p->svc, p->type, p->received_us);
    envelope_buf_free(&reply.body);
    if (r) freeReplyObject(r);
    free(p);
}

Sav__Ack__Status service_ack_after(service *svc, const Sav__Envelope *in, const store_args *a, enum service_id poke,
                                   char *reason, size_t reason_len) {
    service_pending *p = svc->current ? service_pending_new(svc) : NULL;
    if (p) p->poke = poke;
    if (p && store_defer(svc->st, a, service_event_done, p) == 0) {
        if (poke < SVC_COUNT) svc->feeds |= 1u << poke;
        return SERVICE_ACK_LATER;
    }
    free(p);
    /* Not in a burst, or it cannot be queued: applied now. */
    redisReply *r = store_args_call(svc->st, (store_args *)a);
    Sav__Ack__Status status = service_ack_status(svc, in, r, reason, reason_len);
    if (status == SAV__ACK__STATUS__ACK && poke < SVC_COUNT) relay_poke(service_relay(svc, poke));
    return status;
}

static void service_request_done(void *ctx, redisReply *r) {
    service_pending *p = ctx;
    service_reply reply = {0};
    p->finish(p->svc, r, p->ctx, &reply);
    service_send_reply(p->svc, p->identity, p->idlen, p->message_id, p->ticket[0] ? p->ticket : NULL, &reply);
    service_count(p->svc, p->type, p->received_us);
    envelope_buf_free(&reply.body);
    if (r) freeReplyObject(r);
    free(p);
}

void service_reply_after(service *svc, const store_args *a, enum service_id feeds, service_finish_fn finish,
                         void *ctx, service_reply *reply) {
    service_pending *p = svc->current ? service_pending_new(svc) : NULL;
    if (p) p->finish = finish, p->ctx = ctx;
    if (p && store_defer(svc->st, a, service_request_done, p) == 0) {
        if (feeds < SVC_COUNT) svc->feeds |= 1u << feeds;
        reply->later = 1;
        return;
    }
    free(p);
    redisReply *r = store_args_call(svc->st, (store_args *)a);
    finish(svc, r, ctx, reply);
    if (r) freeReplyObject(r);
}

/* Only these may leave their write queued: every other message first sees the burst's writes applied. */
static int service_may_queue(const Sav__Envelope *env) {
    return env->type == SAV__MESSAGE_TYPE__TICKET_OPEN || env->type >= SAV__MESSAGE_TYPE__TICKET_RECEIVED;
}

/* Handles one message from the ROUTER: [identity][empty][envelope]. */
static void service_on_message(service *svc, service_incoming *in) {
    const bus_msg *m = &in->msg;
    size_t idlen;
    const uint8_t *identity = bus_frame(m, 0, &idlen);
    service_reply reply = {0};
    if (!identity) return;
    if (!in->env && !in->refusal[0]) {
        log_warn(NULL, NULL, "refused a message of %d frame(s): expected [empty][envelope]", m->nframes - 1);
        service_reply_error(&reply, SAV__ERROR_CODE__ERR_REJECTED, "expected 2 frames [empty][envelope], got %d",
                            m->nframes - 1);
        service_send_reply(svc, identity, idlen, "invalid", NULL, &reply);
        envelope_buf_free(&reply.body);
        return;
    }
    const Sav__Envelope *env = in->env;
    const char *user = bus_msg_user_id(m);
    svc->caller = svc->auth && user ? auth_find_name(svc->auth, user) : NULL;
    if (!env) {
        log_warn(NULL, NULL, "refused a frame: %s", in->refusal);
        service_reply_error(&reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", in->refusal);
        service_send_reply(svc, identity, idlen, "invalid", NULL, &reply);
    } else if (svc->auth && !svc->caller) {
        /* Admitted at the handshake, since removed from the authorised clients. */
        log_warn(env->ticket_id, env->message_id, "refused %s from %s: no longer an authorised identity",
                 envelope_type_name(env->type), user ? user : "a connection without an identity");
        service_reply_error(&reply, SAV__ERROR_CODE__ERR_FORBIDDEN, "%s is not an authorised identity",
                            user ? user : "this connection");
        service_send_reply(svc, identity, idlen, env->message_id, env->ticket_id, &reply);
    } else {
        /* A message reads what the writes before it did: those of its own ticket, or all for the others. */
        if (!service_may_queue(env) || service_ticket_pending(svc, env->ticket_id)) service_flush(svc);
        service_message current = {identity, idlen, env, clock_mono_us()};
        svc->serving = 1;
        svc->current = &current;
        svc->handling = in;
        log_debug(env->ticket_id, env->message_id, "received %s", envelope_type_name(env->type));
        service_dispatch(svc, env, &reply);
        if (!reply.later) {
            service_send_reply(svc, identity, idlen, env->message_id, env->ticket_id, &reply);
            service_count(svc, env->type, current.received_us);
        }
        svc->handling = NULL;
        svc->current = NULL;
        svc->serving = 0;
    }
    svc->caller = NULL;
    envelope_buf_free(&reply.body);
}

/* Decodes a message just received; a frame that does not decode keeps the reason of its refusal. */
static void service_decode(service *svc, service_incoming *in) {
    size_t emptylen, len;
    const uint8_t *empty = bus_frame(&in->msg, 1, &emptylen);
    const uint8_t *data = in->msg.nframes == 3 && empty && emptylen == 0 ? bus_frame(&in->msg, 2, &len) : NULL;
    in->env = data ? envelope_unpack(data, len, (size_t)svc->cfg.max_frame_bytes) : NULL;
    in->refusal[0] = '\0';
    if (data && !in->env) snprintf(in->refusal, sizeof(in->refusal), "%s", err_get());
    for (int i = 0; i < SERVICE_READS_AHEAD; i++) in->ahead[i].sent = 0, in->ahead[i].reply = NULL;
}

static void service_release(service_incoming *in) {
    envelope_free(in->env);
    in->env = NULL;
    for (int i = 0; i < SERVICE_READS_AHEAD; i++) {
        if (in->ahead[i].reply) freeReplyObject(in->ahead[i].reply);
        in->ahead[i].reply = NULL;
    }
    bus_msg_close(&in->msg);
}

/* Joins a command's arguments into out; -1 when they do not fit (such a read is never sent ahead). */
static int service_read_sig(const store_args *a, char out[SERVICE_AHEAD_SIG]) {
    size_t used = 0;
    for (int i = 0; i < a->argc; i++) {
        if (a->overflow || used + a->len[i] + 1 >= SERVICE_AHEAD_SIG || memchr(a->argv[i], '\0', a->len[i])) return -1;
        memcpy(out + used, a->argv[i], a->len[i]);
        used += a->len[i];
        out[used++] = '\n';
    }
    out[used] = '\0';
    return 0;
}

static void service_ahead_done(void *ctx, redisReply *r) {
    ((service_read *)ctx)->reply = r;
}

/* 1 when a message of the same ticket comes earlier in the burst (its write may change what this one reads). */
static int service_ticket_earlier(const service_incoming *in, int i) {
    for (int k = 0; k < i && in[i].env->ticket_id; k++)
        if (in[k].env && in[k].env->ticket_id && strcmp(in[k].env->ticket_id, in[i].env->ticket_id) == 0) return 1;
    return 0;
}

/* Queues the reads of one message's route; returns how many. */
static int service_queue_reads(service *svc, service_incoming *in) {
    const service_route *route = service_find_route(svc, in->env->type);
    int n = route && route->read_ahead ? route->read_ahead(svc, in->env, svc->reads) : 0, queued = 0;
    for (int r = 0; r < n && r < SERVICE_READS_AHEAD; r++)
        if (service_read_sig(&svc->reads[r], in->ahead[r].sig) == 0 &&
            store_defer(svc->st, &svc->reads[r], service_ahead_done, &in->ahead[r]) == 0)
            in->ahead[r].sent = 1, queued++;
    return queued;
}

/* Sends the reads the burst's messages start with in one round trip, instead of one round trip each while they
 * are handled. A read goes ahead only when no message before it in the burst may change what it reads: none of
 * the same ticket, and no command (which may change anything) before it. */
static void service_read_burst_ahead(service *svc, service_incoming *in, int n) {
    int queued = 0;
    for (int i = 0; i < n; i++) {
        if (!in[i].env) continue;
        if (!service_may_queue(in[i].env)) break;
        if (!service_ticket_earlier(in, i)) queued += service_queue_reads(svc, &in[i]);
    }
    if (queued) store_flush(svc->st);
}

redisReply *service_read_ahead(service *svc, const store_args *a) {
    service_incoming *in = svc->handling;
    char sig[SERVICE_AHEAD_SIG];
    if (!in || service_read_sig(a, sig) != 0) return NULL;
    for (int i = 0; i < SERVICE_READS_AHEAD; i++) {
        service_read *r = &in->ahead[i];
        if (!r->sent || strcmp(sig, r->sig) != 0) continue;
        redisReply *reply = r->reply;
        r->sent = 0;
        r->reply = NULL;
        return reply;
    }
    return NULL;
}

static int service_poll_timeout(const service *svc) {
    int64_t now = clock_mono_ms(), timeout = SERVICE_POLL_MAX_MS;
    if (svc->def->uses_catalog && svc->next_catalog_check - now < timeout) timeout = svc->next_catalog_check - now;
    if (svc->def->tick && svc->next_tick - now < timeout) timeout = svc->next_tick - now;
    if (svc->auth && svc->next_auth_check - now < timeout) timeout = svc->next_auth_check - now;
    if (timeout < 0) timeout = 0;
    for (size_t i = 0; i < svc->nrelays; i++) {
        int64_t left = relay_next_due(svc->relays[i]) - now;
        if (left < timeout) timeout = left < 0 ? 0 : left;
    }
    return (int)timeout;
}

/* Serves until a signal asks to stop; the message in hand is always finished. */
static void service_loop(service *svc) {
    zmq_pollitem_t items[3 + SERVICE_MAX_RELAYS];
    int n_items = 0;
    items[n_items++] = (zmq_pollitem_t){svc->router, 0, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < svc->nrelays; i++)
        items[n_items++] = (zmq_pollitem_t){relay_socket(svc->relays[i]), 0, ZMQ_POLLIN, 0};
    items[n_items++] = (zmq_pollitem_t){svc->monitor, 0, ZMQ_POLLIN, 0};
    if (svc->zap) items[n_items++] = (zmq_pollitem_t){zap_socket(svc->zap), 0, ZMQ_POLLIN, 0};
    while (!service_stop) {
        int n = zmq_poll(items, n_items, service_poll_timeout(svc));
        atomic_store(&svc->heartbeat_ms, clock_mono_ms());
        if (n < 0 && errno != EINTR) {
            log_error(NULL, NULL, "zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        /* The identities first, then the handshakes: a client admitted or revoked now counts in this same turn. */
        int handshakes = svc->zap && (items[n_items - 1].revents & ZMQ_POLLIN);
        if (svc->auth && (handshakes || clock_mono_ms() >= svc->next_auth_check)) service_auth_refresh(svc);
        if (handshakes) zap_on_readable(svc->zap);
        service_log_handshakes(svc);
        int received = 0;
        while (received < SERVICE_BURST && !service_stop && bus_recv(svc->router, &svc->burst[received].msg) == 1)
            service_decode(svc, &svc->burst[received++]);
        service_read_burst_ahead(svc, svc->burst, received);
        for (int i = 0; i < received; i++) {
            service_on_message(svc, &svc->burst[i]);
            service_release(&svc->burst[i]);
        }
        service_flush(svc);
        for (size_t i = 0; i < svc->nrelays; i++) {
            relay_on_readable(svc->relays[i]);
            relay_tick(svc->relays[i]);
        }
        service_timers(svc);
    }
}

static void service_usage(const service_def *def, FILE *out) {
    const char *name = settings_service_name(def->id);
    fprintf(out,
            "Usage: sav-%s [--config FILE] [--check-config] [--version] [--help]\n\n"
            "Runs the SAV %s service: binds the ROUTER endpoint %s.endpoint from the config,\n"
            "serves requests and events, and relays its outboxes, until SIGTERM or SIGINT.\n\n"
            "  --config FILE    configuration file (default: $SAV_CONFIG, else deploy/local/sav.conf);\n"
            "                   any key may be overridden by SAV_<SECTION>_<KEY> in the environment\n"
            "  --check-config   validate the configuration and exit (0 valid, 1 invalid)\n"
            "  --version        print the version and exit\n",
            name, name, name);
}

static int service_parse_args(const service_def *def, int argc, char **argv, const char **config, int *check) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"check-config", no_argument, 0, 'k'},
                                         {"version", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config = optarg; break;
        case 'k': *check = 1; break;
        case 'v': printf("sav-%s %s\n", settings_service_name(def->id), SAV_VERSION); return 0;
        case 'h': service_usage(def, stdout); return 0;
        default: service_usage(def, stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sav-%s: unexpected argument \"%s\"\n", settings_service_name(def->id), argv[optind]);
        return 1;
    }
    return -1;
}

/* Every action a service serves must have its roles, or no one could use it. */
static int service_check_roles(const service_def *def) {
    for (size_t i = 0; i < def->nroutes; i++)
        if (!auth_known(envelope_type_name(def->routes[i].type))) {
            err_set("%s has no roles in common/auth.c", envelope_type_name(def->routes[i].type));
            return -1;
        }
    for (size_t i = 0; i < def->ncommands; i++)
        if (!auth_known(def->commands[i].name)) {
            err_set("command %s has no roles in common/auth.c", def->commands[i].name);
            return -1;
        }
    return 0;
}

/* With security.curve on: the service's key pair, every service's public key and the authorised clients,
 * all checked before anything is bound. 0 or -1 with err naming the file. */
static int service_security_load(service *svc) {
    const settings *s = &svc->cfg;
    if (strcmp(s->curve, "on") != 0) return 0;
    if (!zmq_has("curve")) {
        err_set("security.curve is on but this libzmq has no CURVE support (it needs libsodium); set "
                "security.curve = off only on a trusted network");
        return -1;
    }
    char dir[PATH_MAX], clients[PATH_MAX], path[PATH_MAX];
    settings_resolve_path(s, s->keys_dir, dir, sizeof(dir));
    settings_resolve_path(s, s->clients_file, clients, sizeof(clients));
    if (keys_load_pair(dir, settings_service_name(svc->def->id), &svc->keys) != 0) return -1;
    svc->auth = auth_new(clients);
    if (!svc->auth) return -1;
    for (int i = 0; i < SVC_COUNT; i++)
        if (keys_path(dir, settings_service_name(i), "pub", path, sizeof(path)) != 0 ||
            keys_read_public(path, svc->public_keys[i]) != 0 ||
            auth_add_service(svc->auth, settings_service_name(i), svc->public_keys[i]) != 0)
            return -1;
    return auth_reload(svc->auth) < 0 ? -1 : 0;
}

static int service_start(service *svc) {
    const settings *s = &svc->cfg;
    if (service_security_load(svc) != 0) return -1;
    if (svc->auth)
        log_info(NULL, NULL, "CURVE on: %zu operator(s) authorised", auth_operators(svc->auth));
    else
        log_warn(NULL, NULL, "security.curve is off: messages are neither encrypted nor authenticated, and every "
                 "client may run every command");
    svc->st = store_open(s);
    if (!svc->st) return -1;
    if (!(svc->burst = calloc(SERVICE_BURST, sizeof(*svc->burst))) ||
        !(svc->reads = malloc(SERVICE_READS_AHEAD * sizeof(*svc->reads)))) {
        err_set("out of memory");
        return -1;
    }
    if (svc->def->uses_catalog && service_catalog_sync(svc) == 0 && !svc->cat && service_catalog_bootstrap(svc) != 0)
        return -1;
    if (svc->def->uses_catalog && !svc->cat && service_catalog_bootstrap(svc) != 0) return -1;
    /* The ZAP handler first: a CURVE server bound without one would let every client in. */
    if (svc->auth && !(svc->zap = zap_new(bus_context(), svc->auth))) return -1;
    svc->next_auth_check = clock_mono_ms() + SERVICE_AUTH_CHECK_MS;
    svc->router = bus_socket(ZMQ_ROUTER, s);
    if (!svc->router || !(svc->monitor = bus_monitor_open(svc->router))) return -1;
    svc->handshake_logged_at = clock_mono_ms() - SERVICE_HANDSHAKE_LOG_MS;
    char endpoint[SETTINGS_STR];
    const char *name = settings_service_name(svc->def->id);
    settings_bind_endpoint(s, svc->def->id, endpoint);
    int in_use = bus_endpoint_free(endpoint) != 0;
    if (!in_use && bus_bind(svc->router, endpoint, svc->auth ? &svc->keys : NULL) != 0) {
        if (errno != EADDRINUSE) return -1;
        in_use = 1;
    }
    /* Refused before any relay or sender starts: two processes of one configuration would share consumer names. */
    if (in_use) {
        err_set("cannot bind %s: in use (is sav-%s already running with this configuration?)", endpoint, name);
        return -1;
    }
    for (size_t i = 0; i < svc->def->ndestinations; i++) {
        enum service_id dest = svc->def->destinations[i];
        bus_peer peer = {s->endpoint[dest], svc->auth ? svc->public_keys[dest] : NULL, &svc->keys};
        svc->relays[i] = relay_new(svc->st, s, svc->def->id, dest, &peer);
        if (!svc->relays[i]) return -1;
        svc->relay_dest[i] = svc->def->destinations[i];
        svc->nrelays++;
    }
    if (svc->def->init && svc->def->init(svc) != 0) return -1;
    return service_http_start(svc);
}

static void service_close(service *svc) {
    /* No handler of the listener may run while the state it reads goes away. */
    httpd_stop(svc->http);
    if (svc->def->cleanup) svc->def->cleanup(svc);
    for (size_t i = 0; i < svc->nrelays; i++) relay_free(svc->relays[i]);
    bus_monitor_close(svc->router, svc->monitor);
    if (svc->router) zmq_close(svc->router);
    zap_free(svc->zap);
    auth_free(svc->auth);
    keys_forget(&svc->keys);
    store_close(svc->st);
    free(svc->burst);
    free(svc->reads);
    catalog_free(svc->cat);
    bus_shutdown();
}

int service_main(const service_def *def, int argc, char **argv) {
    const char *name = settings_service_name(def->id), *config = NULL;
    int check = 0;
    int rc = service_parse_args(def, argc, argv, &config, &check);
    if (rc >= 0) return rc;
    service svc = {.def = def, .health_lock = PTHREAD_MUTEX_INITIALIZER, .started_ms = clock_mono_ms()};
    if (settings_load_service(&svc.cfg, config, def->id) != 0 || clock_init() != 0) {
        fprintf(stderr, "sav-%s: %s\n", name, err_get());
        return 1;
    }
    if (service_check_roles(def) != 0) {
        fprintf(stderr, "sav-%s: %s\n", name, err_get());
        return 1;
    }
    if (check) {
        rc = service_security_load(&svc) == 0 ? 0 : 1;
        if (rc == 0)
            printf("sav-%s: configuration %s is valid%s\n", name, svc.cfg.path,
                   svc.auth ? ", with its keys and authorised clients" : "");
        else
            fprintf(stderr, "sav-%s: %s\n", name, err_get());
        auth_free(svc.auth);
        keys_forget(&svc.keys);
        return rc;
    }
    int level = log_level_parse(svc.cfg.log_level);
    log_init(name, svc.cfg.instance, level < 0 ? LOG_INFO : (enum log_level)level);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = service_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (service_start(&svc) != 0) {
        log_error(NULL, NULL, "cannot start: %s", err_get());
        fprintf(stderr, "sav-%s: %s\n", name, err_get());
        service_close(&svc);
        return 1;
    }
    char bound[SETTINGS_STR];
    settings_bind_endpoint(&svc.cfg, def->id, bound);
    log_info(NULL, NULL, "%s %s (instance %s) listening on %s", name, SAV_VERSION, svc.cfg.instance, bound);
    service_loop(&svc);
    log_info(NULL, NULL, "%s stopping", name);
    service_close(&svc);
    return 0;
}
