#include "redisacl.h"
#include "err.h"

#include <stdio.h>
#include <string.h>

/* The plain commands the Functions library runs (common/redis/sav.lua) and the services send themselves. */
static const char *const redisacl_commands[] = {
    "ping", "function|load", "xreadgroup", "xgroup|create", "xlen", "info|replication", "xclaim", "xautoclaim", "role",
    "wait", "del", "exists", "get", "set", "incr", "hdel", "hget", "hgetall", "hincrby", "hlen", "hmget", "hscan",
    "hset", "hsetnx", "lrange", "rpush", "sadd", "smembers", "srem", "xack", "xadd", "xdel", "xrange", "zadd", "zcard",
    "zrange", "zrangebyscore", "zrem", "zrevrange", "zscore", NULL,
};

/* Functions every service with an outbox, timers or steps calls through common/ (relay, service, ticket). */
#define REDISACL_RELAY "outbox_ack", "outbox_dead"
#define REDISACL_STEPS "ticket_step", "ticket_mark"

static const char *const redisacl_intake[] = {
    REDISACL_RELAY, REDISACL_STEPS, "catalog_store", "ticket_open", "record_create", "record_update", "product_add",
    "product_transfer", "complaint_open", "complaint_resolve", "maintenance_advance", "customer_erase", "archive_remove",
    "ticket_pack", "ticket_unpack", NULL};
static const char *const redisacl_intake_ro[] = {"ticket_view", "customer_view", "product_view", "ticket_list",
                                                 "archive_collect", "pack_collect", "check_tickets", "check_index",
                                                 "check_invoices", NULL};
static const char *const redisacl_diagnostics[] = {
    REDISACL_RELAY, REDISACL_STEPS, "catalog_store", "event_apply", "verdict_record", "parts_move", "product_add", NULL};
static const char *const redisacl_diagnostics_ro[] = {"coverage_facts", "parts_stock", NULL};
static const char *const redisacl_billing[] = {
    REDISACL_RELAY, REDISACL_STEPS, "catalog_store", "event_apply", "quote_create", "invoice_issue", "payment_record",
    "credit_issue", "claim_create", "claim_status", NULL};
static const char *const redisacl_billing_ro[] = {"coverage_facts", NULL};
static const char *const redisacl_notification[] = {
    "catalog_store", "event_apply", "notification_record", "mail_claim", "mail_done", "mail_retry", "sms_claim",
    "sms_done", "sms_receipt", "sms_stop", "sms_handover", "sms_report", NULL};
static const char *const redisacl_notification_ro[] = {"ticket_contact", NULL};

static const char *const *const redisacl_functions[SVC_COUNT][2] = {
    [SVC_INTAKE] = {redisacl_intake, redisacl_intake_ro},
    [SVC_DIAGNOSTICS] = {redisacl_diagnostics, redisacl_diagnostics_ro},
    [SVC_BILLING] = {redisacl_billing, redisacl_billing_ro},
    [SVC_NOTIFICATION] = {redisacl_notification, redisacl_notification_ro},
};

/* Appends " +<pre><name>" for each name; 0, or -1 when out is full. */
static int redisacl_append(char *out, size_t outlen, size_t *pos, const char *pre, const char *const *names) {
    for (; *names; names++) {
        int n = snprintf(out + *pos, outlen - *pos, " +%s%s", pre, *names);
        if (n < 0 || (size_t)n >= outlen - *pos) return -1;
        *pos += (size_t)n;
    }
    return 0;
}

int redisacl_rule(enum service_id id, const char *prefix, char *out, size_t outlen) {
    if (id >= SVC_COUNT) {
        err_set("no ACL rule for a process that is not a service");
        return -1;
    }
    int n = snprintf(out, outlen, "resetkeys ~%s:* resetchannels -@all", prefix);
    size_t pos = n < 0 ? outlen : (size_t)n;
    if (pos >= outlen || redisacl_append(out, outlen, &pos, "", redisacl_commands) != 0 ||
        redisacl_append(out, outlen, &pos, "fcall|", redisacl_functions[id][0]) != 0 ||
        redisacl_append(out, outlen, &pos, "fcall_ro|", redisacl_functions[id][1]) != 0) {
        err_set("the ACL rule of %s does not fit in %zu bytes", settings_service_name(id), outlen);
        return -1;
    }
    return 0;
}
