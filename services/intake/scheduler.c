/* intake's timers, run every intake.scheduler_ms on the (injectable) clock:
 * pickup reminders and the unclaimed flag (D4: never disposed of), complaint
 * escalation and the mediator's contact for consumers (D3), and preventive
 * maintenance visits generated from contracts. Each effect happens once: it
 * is applied by ticket_mark under a dedup key named for it, so a timer that
 * runs twice, or a restarted intake, changes nothing the second time. Then
 * archiving (archiving.c), made exactly-once by its files' commits and the
 * digest its removals check, and packing (packing.c), whose every step is
 * one atomic call guarded by a digest too. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "ticket.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHED_BATCH "10000" /* entries examined per index and run */
#define DAY_MS 86400000LL

/* Reads an index with scores: ZRANGE key 0 N WITHSCORES, or ZRANGEBYSCORE key -inf max. */
static redisReply *sched_index(service *svc, const char *name, const char *max_score) {
    char key[STORE_KEY_LEN];
    store_key(service_store(svc), 0, name, key);
    const char *by_rank[] = {"ZRANGE", key, "0", SCHED_BATCH, "WITHSCORES"};
    const char *by_score[] = {"ZRANGEBYSCORE", key, "-inf", max_score, "WITHSCORES", "LIMIT", "0", SCHED_BATCH};
    const char **argv = max_score ? by_score : by_rank;
    int argc = max_score ? 8 : 5;
    size_t lens[8];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = store_call(service_store(svc), argc, argv, lens);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

/* HMGET of a hash under the shard prefix; NULL if Redis failed. */
static redisReply *sched_fields(service *svc, const char *name, const char *const *fields, int n) {
    char key[STORE_KEY_LEN];
    store_key(service_store(svc), 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "HMGET"), store_args_add(&a, key);
    for (int i = 0; i < n; i++) store_args_add(&a, fields[i]);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (r && (r->type != REDIS_REPLY_ARRAY || (int)r->elements != n)) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

static const char *sched_str(const redisReply *r, int i) {
    return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

/* Pickup reminders for one ticket waiting in `ready`, and the unclaimed flag. */
static void sched_pickup_one(service *svc, const char *tid, long long ready_ms, int64_t now) {
    static const char *const names[] = {"channel", "pickup_reminder_level", "unclaimed"};
    char name[64], dedup[96], days_s[16], level_s[16], now_s[24];
    snprintf(name, sizeof(name), "ticket:%s", tid);
    redisReply *t = sched_fields(svc, name, names, 3);
    if (!t) return;
    const settings *cfg = service_settings(svc);
    int days = (int)((now - ready_ms) / DAY_MS), level = atoi(sched_str(t, 1)), due = 0;
    int drop_off = strcmp(sched_str(t, 0), "drop_off") == 0, unclaimed = strcmp(sched_str(t, 2), "1") == 0;
    freeReplyObject(t);
    if (!drop_off) return;
    while (due < cfg->pickup_reminders.n && days >= cfg->pickup_reminders.day[due]) due++;
    snprintf(days_s, sizeof(days_s), "%d", days);
    snprintf(now_s, sizeof(now_s), "%lld", (long long)now);
    if (due > level) {
        /* Only the latest due reminder is sent: after a pause, one message, not a burst. */
        snprintf(level_s, sizeof(level_s), "%d", due);
        snprintf(dedup, sizeof(dedup), "done:%s:pickup_reminder:%d", tid, due);
        const char *vars[] = {"days_waiting", days_s, "reminder_number", level_s};
        ticket_notice notice = {"pickup_reminder", (unsigned)due, vars, 2};
        const char *fields[] = {"pickup_reminder_level", level_s};
        ticket_mark m = {tid, dedup, "pickup.reminder", "scheduler", level_s, &notice, NULL, 0, NULL, fields, 1};
        ticket_mark_once(svc, &m);
    }
    if (days >= cfg->unclaimed_days && !unclaimed) {
        snprintf(dedup, sizeof(dedup), "done:%s:unclaimed", tid);
        const char *vars[] = {"days_waiting", days_s};
        ticket_notice notice = {"unclaimed_notice", 1, vars, 1};
        const char *fields[] = {"unclaimed", "1", "unclaimed_since", now_s};
        ticket_mark m = {tid, dedup, "unclaimed.flagged", "scheduler",
                         "uncollected for a year: keep it; only a judge may order its sale (loi du 31/12/1903)",
                         &notice, "unclaimed", now, NULL, fields, 2};
        ticket_mark_once(svc, &m);
    }
}

static void sched_pickups(service *svc, int64_t now) {
    redisReply *r = sched_index(svc, "state:ready", NULL);
    if (!r) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        sched_pickup_one(svc, r->element[i]->str, atoll(r->element[i + 1]->str), now);
    freeReplyObject(r);
}

/* Escalation before the deadline, and the mediator's contact for consumers. */
static void sched_complaint_one(service *svc, const char *cid, const char *today, int64_t now) {
    static const char *const names[] = {"ticket", "deadline", "customer_type", "created_at", "escalated",
                                        "mediator_offered"};
    char name[64], dedup[96], escalate_on[CLOCK_DATE_LEN], hash[64];
    snprintf(name, sizeof(name), "complaint:%s", cid);
    redisReply *c = sched_fields(svc, name, names, 6);
    if (!c) return;
    const settings *cfg = service_settings(svc);
    const char *tid = sched_str(c, 0), *deadline = sched_str(c, 1);
    snprintf(hash, sizeof(hash), "complaint:%s", cid);
    if (strcmp(sched_str(c, 4), "1") != 0 && clock_date_add_days(deadline, -cfg->complaint_escalate_days, escalate_on) == 0 &&
        strcmp(today, escalate_on) >= 0) {
        snprintf(dedup, sizeof(dedup), "done:%s:escalated", cid);
        const char *vars[] = {"complaint_id", cid, "deadline", deadline};
        ticket_notice notice = {"complaint_escalated", 1, vars, 2};
        const char *fields[] = {"escalated", "1", "status", "escalated"};
        ticket_mark m = {tid, dedup, "complaint.escalated", "scheduler", cid, &notice, NULL, 0, hash, fields, 2};
        ticket_mark_once(svc, &m);
    }
    long long opened = atoll(sched_str(c, 3));
    if (strcmp(sched_str(c, 2), "consumer") == 0 && strcmp(sched_str(c, 5), "1") != 0 &&
        now - opened >= (long long)cfg->mediator_after_days * DAY_MS) {
        snprintf(dedup, sizeof(dedup), "done:%s:mediator", cid);
        const char *vars[] = {"complaint_id", cid, "mediator", cfg->mediator};
        ticket_notice notice = {"mediator_info", 1, vars, 2};
        const char *fields[] = {"mediator_offered", "1"};
        ticket_mark m = {tid, dedup, "complaint.mediator_offered", "scheduler", cid, &notice, NULL, 0, hash, fields, 1};
        ticket_mark_once(svc, &m);
    }
    freeReplyObject(c);
}

static void sched_complaints(service *svc, const char *today, int64_t now) {
    redisReply *r = sched_index(svc, "complaints:open", NULL);
    if (!r) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) sched_complaint_one(svc, r->element[i]->str, today, now);
    freeReplyObject(r);
}

/* Opens the visit ticket of a maintenance contract's visit n; writes its id into tid. 0 or -1 (logged). */
static int sched_visit_ticket(service *svc, const char *kid, const redisReply *k, int n, const char *owner,
                              char tid[16]) {
    char rid[96], symptom[256];
    snprintf(rid, sizeof(rid), "maint-%s-%d", kid, n);
    snprintf(symptom, sizeof(symptom), "Visite d'entretien préventif %d/%s (contrat %s), prévue le %s", n,
             sched_str(k, 3), kid, sched_str(k, 2));
    Sav__TicketOpen o = SAV__TICKET_OPEN__INIT;
    o.request_id = rid, o.customer_id = (char *)owner, o.serial = (char *)sched_str(k, 0);
    o.kind = "preventive_maintenance", o.channel = "on_site", o.symptom = symptom;
    service_reply reply = {0};
    intake_open(svc, &o, &reply);
    Sav__TicketOpened *opened = reply.type == SAV__MESSAGE_TYPE__TICKET_OPENED
                                    ? sav__ticket_opened__unpack(NULL, reply.body.len, reply.body.data)
                                    : NULL;
    if (opened) snprintf(tid, 16, "%s", opened->ticket_id);
    else log_error(NULL, NULL, "maintenance visit %d of %s not opened", n, kid);
    if (opened) sav__ticket_opened__free_unpacked(opened, NULL);
    envelope_buf_free(&reply.body);
    return opened ? 0 : -1;
}

/* Records visit n on its ticket (notice maintenance_due) and moves the contract to visit n+1. */
static void sched_visit_recorded(service *svc, const char *kid, const redisReply *k, int n, const char *tid) {
    char dedup[96], n_s[16], next[CLOCK_DATE_LEN] = "", contract[64];
    const char *visit_on = sched_str(k, 2);
    snprintf(n_s, sizeof(n_s), "%d", n);
    snprintf(dedup, sizeof(dedup), "done:%s:visit:%d", kid, n);
    const char *vars[] = {"visit_date", visit_on, "contract_id", kid, "visit_number", n_s};
    ticket_notice notice = {"maintenance_due", (unsigned)n, vars, 3};
    const char *fields[] = {"maintenance_contract", kid, "visit_number", n_s, "visit_date", visit_on};
    ticket_mark m = {tid, dedup, "maintenance.visit_planned", "scheduler", visit_on, &notice, "maintenance:visits",
                     clock_date_score(visit_on), NULL, fields, 3};
    if (ticket_mark_once(svc, &m) < 0) return;
    if (n < atoi(sched_str(k, 3))) clock_date_add_months(sched_str(k, 4), (n + 1) * atoi(sched_str(k, 5)), next);
    char key[STORE_KEY_LEN], zkey[STORE_KEY_LEN];
    snprintf(contract, sizeof(contract), "contract:%s", kid);
    store_key(service_store(svc), 0, contract, key);
    store_key(service_store(svc), 0, "maintenance:due", zkey);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "maintenance_advance"), store_args_add(&a, "2");
    store_args_add(&a, key), store_args_add(&a, zkey), store_args_add(&a, n_s), store_args_add(&a, tid);
    store_args_add(&a, next), store_args_addf(&a, "%ld", clock_date_score(next));
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r || r->type == REDIS_REPLY_ERROR) log_error(tid, NULL, "maintenance_advance %s: %s", kid, r ? r->str : err_get());
    if (r) freeReplyObject(r);
}

