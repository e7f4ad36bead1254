/* ticket.show: reads a ticket and what every service recorded about it in
 * one read-only Function call, and returns it as a TicketView. */
#include "intake.h"
#include "err.h"
#include "log.h"
#include "validate.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Converts a flat HGETALL reply into Field messages; the fields point into the reply. */
static Sav__Field **view_fields(const redisReply *flat, size_t *n) {
    *n = 0;
    if (flat->type != REDIS_REPLY_ARRAY || flat->elements == 0) return NULL;
    size_t count = flat->elements / 2;
    Sav__Field **out = calloc(count, sizeof(*out) + sizeof(Sav__Field));
    if (!out) return NULL;
    Sav__Field *cells = (Sav__Field *)(out + count);
    for (size_t i = 0; i < count; i++) {
        sav__field__init(&cells[i]);
        cells[i].name = flat->element[2 * i]->str;
        cells[i].value = flat->element[2 * i + 1]->str;
        out[i] = &cells[i];
    }
    *n = count;
    return out;
}

static const char *view_lookup(const redisReply *flat, const char *name) {
    for (size_t i = 0; i + 1 < flat->elements; i += 2)
        if (strcmp(flat->element[i]->str, name) == 0) return flat->element[i + 1]->str;
    return "";
}

/* Timeline entries are JSON objects written by the Functions library. */
static Sav__TimelineEntry **view_timeline(const redisReply *list, size_t *n, json_t **keep) {
    *n = 0;
    *keep = json_array();
    Sav__TimelineEntry **out = calloc(list->elements + 1, sizeof(*out) + sizeof(Sav__TimelineEntry));
    if (!out || !*keep) return out;
    Sav__TimelineEntry *cells = (Sav__TimelineEntry *)(out + list->elements + 1);
    for (size_t i = 0; i < list->elements; i++) {
        json_t *e = json_loads(list->element[i]->str, 0, NULL);
        if (!json_is_object(e)) {
            json_decref(e);
            continue;
        }
        json_array_append_new(*keep, e);
        Sav__TimelineEntry *t = &cells[*n];
        sav__timeline_entry__init(t);
        t->at_ms = (int64_t)json_number_value(json_object_get(e, "at"));
        t->event = (char *)(json_string_value(json_object_get(e, "event")) ?: "");
        t->state = (char *)(json_string_value(json_object_get(e, "state")) ?: "");
        t->actor = (char *)(json_string_value(json_object_get(e, "actor")) ?: "");
        t->detail = (char *)json_string_value(json_object_get(e, "detail"));
        out[(*n)++] = t;
    }
    return out;
}

static Sav__NotificationView **view_notifications(const redisReply *list, size_t *n) {
    *n = 0;
    Sav__NotificationView **out = calloc(list->elements + 1, sizeof(*out) + sizeof(Sav__NotificationView));
    if (!out) return NULL;
    Sav__NotificationView *cells = (Sav__NotificationView *)(out + list->elements + 1);
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *h = list->element[i];
        Sav__NotificationView *v = &cells[*n];
        sav__notification_view__init(v);
        v->id = (char *)view_lookup(h, "id");
        v->channel = (char *)view_lookup(h, "channel");
        v->status = (char *)view_lookup(h, "status");
        v->recipient = (char *)view_lookup(h, "recipient");
        v->subject = (char *)view_lookup(h, "subject");
        v->body = (char *)view_lookup(h, "body");
        v->at_ms = atoll(view_lookup(h, "at"));
        v->event = (char *)view_lookup(h, "event");
        v->lang = (char *)view_lookup(h, "lang");
        if (view_lookup(h, "sms_coding")[0]) {
            v->sms_coding = (char *)view_lookup(h, "sms_coding");
            v->has_sms_parts = 1, v->sms_parts = (uint32_t)atoi(view_lookup(h, "sms_parts"));
        }
        out[(*n)++] = v;
    }
    return out;
}

/* Each complaint as a Section of fields; the fields point into the reply. */
static Sav__Section **view_sections(const redisReply *list, const char *name, size_t *n) {
    *n = 0;
    Sav__Section **out = calloc(list->elements + 1, sizeof(*out) + sizeof(Sav__Section));
    if (!out) return NULL;
    Sav__Section *cells = (Sav__Section *)(out + list->elements + 1);
    for (size_t i = 0; i < list->elements; i++) {
        sav__section__init(&cells[i]);
        cells[i].name = (char *)name;
        cells[i].fields = view_fields(list->element[i], &cells[i].n_fields);
        out[(*n)++] = &cells[i];
    }
    return out;
}

