/* savctl ping: asks every service for its health, one line each. */
#include "savctl.h"
#include "bus.h"
#include "clock.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

const char savctl_help_ping[] =
    "NAME\n    savctl ping - check that every service answers\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--json] ping\n\n"
    "DESCRIPTION\n"
    "    Sends a ping to intake, diagnostics, billing and notification (one attempt each,\n"
    "    client.timeout_ms) and prints, per service: name, endpoint, version, up/down,\n"
    "    round-trip time, whether the service reaches Redis, its outbox depth (messages\n"
    "    waiting for an acknowledgement) and the dead letters of its Redis shards.\n\n"
    "OUTPUT\n"
    "    --json: {\"services\": [{\"name\", \"endpoint\", \"status\": \"up\"|\"down\", \"version\",\n"
    "    \"rtt_ms\", \"redis_ok\", \"outbox_depth\", \"dead_letters\"}]}\n\n"
    "EXIT STATUS\n    0 when every service is up and reaches Redis, 4 otherwise.\n";

/* Pings one service; fills row and returns 1 if it is up. */
static int ping_one(savctl *ctl, enum service_id id, json_t *row) {
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "savctl";
    char msg_id[ENVELOPE_ID_LEN];
    envelope_new_id(msg_id);
    envelope_buf frame;
    if (envelope_pack(SAV__MESSAGE_TYPE__PING, msg_id, NULL, "savctl", clock_now_ms(), &ping.base, &frame) != 0)
        return 0;
    int64_t start = clock_mono_ms();
    Sav__Envelope *reply = bus_request(&ctl->cfg, ctl->cfg.endpoint[id], &frame, msg_id, ctl->cfg.request_timeout_ms, 1);
    double rtt = (double)(clock_mono_ms() - start);
    envelope_buf_free(&frame);
    Sav__Pong *pong = reply && reply->type == SAV__MESSAGE_TYPE__PONG
                          ? (Sav__Pong *)envelope_body(reply, &sav__pong__descriptor)
                          : NULL;
    json_object_set_new(row, "status", json_string(pong ? "up" : "down"));
    if (pong) {
        json_object_set_new(row, "version", json_string(pong->version));
        json_object_set_new(row, "rtt_ms", json_real(rtt));
        json_object_set_new(row, "redis_ok", json_boolean(pong->redis_ok));
        json_object_set_new(row, "outbox_depth", pong->has_outbox_depth ? json_integer((json_int_t)pong->outbox_depth) : json_null());
        json_object_set_new(row, "dead_letters", pong->has_dead_letters ? json_integer((json_int_t)pong->dead_letters) : json_null());
    }
    int up = pong && pong->redis_ok;
    if (pong) sav__pong__free_unpacked(pong, NULL);
    envelope_free(reply);
    return up;
}

static void ping_print_row(const json_t *row) {
    const char *status = json_string_value(json_object_get(row, "status"));
    printf("%-13s %-24s ", json_string_value(json_object_get(row, "name")),
           json_string_value(json_object_get(row, "endpoint")));
    if (strcmp(status, "up") != 0) {
        printf("%-7s down\n", "-");
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
    int all_up = 1;
    for (int id = 0; id < SVC_COUNT; id++) {
        json_t *row = json_object();
        json_object_set_new(row, "name", json_string(settings_service_name(id)));
        json_object_set_new(row, "endpoint", json_string(ctl->cfg.endpoint[id]));
        all_up &= ping_one(ctl, id, row);
        if (!ctl->json) ping_print_row(row);
        json_array_append_new(rows, row);
    }
    if (ctl->json)
        savctl_print_json(json_pack("{s:o}", "services", rows));
    else
        json_decref(rows);
    return all_up ? SAVCTL_OK : SAVCTL_UNAVAILABLE;
}