static void sched_maintenance_one(service *svc, const char *kid) {
    static const char *const names[] = {"serial", "visits_done", "next_visit_on", "visits", "start", "every_months"};
    char name[64], tid[16];
    snprintf(name, sizeof(name), "contract:%s", kid);
    redisReply *k = sched_fields(svc, name, names, 6);
    if (!k) return;
    static const char *const owner_field[] = {"owner"};
    snprintf(name, sizeof(name), "product:%s", sched_str(k, 0));
    redisReply *p = sched_fields(svc, name, owner_field, 1);
    int n = atoi(sched_str(k, 1)) + 1;
    if (p && sched_str(p, 0)[0] && sched_visit_ticket(svc, kid, k, n, sched_str(p, 0), tid) == 0)
        sched_visit_recorded(svc, kid, k, n, tid);
    if (p) freeReplyObject(p);
    freeReplyObject(k);
}

static void sched_maintenance(service *svc, const char *today) {
    char horizon[CLOCK_DATE_LEN], max[16];
    if (clock_date_add_days(today, service_settings(svc)->maintenance_lead_days, horizon) != 0) return;
    snprintf(max, sizeof(max), "%ld", clock_date_score(horizon));
    redisReply *r = sched_index(svc, "maintenance:due", max);
    if (!r) return;
    for (size_t i = 0; i + 1 < r->elements; i += 2) sched_maintenance_one(svc, r->element[i]->str);
    freeReplyObject(r);
}

