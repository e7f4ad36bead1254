#define _GNU_SOURCE /* strcasestr */
/* Read-only commands: customer show/list, product show, ticket list,
 * catalog show. Each is one read-only Function call, answered as JSON. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "lifecycle.h"
#include "validate.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <wctype.h>

#define VIEW_LIST_MAX 1000

/* Fields stored as "0"/"1" shown as booleans, and as integers. */
static const char *const view_bools[] = {"second_hand", "consent_sms", "consent_email", "consent_marketing",
                                         "price_included", "unclaimed", "escalated", "mediator_offered",
                                         "replacement_after_repair_request", NULL};
static const char *const view_ints[] = {"price_cents", "every_months", "visits", "visits_done", "amount_cents", NULL};
static const char *const view_times[] = {"created_at", "updated_at", "state_since", "resolved_at", NULL};

static int view_in(const char *name, const char *const *list) {
    for (; *list; list++)
        if (strcmp(*list, name) == 0) return 1;
    return 0;
}

json_t *views_object(const redisReply *flat, const redisReply *names) {
    json_t *o = json_object();
    size_t n = names ? names->elements : flat->elements / 2;
    for (size_t i = 0; i < n; i++) {
        const char *k = names ? names->element[i]->str : flat->element[2 * i]->str;
        const redisReply *v = names ? flat->element[i] : flat->element[2 * i + 1];
        const char *s = v->type == REDIS_REPLY_STRING ? v->str : "";
        char when[40];
        if (view_in(k, view_bools))
            json_object_set_new(o, k, json_boolean(strcmp(s, "1") == 0));
        else if (view_in(k, view_ints))
            json_object_set_new(o, k, json_integer(atoll(s)));
        else if (view_in(k, view_times) && s[0])
            clock_format_utc(atoll(s), when, sizeof(when)), json_object_set_new(o, k, json_string(when));
        else
            json_object_set_new(o, k, command_json_str(s));
    }
    return o;
}

static json_t *view_list(const redisReply *items, const redisReply *names) {
    json_t *arr = json_array();
    for (size_t i = 0; i < items->elements; i++) json_array_append_new(arr, views_object(items->element[i], names));
    return arr;
}

/* Calls a read-only view Function on one key; replies with the error and returns NULL when it cannot. */
static redisReply *view_call(service *svc, const char *function, const char *key_name, const char *what,
                             const char *extra, service_reply *reply) {
    char key[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    store_key(service_store(svc), 0, key_name, key);
    store_shard_prefix(service_store(svc), 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL_RO"), store_args_add(&a, function), store_args_add(&a, "1");
    store_args_add(&a, key), store_args_add(&a, prefix);
    if (extra) store_args_add(&a, extra);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    } else if (r->type == REDIS_REPLY_NIL) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no %s", what);
    } else if (r->type != REDIS_REPLY_ARRAY) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s: %s", function,
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    } else {
        return r;
    }
    if (r) freeReplyObject(r);
    return NULL;
}

