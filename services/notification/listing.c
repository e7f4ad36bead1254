/* notification list and retry: what was sent, what failed and why, and who
 * must be called because no channel can reach them. */
#include "listing.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const listing_statuses[] = {"recorded", "queued", "deferred", "sending", "sent", "delivered", "failed", "call_customer", "erased", NULL};
static const char *const listing_fields[] = {"id", "ticket", "event", "channel", "status", "recipient", "attempts",
                                             "last_answer", "at", "sent_at", NULL};
#define LISTING_NFIELDS 10

void listing_list(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *status = command_arg(cmd, "status");
    long limit;
    if ((status && validate_choice("status", status, listing_statuses) != 0) ||
        command_int(cmd, "limit", 1, 1000, 50, &limit) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    redisReply *ids = store_newest(service_store(svc), "notifs:all", 10000);
    if (service_reply_failure(reply, ids, "notifications")) return;
    json_t *rows = json_array();
    for (size_t i = 0; i < ids->elements && json_array_size(rows) < (size_t)limit; i++) {
        char name[160], nkey[STORE_KEY_LEN];
        snprintf(name, sizeof(name), "notif:%s", ids->element[i]->str);
        store_key(service_store(svc), 0, name, nkey);
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "HMGET"), store_args_add(&a, nkey);
        for (int f = 0; f < LISTING_NFIELDS; f++) store_args_add(&a, listing_fields[f]);
        redisReply *n = store_args_call(service_store(svc), &a);
        if (!n || n->type != REDIS_REPLY_ARRAY) {
            if (n) freeReplyObject(n);
            break;
        }
        const char *st = n->element[4]->type == REDIS_REPLY_STRING ? n->element[4]->str : "";
        if (!status || strcmp(st, status) == 0) {
            json_t *o = json_object();
            for (int f = 0; f < LISTING_NFIELDS; f++)
                json_object_set_new(o, listing_fields[f], command_json_str(n->element[f]->type == REDIS_REPLY_STRING ? n->element[f]->str : ""));
            json_array_append_new(rows, o);
        }
        freeReplyObject(n);
    }
    freeReplyObject(ids);
    service_reply_json(reply, json_pack("{s:o,s:i}", "notifications", rows, "count", (int)json_array_size(rows)));
}

void listing_retry(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id");
    if (!id || validate_text("notification id", id, 120, 0) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", id ? err_get() : "a notification id is needed");
        return;
    }
    char name[160], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    snprintf(name, sizeof(name), "notif:%s", id);
    store_key(service_store(svc), 0, name, key);
    store_shard_prefix(service_store(svc), 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "mail_retry"), store_args_add(&a, "1");
    store_args_add(&a, key), store_args_add(&a, id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_add(&a, prefix);
    redisReply *r = store_args_call(service_store(svc), &a);
    char what[160];
    snprintf(what, sizeof(what), "notification %s", id);
    if (!service_reply_failure(reply, r, what)) service_reply_json(reply, json_pack("{s:s,s:s}", "id", id, "status", r->str));
    if (r) freeReplyObject(r);
}
