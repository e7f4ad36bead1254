#include "service.h"
#include "bus.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "textfile.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#ifndef SAV_VERSION
#define SAV_VERSION "0.0.0"
#endif

#define SERVICE_MAX_RELAYS SVC_COUNT
#define SERVICE_POLL_MAX_MS 1000

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

/* Runs what is due besides messages: catalog refresh and the service's timers. */
static void service_timers(service *svc) {
    int64_t now = clock_mono_ms();
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

Sav__Ack__Status service_ack_status(service *svc, const Sav__Envelope *in, redisReply *r, char *reason,
                                    size_t reason_len) {
    (void)svc;
    Sav__Ack__Status status = SAV__ACK__STATUS__RETRY;
    if (!r) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
    } else if (r->type == REDIS_REPLY_STRING && strncmp(r->str, "retry:", 6) == 0) {
        snprintf(reason, reason_len, "%s", r->str + 6);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        if (strcmp(r->str, "duplicate") == 0) log_info(in->ticket_id, in->message_id, "duplicate, acknowledged again");
        status = SAV__ACK__STATUS__ACK;
    } else {
        /* A script error is a bug or an overloaded Redis, not a bad message: keep it for a retry. */
        snprintf(reason, reason_len, "redis refused: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        log_error(in->ticket_id, in->message_id, "%s", reason);
    }
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
    redisReply *r = store_args_call(svc->st, &a);
    envelope_buf_free(&body);
    Sav__Ack__Status status = service_ack_status(svc, in, r, reason, reason_len);
    if (status == SAV__ACK__STATUS__ACK && c->dest < SVC_COUNT) relay_poke(service_relay(svc, c->dest));
    return status;
}

/* Sums XLEN over every shard of a stream name. */
static uint64_t service_stream_total(service *svc, const char *name) {
    uint64_t total = 0;
    for (int shard = 0; shard < store_shards(svc->st); shard++) {
        char key[STORE_KEY_LEN];
        store_key(svc->st, shard, name, key);
        const char *argv[] = {"XLEN", key};
        size_t lens[] = {4, strlen(key)};
        redisReply *r = store_call(svc->st, 2, argv, lens);
        if (r && r->type == REDIS_REPLY_INTEGER) total += (uint64_t)r->integer;
        if (r) freeReplyObject(r);
    }
    return total;
}

static void service_on_ping(service *svc, const Sav__Envelope *req, service_reply *reply) {
    (void)req;
    Sav__Pong pong = SAV__PONG__INIT;
    pong.service = (char *)settings_service_name(svc->def->id);
    pong.version = SAV_VERSION;
    pong.endpoint = svc->cfg.endpoint[svc->def->id];
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r = store_call(svc->st, 1, argv, lens);
    pong.redis_ok = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (pong.redis_ok) {
        uint64_t depth = 0;
        for (size_t i = 0; i < svc->nrelays; i++) depth += service_stream_total(svc, relay_stream_name(svc->relays[i]));
        pong.has_outbox_depth = 1, pong.outbox_depth = depth;
        pong.has_dead_letters = 1, pong.dead_letters = service_stream_total(svc, "deadletter");
    }
    service_reply_msg(reply, SAV__MESSAGE_TYPE__PONG, &pong.base);
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

static void service_on_command(service *svc, const Sav__Envelope *env, service_reply *reply) {
    Sav__Command *cmd = (Sav__Command *)envelope_body(env, &sav__command__descriptor);
    if (!cmd) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
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

/* Handles one message from the ROUTER: [identity][empty][envelope]. */
static void service_on_message(service *svc, const bus_msg *m) {
    size_t idlen, emptylen, len;
    const uint8_t *identity = bus_frame(m, 0, &idlen);
    const uint8_t *empty = bus_frame(m, 1, &emptylen);
    const uint8_t *data = bus_frame(m, 2, &len);
    service_reply reply = {0};
    if (!identity) return;
    if (m->nframes != 3 || !empty || emptylen != 0) {
        log_warn(NULL, NULL, "refused a message of %d frame(s): expected [empty][envelope]", m->nframes - 1);
        service_reply_error(&reply, SAV__ERROR_CODE__ERR_REJECTED, "expected 2 frames [empty][envelope], got %d",
                            m->nframes - 1);
        service_send_reply(svc, identity, idlen, "invalid", NULL, &reply);
        envelope_buf_free(&reply.body);
        return;
    }
    Sav__Envelope *env = envelope_unpack(data, len, (size_t)svc->cfg.max_frame_bytes);
    if (!env) {
        log_warn(NULL, NULL, "refused a frame: %s", err_get());
        service_reply_error(&reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        service_send_reply(svc, identity, idlen, "invalid", NULL, &reply);
    } else {
        log_debug(env->ticket_id, env->message_id, "received %s", envelope_type_name(env->type));
        service_dispatch(svc, env, &reply);
        service_send_reply(svc, identity, idlen, env->message_id, env->ticket_id, &reply);
    }
    envelope_buf_free(&reply.body);
    envelope_free(env);
}

static int service_poll_timeout(const service *svc) {
    int64_t now = clock_mono_ms(), timeout = SERVICE_POLL_MAX_MS;
    if (svc->def->uses_catalog && svc->next_catalog_check - now < timeout) timeout = svc->next_catalog_check - now;
    if (svc->def->tick && svc->next_tick - now < timeout) timeout = svc->next_tick - now;
    if (timeout < 0) timeout = 0;
    for (size_t i = 0; i < svc->nrelays; i++) {
        int64_t left = relay_next_due(svc->relays[i]) - now;
        if (left < timeout) timeout = left < 0 ? 0 : left;
    }
    return (int)timeout;
}

/* Serves until a signal asks to stop; the message in hand is always finished. */
static void service_loop(service *svc) {
    zmq_pollitem_t items[1 + SERVICE_MAX_RELAYS];
    items[0] = (zmq_pollitem_t){svc->router, 0, ZMQ_POLLIN, 0};
    for (size_t i = 0; i < svc->nrelays; i++)
        items[1 + i] = (zmq_pollitem_t){relay_socket(svc->relays[i]), 0, ZMQ_POLLIN, 0};
    while (!service_stop) {
        int n = zmq_poll(items, (int)(1 + svc->nrelays), service_poll_timeout(svc));
        if (n < 0 && errno != EINTR) {
            log_error(NULL, NULL, "zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        bus_msg m;
        /* Bounded burst so relays keep running under a flood of requests. */
        for (int burst = 0; burst < 256 && !service_stop && bus_recv(svc->router, &m) == 1; burst++) {
            service_on_message(svc, &m);
            bus_msg_close(&m);
        }
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

static int service_start(service *svc) {
    const settings *s = &svc->cfg;
    svc->st = store_open(s);
    if (!svc->st) return -1;
    if (svc->def->uses_catalog && service_catalog_sync(svc) == 0 && !svc->cat && service_catalog_bootstrap(svc) != 0)
        return -1;
    if (svc->def->uses_catalog && !svc->cat && service_catalog_bootstrap(svc) != 0) return -1;
    svc->router = bus_socket(ZMQ_ROUTER, s);
    if (!svc->router) return -1;
    const char *endpoint = s->endpoint[svc->def->id], *name = settings_service_name(svc->def->id);
    int in_use = bus_endpoint_free(endpoint) != 0;
    if (!in_use && zmq_bind(svc->router, endpoint) != 0) {
        if (errno != EADDRINUSE) {
            err_set("cannot bind %s: %s", endpoint, zmq_strerror(errno));
            return -1;
        }
        in_use = 1;
    }
    /* Refused before any relay or sender starts: two processes of one configuration would share consumer names. */
    if (in_use) {
        err_set("cannot bind %s: in use (is sav-%s already running with this configuration?)", endpoint, name);
        return -1;
    }
    for (size_t i = 0; i < svc->def->ndestinations; i++) {
        svc->relays[i] = relay_new(svc->st, s, svc->def->id, svc->def->destinations[i]);
        if (!svc->relays[i]) return -1;
        svc->relay_dest[i] = svc->def->destinations[i];
        svc->nrelays++;
    }
    return svc->def->init ? svc->def->init(svc) : 0;
}

static void service_close(service *svc) {
    if (svc->def->cleanup) svc->def->cleanup(svc);
    for (size_t i = 0; i < svc->nrelays; i++) relay_free(svc->relays[i]);
    if (svc->router) zmq_close(svc->router);
    store_close(svc->st);
    catalog_free(svc->cat);
    bus_shutdown();
}

int service_main(const service_def *def, int argc, char **argv) {
    const char *name = settings_service_name(def->id), *config = NULL;
    int check = 0;
    int rc = service_parse_args(def, argc, argv, &config, &check);
    if (rc >= 0) return rc;
    service svc = {.def = def};
    if (settings_load(&svc.cfg, config) != 0 || clock_init() != 0) {
        fprintf(stderr, "sav-%s: %s\n", name, err_get());
        return 1;
    }
    if (check) {
        printf("sav-%s: configuration %s is valid\n", name, svc.cfg.path);
        return 0;
    }
    int level = log_level_parse(svc.cfg.log_level);
    log_init(name, level < 0 ? LOG_INFO : (enum log_level)level);
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
    log_info(NULL, NULL, "%s %s listening on %s", name, SAV_VERSION, svc.cfg.endpoint[def->id]);
    service_loop(&svc);
    log_info(NULL, NULL, "%s stopping", name);
    service_close(&svc);
    return 0;
}
