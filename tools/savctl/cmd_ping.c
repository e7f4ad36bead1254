/* savctl ping: asks every service for its health, one line each. */
#include "savctl.h"
#include "bus.h"
#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

const char savctl_help_ping[] =
    "NAME\n    savctl ping - check that every service answers\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] ping\n\n"
    "DESCRIPTION\n"
    "    Sends a ping to each instance of intake, diagnostics, billing and notification (one attempt each,\n"
    "    client.timeout_ms) and prints, per service: name, endpoint, version, up/down,\n"
    "    round-trip time, whether the service reaches Redis, its outbox depth (messages\n"
    "    waiting for an acknowledgement) and the dead letters of its Redis shards. A service\n"
    "    that does not admit the identity's key shows as refused (see savctl whoami).\n\n"
    "OUTPUT\n"
    "    --json: {\"services\": [{\"name\", \"endpoint\", \"status\": \"up\"|\"down\"|\"refused\", \"version\",\n"
    "    \"rtt_ms\", \"redis_ok\", \"outbox_depth\", \"dead_letters\", and what savctl status shows}]}\n\n"
    "EXIT STATUS\n    0 when every service is up and reaches Redis, 6 when one refuses the identity, 4 otherwise;\n"
    "    1 when the identity's keys cannot be read.\n";

/* Pings one instance of a service at endpoint; fills row and returns SAVCTL_OK if it is up and reaches Redis, else
 * the exit code it means. */
static int ping_one(savctl *ctl, enum service_id id, const char *endpoint, json_t *row) {
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "savctl";
    char msg_id[ENVELOPE_ID_LEN];
    envelope_new_id(msg_id);
    envelope_buf frame;
    bus_peer peer;
    int rc = savctl_peer(ctl, id, &peer);
    if (rc != SAVCTL_OK) return rc;
    peer.endpoint = endpoint;
    if (envelope_pack(SAV__MESSAGE_TYPE__PING, msg_id, NULL, "savctl", clock_now_ms(), &ping.base, &frame) != 0)
        return SAVCTL_INTERNAL;
    int64_t start = clock_mono_ms();
    Sav__Envelope *reply;
    enum bus_result r = bus_request(&ctl->cfg, &peer, &frame, msg_id, ctl->cfg.request_timeout_ms, 1, &reply);
    double rtt = (double)(clock_mono_ms() - start);
    envelope_buf_free(&frame);
    Sav__Pong *pong = reply && reply->type == SAV__MESSAGE_TYPE__PONG
                          ? (Sav__Pong *)envelope_body(reply, &sav__pong__descriptor)
                          : NULL;
    json_object_set_new(row, "status", json_string(pong ? "up" : r == BUS_REFUSED ? "refused" : "down"));
    if (pong) {
        json_object_set_new(row, "version", json_string(pong->version));
        json_object_set_new(row, "rtt_ms", json_real(rtt));
        json_object_set_new(row, "redis_ok", json_boolean(pong->redis_ok));
        json_object_set_new(row, "outbox_depth", pong->has_outbox_depth ? json_integer((json_int_t)pong->outbox_depth) : json_null());
        json_object_set_new(row, "dead_letters", pong->has_dead_letters ? json_integer((json_int_t)pong->dead_letters) : json_null());
        json_object_set_new(row, "instance", json_string(pong->instance ? pong->instance : ""));
        json_object_set_new(row, "uptime_s", pong->has_uptime_s ? json_integer(pong->uptime_s) : json_null());
        json_object_set_new(row, "oldest_pending_ms",
                            pong->has_oldest_pending_ms ? json_integer(pong->oldest_pending_ms) : json_null());
        json_object_set_new(row, "redis_role", json_string(pong->redis_role ? pong->redis_role : ""));
        json_object_set_new(row, "redis_lag_ms", pong->has_redis_lag_ms ? json_integer(pong->redis_lag_ms) : json_null());
    }
    rc = pong && pong->redis_ok ? SAVCTL_OK : r == BUS_REFUSED ? SAVCTL_FORBIDDEN : SAVCTL_UNAVAILABLE;
    if (pong) sav__pong__free_unpacked(pong, NULL);
    envelope_free(reply);
    return rc;
}

static void ping_print_row(const json_t *row) {
    const char *status = json_string_value(json_object_get(row, "status"));
    printf("%-13s %-24s ", json_string_value(json_object_get(row, "name")),
           json_string_value(json_object_get(row, "endpoint")));
    if (strcmp(status, "up") != 0) {
        printf("%-7s %s\n", "-", status);
        return;
    }
    printf("%-7s up    %6.1f ms  redis %s  outbox %lld  dead letters %lld\n",
           json_string_value(json_object_get(row, "version")), json_real_value(json_object_get(row, "rtt_ms")),
           json_is_true(json_object_get(row, "redis_ok")) ? "ok" : "DOWN",
           (long long)json_integer_value(json_object_get(row, "outbox_depth")),
           (long long)json_integer_value(json_object_get(row, "dead_letters")));
}