void intake_tick(service *svc) {
    int64_t now = clock_now_ms();
    char today[CLOCK_DATE_LEN];
    clock_date_paris(now, today);
    sched_pickups(svc, now);
    sched_complaints(svc, today, now);
    sched_maintenance(svc, today);
    archiving_tick(svc);
    packing_tick(svc);
}

void sched_maintenance_due(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long days;
    char today[CLOCK_DATE_LEN], horizon[CLOCK_DATE_LEN], max[16];
    if (command_int(cmd, "days", 0, 3650, service_settings(svc)->maintenance_lead_days, &days) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    clock_date_paris(clock_now_ms(), today);
    clock_date_add_days(today, (int)days, horizon);
    snprintf(max, sizeof(max), "%ld", clock_date_score(horizon));
    redisReply *planned = sched_index(svc, "maintenance:due", max), *visits = sched_index(svc, "maintenance:visits", NULL);
    if (!planned || !visits) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        if (planned) freeReplyObject(planned);
        if (visits) freeReplyObject(visits);
        return;
    }
    json_t *upcoming = json_array(), *open = json_array();
    static const char *const cnames[] = {"serial", "next_visit_on", "visits_done", "visits"};
    static const char *const tnames[] = {"state", "serial", "customer_id", "visit_date", "maintenance_contract", "visit_number"};
    for (size_t i = 0; i + 1 < planned->elements; i += 2) {
        char name[64];
        snprintf(name, sizeof(name), "contract:%s", planned->element[i]->str);
        redisReply *k = sched_fields(svc, name, cnames, 4);
        if (!k) continue;
        json_array_append_new(upcoming, json_pack("{s:s,s:s,s:s,s:i,s:b}", "contract", planned->element[i]->str,
                                                  "serial", sched_str(k, 0), "visit_date", sched_str(k, 1),
                                                  "visit_number", atoi(sched_str(k, 2)) + 1, "overdue",
                                                  strcmp(sched_str(k, 1), today) < 0));
        freeReplyObject(k);
    }
    for (size_t i = 0; i + 1 < visits->elements; i += 2) {
        char name[64];
        snprintf(name, sizeof(name), "ticket:%s", visits->element[i]->str);
        redisReply *t = sched_fields(svc, name, tnames, 6);
        if (!t) continue;
        if (!lifecycle_state_final(sched_str(t, 0)))
            json_array_append_new(open, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "ticket", visits->element[i]->str,
                                                  "state", sched_str(t, 0), "serial", sched_str(t, 1), "customer_id",
                                                  sched_str(t, 2), "visit_date", sched_str(t, 3), "contract",
                                                  sched_str(t, 4), "overdue", strcmp(sched_str(t, 3), today) < 0));
        freeReplyObject(t);
    }
    freeReplyObject(planned);
    freeReplyObject(visits);
    service_reply_json(reply, json_pack("{s:s,s:s,s:o,s:o}", "today", today, "until", horizon, "visits", open,
                                        "planned", upcoming));
}
