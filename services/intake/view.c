/* ticket.show: reads a ticket and what every service recorded about it in
 * one read-only Function call, and returns it as a TicketView. A packed
 * ticket's records (common/pack.h) are inflated here and read under what
 * was written since, so that it shows exactly as before it was packed. */
#include "intake.h"
#include "err.h"
#include "log.h"
#include "pack.h"
#include "validate.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ticket_view's reply as JSON, its packed records (if any) merged under the live ones: each hash a flat list of
 * strings, each list a list of strings, notifications and complaints lists of flat lists; HMGET nils as null. */
typedef struct view_doc {
    json_t *ticket, *prediag, *coverage, *timeline, *notifications, *customer, *complaints, *verdict, *quote, *invoice;
} view_doc;

/* A reply array of strings (nil: null) as JSON. */
static json_t *view_strings(const redisReply *r) {
    json_t *out = json_array();
    for (size_t i = 0; i < r->elements; i++)
        json_array_append_new(out, r->element[i]->type == REDIS_REPLY_STRING
                                       ? json_stringn_nocheck(r->element[i]->str, r->element[i]->len)
                                       : json_null());
    return out;
}

/* A reply array of arrays of strings as JSON. */
static json_t *view_string_lists(const redisReply *r) {
    json_t *out = json_array();
    for (size_t i = 0; i < r->elements; i++)
        json_array_append_new(out, r->element[i]->type == REDIS_REPLY_ARRAY ? view_strings(r->element[i])
                                                                            : json_array());
    return out;
}

static json_t *view_concat(const json_t *a, const json_t *b) {
    json_t *out = json_copy((json_t *)a);
    json_array_extend(out, (json_t *)b);
    return out;
}

/* The notifications in the order notifs:<T> had when packed, each packed one or live (a failed one stayed), then
 * those recorded since. */
static json_t *view_notifications_merged(const json_t *parts, const json_t *live) {
    json_t *out = json_array(), *listed = json_object(), *nid, *entry, *h;
    size_t i, j;
    json_array_foreach(json_array_get(parts, PACK_ORDER), i, nid) {
        const char *id = json_string_value(nid);
        json_t *found = NULL;
        json_array_foreach(json_array_get(parts, PACK_NOTIFICATIONS), j, entry)
            if (!found && strcmp(json_string_value(json_array_get(entry, 0)), id) == 0) found = json_array_get(entry, 1);
        json_array_foreach(live, j, h) if (!found && strcmp(pack_pairs_get(h, "id") ?: "", id) == 0) found = h;
        json_array_append(out, found ? found : json_array());
        json_object_set(listed, id, json_true());
    }
    json_array_foreach(live, j, h) if (!json_object_get(listed, pack_pairs_get(h, "id") ?: "")) json_array_append(out, h);
    json_decref(listed);
    return out;
}

/* HMGET values of names, those missing taken from the packed hash. */
static json_t *view_named_merged(const json_t *live, const json_t *packed, const char *const *names) {
    json_t *out = json_array();
    for (size_t i = 0; names[i]; i++) {
        json_t *v = json_array_get(live, i);
        const char *p = pack_pairs_get(packed, names[i]);
        json_array_append_new(out, json_is_string(v) ? json_incref(v) : p ? json_string(p) : json_null());
    }
    return out;
}

static const char *const view_quote_names[] = {"version", "status", "valid_until", "gross_cents", NULL};
static const char *const view_invoice_names[] = {"id", "status", "total_cents", "balance_cents", "due_on", NULL};

static void view_doc_free(view_doc *d) {
    json_decref(d->ticket), json_decref(d->prediag), json_decref(d->coverage), json_decref(d->timeline);
    json_decref(d->notifications), json_decref(d->customer), json_decref(d->complaints), json_decref(d->verdict);
    json_decref(d->quote), json_decref(d->invoice);
}

/* Reads ticket_view's reply into d, inflating and merging its packed value; 0, or -1 with err. */
static int view_doc_read(const redisReply *r, view_doc *d) {
    d->ticket = view_strings(r->element[0]), d->prediag = view_strings(r->element[1]);
    d->coverage = view_strings(r->element[2]), d->timeline = view_strings(r->element[3]);
    d->notifications = view_string_lists(r->element[4]), d->customer = view_strings(r->element[5]);
    d->complaints = view_string_lists(r->element[6]), d->verdict = view_strings(r->element[7]);
    d->quote = view_strings(r->element[8]), d->invoice = view_strings(r->element[9]);
    const redisReply *value = r->element[10];
    if (value->type != REDIS_REPLY_STRING) return 0;
    pack_info info;
    size_t len;
    char *payload = pack_decode((const unsigned char *)value->str, value->len, &info, &len);
    json_t *parts = payload ? pack_parts(payload, len) : NULL;
    free(payload);
    if (!parts) return -1;
    json_t *merged[] = {
        pack_merge_pairs(json_array_get(parts, PACK_TICKET), d->ticket),
        pack_merge_pairs(json_array_get(parts, PACK_PREDIAG), d->prediag),
        pack_merge_pairs(json_array_get(parts, PACK_COVERAGE), d->coverage),
        view_concat(json_array_get(parts, PACK_TIMELINE), d->timeline),
        view_notifications_merged(parts, d->notifications),
        pack_merge_pairs(json_array_get(parts, PACK_VERDICT), d->verdict),
        view_named_merged(d->quote, json_array_get(parts, PACK_QUOTE), view_quote_names),
    };
    json_t **slots[] = {&d->ticket, &d->prediag, &d->coverage, &d->timeline, &d->notifications, &d->verdict, &d->quote};
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) json_decref(*slots[i]), *slots[i] = merged[i];
    json_decref(parts);
    return 0;
}