void views_customer_show(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id");
    char name[96], what[96];
    if (!id || validate_token("customer id", id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", id ? err_get() : "customer id required");
        return;
    }
    snprintf(name, sizeof(name), "customer:%s", id);
    snprintf(what, sizeof(what), "customer %s", id);
    redisReply *r = view_call(svc, "customer_view", name, what, NULL, reply);
    if (!r) return;
    json_t *o = views_object(r->element[0], NULL);
    json_object_set_new(o, "products", view_list(r->element[1], NULL));
    json_object_set_new(o, "tickets", view_list(r->element[2], r->element[3]));
    service_reply_json(reply, o);
    freeReplyObject(r);
}

/* The commercial warranty's end, from the catalog: delivery + the model's months. */
static void views_warranty(service *svc, json_t *product) {
    const catalog_model *m = catalog_model_find(service_catalog(svc), json_string_value(json_object_get(product, "model")) ?: "");
    const char *delivered = json_string_value(json_object_get(product, "delivered_on"));
    char until[CLOCK_DATE_LEN];
    if (!m || !delivered || clock_date_add_months(delivered, m->commercial_warranty_months, until) != 0) return;
    json_object_set_new(product, "commercial_warranty",
                        json_pack("{s:i,s:s}", "months", m->commercial_warranty_months, "until", until));
    json_object_set_new(product, "parts_availability_years", json_integer(m->parts_availability_years));
}

void views_product_show(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *serial = command_arg(cmd, "serial");
    char name[96], what[96];
    if (validate_token("serial number", serial) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    snprintf(name, sizeof(name), "product:%s", serial);
    snprintf(what, sizeof(what), "product with serial %s", serial);
    redisReply *r = view_call(svc, "product_view", name, what, NULL, reply);
    if (!r) return;
    json_t *o = views_object(r->element[0], NULL), *history = json_array();
    for (size_t i = 0; i < r->element[1]->elements; i++) {
        json_t *h = json_loads(r->element[1]->element[i]->str, 0, NULL);
        if (!h) continue;
        char when[40];
        clock_format_utc((int64_t)json_number_value(json_object_get(h, "at")), when, sizeof(when));
        json_object_set_new(h, "at", json_string(when));
        json_array_append_new(history, h);
    }
    views_warranty(svc, o);
    json_object_set_new(o, "ownership", history);
    json_object_set_new(o, "contracts", view_list(r->element[2], NULL));
    json_object_set_new(o, "tickets", view_list(r->element[3], r->element[4]));
    freeReplyObject(r);
    /* Archived tickets left the facts later guarantees need (archive_remove): savctl archive search has the rest. */
    snprintf(name, sizeof(name), "product:%s:past", serial);
    redisReply *past = store_hgetall(service_store(svc), 0, name);
    json_t *archived = json_array();
    for (size_t i = 0; past && i + 1 < past->elements; i += 2) {
        json_t *facts = json_loads(past->element[i + 1]->str, 0, NULL);
        if (!json_is_object(facts)) facts = json_object();
        json_object_set_new(facts, "id", json_string(past->element[i]->str));
        json_array_append_new(archived, facts);
    }
    if (past) freeReplyObject(past);
    json_object_set_new(o, "archived_tickets", archived);
    service_reply_json(reply, o);
}

/* The filters of ticket list. */
typedef struct ticket_filter {
    const char *state, *centre, *customer, *kind;
    int overdue, unclaimed;
    long limit;
    char today[CLOCK_DATE_LEN];
} ticket_filter;

static int views_ticket_matches(const json_t *t, const ticket_filter *f) {
#define TS(k) (json_string_value(json_object_get(t, k)) ?: "")
    if (f->state && strcmp(TS("state"), f->state) != 0) return 0;
    if (f->centre && strcmp(TS("centre"), f->centre) != 0) return 0;
    if (f->customer && strcmp(TS("customer_id"), f->customer) != 0) return 0;
    if (f->kind && strcmp(TS("kind"), f->kind) != 0) return 0;
    if (f->unclaimed && !json_is_true(json_object_get(t, "unclaimed"))) return 0;
    if (f->overdue) {
        const char *state = TS("state");
        int open = strcmp(state, "ready") != 0 && strcmp(state, "closed") != 0 && strcmp(state, "cancelled") != 0;
        if (!open || !TS("sla_due_on")[0] || strcmp(f->today, TS("sla_due_on")) <= 0) return 0;
    }
    return 1;
#undef TS
}

void views_ticket_list(service *svc, const Sav__Command *cmd, service_reply *reply) {
    ticket_filter f = {command_arg(cmd, "state"), command_arg(cmd, "centre"), command_arg(cmd, "customer"),
                       command_arg(cmd, "kind"), command_flag(cmd, "overdue"), command_flag(cmd, "unclaimed"), 0, ""};
    if (command_int(cmd, "limit", 1, VIEW_LIST_MAX, 50, &f.limit) != 0 ||
        (f.state && !lifecycle_state_valid(f.state) && (err_set("unknown state \"%s\"", f.state), 1))) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    clock_date_paris(clock_now_ms(), f.today);
    char index[96];
    if (f.customer)
        snprintf(index, sizeof(index), "customer:%s:tickets", f.customer);
    else if (f.state)
        snprintf(index, sizeof(index), "state:%s", f.state);
    else
        snprintf(index, sizeof(index), "tickets");
    char scan[16];
    snprintf(scan, sizeof(scan), "%d", 10 * VIEW_LIST_MAX);
    redisReply *r = view_call(svc, "ticket_list", index, "tickets", scan, reply);
    if (!r) return;
    json_t *all = view_list(r->element[0], r->element[1]), *rows = json_array(), *t;
    size_t i;
    json_array_foreach(all, i, t) {
        if (views_ticket_matches(t, &f) && json_array_size(rows) < (size_t)f.limit) json_array_append(rows, t);
    }
    service_reply_json(reply, json_pack("{s:o,s:i,s:s}", "tickets", rows, "count", (int)json_array_size(rows),
                                        "today", f.today));
    json_decref(all);
    freeReplyObject(r);
}

/* Returns 1 if text contains needle, ignoring case, accented capitals included (É matches é). */
static int views_contains(const char *text, const char *needle) {
    static locale_t utf8;
    if (!utf8) utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    if (!utf8) return strcasestr(text, needle) != NULL;
    wchar_t wt[512], wn[128];
    locale_t old = utf8 ? uselocale(utf8) : (locale_t)0;
    size_t nt = mbstowcs(wt, text, 511), nn = mbstowcs(wn, needle, 127);
    if (old) uselocale(old);
    if (nt == (size_t)-1 || nn == (size_t)-1) return strcasestr(text, needle) != NULL;
    wt[nt < 511 ? nt : 511] = L'\0', wn[nn < 127 ? nn : 127] = L'\0';
    for (size_t i = 0; wt[i]; i++) wt[i] = (wchar_t)towlower_l((wint_t)wt[i], utf8);
    for (size_t i = 0; wn[i]; i++) wn[i] = (wchar_t)towlower_l((wint_t)wn[i], utf8);
    return wcsstr(wt, wn) != NULL;
}

void views_customer_list(service *svc, const Sav__Command *cmd, service_reply *reply) {
    long limit;
    const char *search = command_arg(cmd, "search");
    if (command_int(cmd, "limit", 1, VIEW_LIST_MAX, 50, &limit) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    redisReply *ids = store_newest(service_store(svc), "customers", 10 * VIEW_LIST_MAX);
    if (!ids) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return;
    }
    json_t *rows = json_array();
    for (size_t i = 0; i < ids->elements && json_array_size(rows) < (size_t)limit; i++) {
        char name[64];
        snprintf(name, sizeof(name), "customer:%s", ids->element[i]->str);
        redisReply *h = store_hgetall(service_store(svc), 0, name);
        if (!h) break;
        json_t *c = views_object(h, NULL);
        freeReplyObject(h);
        const char *cname = json_string_value(json_object_get(c, "name"));
        if (!search || (cname && views_contains(cname, search)))
            json_array_append_new(rows, c);
        else
            json_decref(c);
    }
    freeReplyObject(ids);
    service_reply_json(reply, json_pack("{s:o,s:i}", "customers", rows, "count", (int)json_array_size(rows)));
}

void views_catalog_show(service *svc, const Sav__Command *cmd, service_reply *reply) {
    (void)cmd;
    if (service_catalog_sync(svc) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "%s", err_get());
        return;
    }
    const catalog *c = service_catalog(svc);
    json_t *models = json_array(), *centres = json_array(), *parts = json_array(), *faults = json_array();
    const catalog_model *m;
    const catalog_centre *ce;
    const catalog_part *p;
    const catalog_fault *f;
    for (size_t i = 0; (m = catalog_model_at(c, i)) != NULL; i++)
        json_array_append_new(models, json_pack("{s:s,s:s,s:s,s:i,s:i}", "id", m->id, "name", m->name, "family",
                                                m->family, "commercial_warranty_months", m->commercial_warranty_months,
                                                "parts_availability_years", m->parts_availability_years));
    for (size_t i = 0; (ce = catalog_centre_at(c, i)) != NULL; i++)
        json_array_append_new(centres, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I}", "id", ce->id, "name", ce->name,
                                                 "address", ce->address, "opening_hours", ce->opening_hours,
                                                 "labour_rate_cents", (json_int_t)ce->labour_rate_cents,
                                                 "travel_fee_cents", (json_int_t)ce->travel_fee_cents,
                                                 "diagnostic_fee_cents", (json_int_t)ce->diagnostic_fee_cents));
    for (size_t i = 0; (p = catalog_part_at(c, i)) != NULL; i++)
        json_array_append_new(parts, json_pack("{s:s,s:s,s:I}", "ref", p->ref, "name", p->name, "price_cents",
                                               (json_int_t)p->price_cents));
    for (size_t i = 0; (f = catalog_fault_at(c, i)) != NULL; i++)
        json_array_append_new(faults, json_pack("{s:s,s:s,s:s,s:s,s:i}", "family", f->family, "code", f->code,
                                                "symptom", f->symptom, "cause", f->cause, "labour_minutes",
                                                f->labour_minutes));
    service_reply_json(reply, json_pack("{s:I,s:o,s:o,s:o,s:o}", "version", (json_int_t)service_catalog_version(svc),
                                        "models", models, "centres", centres, "parts", parts, "fault_codes", faults));
}

void views_catalog_load(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *doc = command_arg(cmd, "document");
    long long version;
    catalog *parsed = doc ? catalog_parse(doc, strlen(doc)) : NULL;
    if (!parsed) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", doc ? err_get() : "no catalog document");
        return;
    }
    if (service_catalog_publish(svc, doc, strlen(doc), parsed, 0, &version) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "%s", err_get());
    } else {
        log_info(NULL, NULL, "catalog version %lld published by %s", version, service_actor(svc));
        service_catalog_sync(svc);
        service_reply_json(reply, json_pack("{s:I,s:i}", "version", (json_int_t)version, "models",
                                            (int)catalog_model_count(parsed)));
    }
    catalog_free(parsed);
}