static void view_sections_free(Sav__Section **s, size_t n) {
    for (size_t i = 0; s && i < n; i++) free(s[i]->fields);
    free(s);
}

/* HMGET values paired with their names as Fields; nil values are left out. */
static Sav__Field **view_named(const redisReply *values, const char *const *names, size_t *n) {
    *n = 0;
    Sav__Field **out = calloc(values->elements + 1, sizeof(*out) + sizeof(Sav__Field));
    if (!out) return NULL;
    Sav__Field *cells = (Sav__Field *)(out + values->elements + 1);
    for (size_t i = 0; i < values->elements && names[i]; i++) {
        if (values->element[i]->type != REDIS_REPLY_STRING) continue;
        sav__field__init(&cells[*n]);
        cells[*n].name = (char *)names[i];
        cells[*n].value = values->element[i]->str;
        out[*n] = &cells[*n];
        (*n)++;
    }
    return out;
}

static const char *const view_quote_names[] = {"version", "status", "valid_until", "gross_cents", NULL};
static const char *const view_invoice_names[] = {"id", "status", "total_cents", "balance_cents", "due_on", NULL};

static int view_reply_ok(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 10) return 0;
    for (size_t i = 0; i < 10; i++)
        if (r->element[i]->type != REDIS_REPLY_ARRAY) return 0;
    return 1;
}

static void view_build(const redisReply *r, service_reply *reply) {
    Sav__TicketView v = SAV__TICKET_VIEW__INIT;
    json_t *timeline_json = NULL;
    v.ticket = view_fields(r->element[0], &v.n_ticket);
    v.prediagnosis = view_fields(r->element[1], &v.n_prediagnosis);
    v.coverage = view_fields(r->element[2], &v.n_coverage);
    v.timeline = view_timeline(r->element[3], &v.n_timeline, &timeline_json);
    v.notifications = view_notifications(r->element[4], &v.n_notifications);
    v.customer = view_fields(r->element[5], &v.n_customer);
    v.complaints = view_sections(r->element[6], "complaint", &v.n_complaints);
    v.verdict = view_fields(r->element[7], &v.n_verdict);
    v.quote = view_named(r->element[8], view_quote_names, &v.n_quote);
    v.invoice = view_named(r->element[9], view_invoice_names, &v.n_invoice);
    if ((!v.ticket && v.n_ticket) || !v.timeline || !v.notifications || !v.complaints || !v.quote || !v.invoice)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "out of memory");
    else
        service_reply_msg(reply, SAV__MESSAGE_TYPE__TICKET_VIEW, &v.base);
    free(v.ticket);
    free(v.prediagnosis);
    free(v.coverage);
    free(v.timeline);
    free(v.notifications);
    free(v.customer);
    free(v.verdict);
    free(v.quote);
    free(v.invoice);
    view_sections_free(v.complaints, v.n_complaints);
    json_decref(timeline_json);
}

/* No ticket in Redis: says so, or where it was archived. */
static void view_not_found(service *svc, const char *tid, service_reply *reply) {
    char path[PATH_MAX], month[ARCHIVE_MONTH_LEN];
    if (archiving_locate(svc, tid, path, sizeof(path), month) == 1)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "%s is archived (closed in %s): %s; savctl archive "
                            "search --ticket %s shows it", tid, month, path, tid);
    else
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no ticket %s", tid);
}

void intake_on_ticket_show(service *svc, const Sav__Envelope *req, service_reply *reply) {
    Sav__TicketShow *q = (Sav__TicketShow *)envelope_body(req, &sav__ticket_show__descriptor);
    if (!q) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (validate_ticket_id(q->ticket_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        sav__ticket_show__free_unpacked(q, NULL);
        return;
    }
    store *st = service_store(svc);
    int shard = store_ticket_shard(st, q->ticket_id);
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "ticket:%s", q->ticket_id);
    store_key(st, shard, name, key);
    store_shard_prefix(st, shard, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL_RO"), store_args_add(&a, "ticket_view"), store_args_add(&a, "1");
    store_args_add(&a, key), store_args_add(&a, prefix), store_args_add(&a, q->ticket_id);
    redisReply *r = store_args_call(st, &a);
    if (!r)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    else if (r->type == REDIS_REPLY_NIL)
        view_not_found(svc, q->ticket_id, reply);
    else if (!view_reply_ok(r))
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "ticket_view: %s",
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    else
        view_build(r, reply);
    if (r) freeReplyObject(r);
    sav__ticket_show__free_unpacked(q, NULL);
}