/* A flat name/value list as Field messages; the fields point into it. */
static Sav__Field **view_fields(const json_t *flat, size_t *n) {
    *n = 0;
    size_t count = json_array_size(flat) / 2;
    if (count == 0) return NULL;
    Sav__Field **out = calloc(count, sizeof(*out) + sizeof(Sav__Field));
    if (!out) return NULL;
    Sav__Field *cells = (Sav__Field *)(out + count);
    for (size_t i = 0; i < count; i++) {
        sav__field__init(&cells[i]);
        cells[i].name = (char *)(json_string_value(json_array_get(flat, 2 * i)) ?: "");
        cells[i].value = (char *)(json_string_value(json_array_get(flat, 2 * i + 1)) ?: "");
        out[i] = &cells[i];
    }
    *n = count;
    return out;
}

static const char *view_lookup(const json_t *flat, const char *name) {
    return pack_pairs_get(flat, name) ?: "";
}

/* Timeline entries are JSON objects written by the Functions library. */
static Sav__TimelineEntry **view_timeline(const json_t *list, size_t *n, json_t **keep) {
    *n = 0;
    *keep = json_array();
    size_t count = json_array_size(list);
    Sav__TimelineEntry **out = calloc(count + 1, sizeof(*out) + sizeof(Sav__TimelineEntry));
    if (!out || !*keep) return out;
    Sav__TimelineEntry *cells = (Sav__TimelineEntry *)(out + count + 1);
    for (size_t i = 0; i < count; i++) {
        json_t *e = json_loads(json_string_value(json_array_get(list, i)) ?: "", 0, NULL);
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

static Sav__NotificationView **view_notifications(const json_t *list, size_t *n) {
    *n = 0;
    size_t count = json_array_size(list);
    Sav__NotificationView **out = calloc(count + 1, sizeof(*out) + sizeof(Sav__NotificationView));
    if (!out) return NULL;
    Sav__NotificationView *cells = (Sav__NotificationView *)(out + count + 1);
    for (size_t i = 0; i < count; i++) {
        const json_t *h = json_array_get(list, i);
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

/* Each complaint as a Section of fields; the fields point into the list. */
static Sav__Section **view_sections(const json_t *list, const char *name, size_t *n) {
    *n = 0;
    size_t count = json_array_size(list);
    Sav__Section **out = calloc(count + 1, sizeof(*out) + sizeof(Sav__Section));
    if (!out) return NULL;
    Sav__Section *cells = (Sav__Section *)(out + count + 1);
    for (size_t i = 0; i < count; i++) {
        sav__section__init(&cells[i]);
        cells[i].name = (char *)name;
        cells[i].fields = view_fields(json_array_get(list, i), &cells[i].n_fields);
        out[(*n)++] = &cells[i];
    }
    return out;
}

static void view_sections_free(Sav__Section **s, size_t n) {
    for (size_t i = 0; s && i < n; i++) free(s[i]->fields);
    free(s);
}

/* HMGET values paired with their names as Fields; null values are left out. */
static Sav__Field **view_named(const json_t *values, const char *const *names, size_t *n) {
    *n = 0;
    size_t count = json_array_size(values);
    Sav__Field **out = calloc(count + 1, sizeof(*out) + sizeof(Sav__Field));
    if (!out) return NULL;
    Sav__Field *cells = (Sav__Field *)(out + count + 1);
    for (size_t i = 0; i < count && names[i]; i++) {
        const char *v = json_string_value(json_array_get(values, i));
        if (!v) continue;
        sav__field__init(&cells[*n]);
        cells[*n].name = (char *)names[i];
        cells[*n].value = (char *)v;
        out[*n] = &cells[*n];
        (*n)++;
    }
    return out;
}

static int view_reply_ok(const redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 11) return 0;
    for (size_t i = 0; i < 10; i++)
        if (r->element[i]->type != REDIS_REPLY_ARRAY) return 0;
    return r->element[10]->type == REDIS_REPLY_STRING || r->element[10]->type == REDIS_REPLY_NIL;
}

static void view_build(const view_doc *d, service_reply *reply) {
    Sav__TicketView v = SAV__TICKET_VIEW__INIT;
    json_t *timeline_json = NULL;
    v.ticket = view_fields(d->ticket, &v.n_ticket);
    v.prediagnosis = view_fields(d->prediag, &v.n_prediagnosis);
    v.coverage = view_fields(d->coverage, &v.n_coverage);
    v.timeline = view_timeline(d->timeline, &v.n_timeline, &timeline_json);
    v.notifications = view_notifications(d->notifications, &v.n_notifications);
    v.customer = view_fields(d->customer, &v.n_customer);
    v.complaints = view_sections(d->complaints, "complaint", &v.n_complaints);
    v.verdict = view_fields(d->verdict, &v.n_verdict);
    v.quote = view_named(d->quote, view_quote_names, &v.n_quote);
    v.invoice = view_named(d->invoice, view_invoice_names, &v.n_invoice);
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

/* Answers ticket_view's reply r for tid. */
static void view_answer(const char *tid, const redisReply *r, service_reply *reply) {
    view_doc d;
    if (view_doc_read(r, &d) != 0) {
        log_error(tid, NULL, "ticket show: packed:%s: %s", tid, err_get());
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s is packed and its packed value cannot be read "
                            "(savctl check): %s", tid, err_get());
    } else {
        view_build(&d, reply);
    }
    view_doc_free(&d);
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
        view_answer(q->ticket_id, r, reply);
    if (r) freeReplyObject(r);
    sav__ticket_show__free_unpacked(q, NULL);
}