/* savctl status: one line per service and instance, with what its health says. */
static void status_print_row(const json_t *row) {
    const char *status = json_string_value(json_object_get(row, "status"));
    printf("%-13s ", json_string_value(json_object_get(row, "name")));
    if (strcmp(status, "up") != 0) {
        printf("%-9s %s  (%s)\n", "-", status, json_string_value(json_object_get(row, "endpoint")));
        return;
    }
    const json_t *lag = json_object_get(row, "redis_lag_ms");
    char lag_text[32] = "-";
    if (json_is_integer(lag)) snprintf(lag_text, sizeof(lag_text), "%lld ms", (long long)json_integer_value(lag));
    printf("%-9s up  %-7s %7llds  redis %-4s %-7s lag %-8s outbox %-5lld oldest %-9.1fs dead letters %lld\n",
           json_string_value(json_object_get(row, "instance")), json_string_value(json_object_get(row, "version")),
           (long long)json_integer_value(json_object_get(row, "uptime_s")),
           json_is_true(json_object_get(row, "redis_ok")) ? "ok" : "DOWN",
           json_string_value(json_object_get(row, "redis_role")), lag_text,
           (long long)json_integer_value(json_object_get(row, "outbox_depth")),
           (double)json_integer_value(json_object_get(row, "oldest_pending_ms")) / 1000.0,
           (long long)json_integer_value(json_object_get(row, "dead_letters")));
}

/* Asks every service for its health and prints each row with print; returns the exit code. */
static int ping_all(savctl *ctl, const char *command, int argc, void (*print)(const json_t *)) {
    if (argc > 1) return savctl_usage_error(command, "takes no arguments");
    json_t *rows = json_array();
    int worst = SAVCTL_OK;
    for (int id = 0; id < SVC_COUNT; id++) {
        char instances[SETTINGS_MAX_INSTANCES][SETTINGS_STR];
        int n = settings_endpoints(&ctl->cfg, id, instances);
        for (int k = 0; k < n; k++) {
            json_t *row = json_object();
            json_object_set_new(row, "name", json_string(settings_service_name(id)));
            json_object_set_new(row, "endpoint", json_string(instances[k]));
            int rc = ping_one(ctl, id, instances[k], row);
            if (rc == SAVCTL_USAGE || rc == SAVCTL_INTERNAL) {
                json_decref(row);
                json_decref(rows);
                return rc;
            }
            /* Unavailable outranks refused: a refusal at least proves the service is up. */
            if (rc == SAVCTL_UNAVAILABLE || worst == SAVCTL_OK) worst = rc;
            if (!ctl->json) print(row);
            json_array_append_new(rows, row);
        }
    }
    if (ctl->json)
        savctl_print_json(json_pack("{s:o}", "services", rows));
    else
        json_decref(rows);
    return worst;
}

int savctl_cmd_ping(savctl *ctl, int argc, char **argv) {
    (void)argv;
    return ping_all(ctl, "ping", argc, ping_print_row);
}

const char savctl_help_status[] =
    "NAME\n    savctl status - the health of every service\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--json] status\n\n"
    "DESCRIPTION\n"
    "    Asks every service (one attempt each, client.timeout_ms) and prints, per service and\n"
    "    instance: up or down, version, uptime, whether it reaches Redis, the replication role of\n"
    "    that Redis (master or slave) and its lag (a master: its slowest replica; a replica:\n"
    "    since it last heard from its master), the messages waiting in the service's outboxes\n"
    "    and the age of the oldest, and the dead letters. Each service also serves this on\n"
    "    SERVICE.http_listen: /health (JSON), /health/live, /health/ready and /metrics\n"
    "    (Prometheus text format).\n\n"
    "OUTPUT\n"
    "    --json: {\"services\": [{\"name\", \"endpoint\", \"status\", \"instance\", \"version\", \"uptime_s\",\n"
    "    \"rtt_ms\", \"redis_ok\", \"redis_role\", \"redis_lag_ms\", \"outbox_depth\", \"oldest_pending_ms\",\n"
    "    \"dead_letters\"}]}\n\n"
    "EXIT STATUS\n    As savctl ping: 0 when every service is up and reaches Redis, 6 refused, 4 otherwise.\n";

int savctl_cmd_status(savctl *ctl, int argc, char **argv) {
    (void)argv;
    return ping_all(ctl, "status", argc, status_print_row);
}
