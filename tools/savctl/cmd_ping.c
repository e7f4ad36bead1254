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
    "    Sends a ping to intake, diagnostics, billing and notification (one attempt each,\n"
    "    client.timeout_ms) and prints, per service: name, endpoint, version, up/down,\n"
    "    round-trip time, whether the service reaches Redis, its outbox depth (messages\n"
    "    waiting for an acknowledgement) and the dead letters of its Redis shards. A service\n"
    "    that does not admit the identity's key shows as refused (see savctl whoami).\n\n"
    "OUTPUT\n"
    "    --json: {\"services\": [{\"name\", \"endpoint\", \"status\": \"up\"|\"down\"|\"refused\", \"version\",\n"
    "    \"rtt_ms\", \"redis_ok\", \"outbox_depth\", \"dead_letters\"}]}\n\n"
    "EXIT STATUS\n    0 when every service is up and reaches Redis, 6 when one refuses the identity, 4 otherwise;\n"
    "    1 when the identity's keys cannot be read.\n";

/* Pings one service; fills row and returns SAVCTL_OK if it is up and reaches Redis, else the exit code it means. */
static int ping_one(savctl *ctl, enum service_id id, json_t *row) {
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "savctl";
    char msg_id[ENVELOPE_ID_LEN];
    envelope_new_id(msg_id);
    envelope_buf frame;
    bus_peer peer;
    int rc = savctl_peer(ctl, id, &peer);
    if (rc != SAVCTL_OK) return rc;
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

int savctl_cmd_ping(savctl *ctl, int argc, char **argv) {
    (void)argv;
    if (argc > 1) return savctl_usage_error("ping", "takes no arguments");
    json_t *rows = json_array();
    int worst = SAVCTL_OK;
    for (int id = 0; id < SVC_COUNT; id++) {
        json_t *row = json_object();
        json_object_set_new(row, "name", json_string(settings_service_name(id)));
        json_object_set_new(row, "endpoint", json_string(ctl->cfg.endpoint[id]));
        int rc = ping_one(ctl, id, row);
        if (rc == SAVCTL_USAGE || rc == SAVCTL_INTERNAL) {
            json_decref(row);
            json_decref(rows);
            return rc;
        }
        /* Unavailable outranks refused: a refusal at least proves the service is up. */
        if (rc == SAVCTL_UNAVAILABLE || worst == SAVCTL_OK) worst = rc;
        if (!ctl->json) ping_print_row(row);
        json_array_append_new(rows, row);
    }
    if (ctl->json)
        savctl_print_json(json_pack("{s:o}", "services", rows));
    else
        json_decref(rows);
    return worst;
}
