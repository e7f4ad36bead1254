/* Customers, products (assets) and their contracts: the records a ticket is
 * checked against. Every create is idempotent by request id; every check is
 * made before the first write, and the cross-record ones (customer exists,
 * serial unused) inside the Redis Function that writes. */
#include "intake.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const registry_langs[] = {"fr", "en", NULL};
static const char *const registry_contract_types[] = {"extended_warranty", "maintenance", NULL};
static const char *const registry_covers[] = {"parts", "labour", "travel", "wear", "accident", NULL};

/* Validated customer fields, as name/value pairs for Redis. */
typedef struct customer_fields {
    char phone[24];
    char consent[3][2];
    const char *pairs[24];
    size_t n; /* pairs */
} customer_fields;

static void registry_pair(customer_fields *f, const char *name, const char *value) {
    f->pairs[2 * f->n] = name;
    f->pairs[2 * f->n + 1] = value;
    f->n++;
}

/* Parses --consent "sms,email,marketing" (or "none") into three "1"/"0" flags. */
static int registry_consent(const char *list, customer_fields *f) {
    static const char *const names[] = {"sms", "email", "marketing"};
    for (int i = 0; i < 3; i++) strcpy(f->consent[i], "0");
    if (strcmp(list, "none") == 0) return 0;
    char copy[128], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", list);
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(tok, names[i]) == 0) found = i;
        if (found < 0) {
            err_set("consent must list sms, email, marketing (or be none), got \"%s\"", tok);
            return -1;
        }
        strcpy(f->consent[found], "1");
    }
    return 0;
}

/* Checks the customer arguments present in cmd (all of them for an add) and collects them. */
static int registry_customer_fields(const Sav__Command *cmd, int adding, customer_fields *f) {
    const char *name = command_arg(cmd, "name"), *phone = command_arg(cmd, "phone");
    const char *email = command_arg(cmd, "email"), *lang = command_arg(cmd, "lang");
    const char *business = command_arg(cmd, "business"), *consent = command_arg(cmd, "consent");
    memset(f, 0, sizeof(*f));
    if (adding && !name) {
        err_set("a customer needs a name");
        return -1;
    }
    if (name && validate_text("name", name, 200, 0) != 0) return -1;
    if (phone && phone[0] && validate_phone(phone, f->phone, sizeof(f->phone)) != 0) return -1;
    if (email && email[0] && validate_email(email) != 0) return -1;
    if (lang && validate_choice("language", lang, registry_langs) != 0) return -1;
    if (business && business[0] && validate_company_id(business) != 0) return -1;
    if (adding && !consent) consent = "sms,email";
    if (consent && registry_consent(consent, f) != 0) return -1;
    if (name) registry_pair(f, "name", name);
    if (phone) registry_pair(f, "phone", phone[0] ? f->phone : "");
    if (email) registry_pair(f, "email", email);
    if (lang || adding) registry_pair(f, "lang", lang ? lang : "fr");
    if (business || adding) {
        registry_pair(f, "type", business && business[0] ? "business" : "consumer");
        registry_pair(f, "company_id", business ? business : "");
    }
    if (consent) {
        registry_pair(f, "consent_sms", f->consent[0]);
        registry_pair(f, "consent_email", f->consent[1]);
        registry_pair(f, "consent_marketing", f->consent[2]);
    }
    return 0;
}

/* Answers a create: {"id": ..., "replayed": ...}, or the refusal. */
static void registry_created(redisReply *r, service_reply *reply) {
    /* "REFUSED no customer C-..." names a record that does not exist: not found rather than rejected. */
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "REFUSED no ", 11) == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "%s", r->str + 8);
    else if (service_reply_failure(reply, r, "record"))
        ;
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s",
                            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    else
        service_reply_json(reply, json_pack("{s:s,s:b}", "id", r->element[0]->str, "replayed",
                                            r->element[1]->integer == 1));
    if (r) freeReplyObject(r);
}

/* The request id of a command that creates something; NULL after replying with the error. */
static const char *registry_request_id(const Sav__Command *cmd, service_reply *reply) {
    if (!cmd->request_id || validate_token("request id", cmd->request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s",
                            cmd->request_id ? err_get() : "this command needs a request id");
        return NULL;
    }
    return cmd->request_id;
}

/* Starts an FCALL of record_create for kind with the request key and sequence key; the caller adds the rest. */
static void registry_create_args(service *svc, store_args *a, const char *scope, const char *request_id,
                                 const char *seq, int nkeys) {
    store *st = service_store(svc);
    static __thread char req[STORE_KEY_LEN], seqkey[STORE_KEY_LEN];
    store_request_key(st, 0, scope, request_id, req);
    store_key(st, 0, seq, seqkey);
    store_args_init(a);
    store_args_add(a, "FCALL"), store_args_add(a, "record_create");
    store_args_addf(a, "%d", nkeys);
    store_args_add(a, req), store_args_add(a, seqkey);
}

void registry_customer_add(service *svc, const Sav__Command *cmd, service_reply *reply) {
    customer_fields f;
    const char *rid = registry_request_id(cmd, reply);
    if (!rid) return;
    if (registry_customer_fields(cmd, 1, &f) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    char prefix[STORE_KEY_LEN];
    store_shard_prefix(service_store(svc), 0, prefix);
    store_args a;
    registry_create_args(svc, &a, "customer.add", rid, "seq:customer", 2);
    store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, "C-%06d"), store_args_add(&a, "customer"), store_args_add(&a, "customers");
    store_args_add(&a, ""), store_args_add(&a, ""), store_args_add(&a, "");
    for (size_t i = 0; i < 2 * f.n; i++) store_args_add(&a, f.pairs[i]);
    registry_created(store_args_call(service_store(svc), &a), reply);
}

/* Checks a customer id argument; NULL after replying with the error. */
static const char *registry_customer_id(const Sav__Command *cmd, const char *arg, service_reply *reply) {
    const char *id = command_arg(cmd, arg);
    if (!id || strncmp(id, "C-", 2) != 0 || validate_token("customer id", id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "\"%s\" is not a customer id (C-NNNNNN)",
                            id ? id : "");
        return NULL;
    }
    return id;
}

void registry_customer_update(service *svc, const Sav__Command *cmd, service_reply *reply) {
    customer_fields f;
    const char *id = registry_customer_id(cmd, "id", reply);
    if (!id) return;
    if (registry_customer_fields(cmd, 0, &f) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (f.n == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "nothing to update: give at least one field");
        return;
    }
    char key[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "customer:%s", id);
    store_key(service_store(svc), 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "record_update"), store_args_add(&a, "1"), store_args_add(&a, key);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    for (size_t i = 0; i < 2 * f.n; i++) store_args_add(&a, f.pairs[i]);
    redisReply *r = store_args_call(service_store(svc), &a);
    if (!r)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    else if (r->type != REDIS_REPLY_INTEGER)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    else if (r->integer == 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no customer %s", id);
    else
        service_reply_json(reply, json_pack("{s:s,s:b}", "id", id, "updated", 1));
    if (r) freeReplyObject(r);
}

/* The name an erased customer's record keeps: no one can be told from it. */
#define REGISTRY_PSEUDONYM "(effacé)"
#define REGISTRY_ERASE_ROUNDS 10000 /* customer_erase calls, each after unpacking one of their tickets */

void registry_customer_erase(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *rid = registry_request_id(cmd, reply), *id = rid ? registry_customer_id(cmd, "id", reply) : NULL;
    if (!id) return;
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[64];
    store_request_key(st, 0, "customer.erase", rid, req);
    snprintf(name, sizeof(name), "customer:%s", id);
    store_key(st, 0, name, key);
    store_shard_prefix(st, 0, prefix);
    redisReply *r = NULL;
    /* Each packed ticket of theirs is unpacked first: its messages are in a compressed value Lua cannot rewrite.
     * Another intake may pack one again meanwhile: it is then unpacked again, within a bounded number of calls. */
    for (int round = 0; round < REGISTRY_ERASE_ROUNDS; round++) {
        store_args a;
        store_args_init(&a);
        store_args_add(&a, "FCALL"), store_args_add(&a, "customer_erase"), store_args_add(&a, "2");
        store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, prefix);
        store_args_addf(&a, "%lld", (long long)clock_now_ms());
        store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
        store_args_add(&a, id), store_args_add(&a, REGISTRY_PSEUDONYM), store_args_add(&a, service_actor(svc));
        r = store_args_call(st, &a);
        if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "PACKED ", 7) != 0) break;
        char tid[32];
        snprintf(tid, sizeof(tid), "%s", r->str + 7);
        freeReplyObject(r);
        r = NULL;
        if (packing_unpack(svc, tid) != 0) {
            service_reply_error(reply, store_healthy(st) ? SAV__ERROR_CODE__ERR_INTERNAL : SAV__ERROR_CODE__ERR_UNAVAILABLE,
                                "customer %s not erased: %s", id, err_get());
            return;
        }
    }
    if (!r && store_healthy(st)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "customer %s not erased: their tickets keep being "
                            "packed (try again)", id);
        return;
    }
    if (service_reply_failure(reply, r, "customer"))
        ;
    else if (r->type != REDIS_REPLY_ARRAY || r->elements != 5)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "unexpected reply to customer_erase");
    else
        service_reply_json(reply, json_pack("{s:s,s:b,s:I,s:I,s:b}", "id", id, "replayed", r->element[1]->integer == 1,
                                            "notifications_erased", (json_int_t)r->element[2]->integer, "tickets",
                                            (json_int_t)r->element[3]->integer, "already_erased",
                                            r->element[4]->integer == 1));
    if (r) freeReplyObject(r);
}

void registry_product_add(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *rid = registry_request_id(cmd, reply), *owner = rid ? registry_customer_id(cmd, "customer", reply) : NULL;
    if (!owner) return;
    const char *serial = command_arg(cmd, "serial"), *model = command_arg(cmd, "model");
    const char *delivered = command_arg(cmd, "delivered"), *bought_at = command_arg(cmd, "bought_at");
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    if (validate_token("serial number", serial) != 0 || validate_token("model", model) != 0 ||
        (bought_at && validate_text("place of purchase", bought_at, 200, 0) != 0)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    if (!catalog_model_find(service_catalog(svc), model)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "model \"%s\" is not in the catalog", model);
        return;
    }
    if (!delivered || clock_date_valid(delivered) != 0 || strcmp(delivered, today) > 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "delivery date: %s",
                            !delivered ? "required (YYYY-MM-DD)" : strcmp(delivered, today) > 0 ? "in the future" : err_get());
        return;
    }
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], pkey[STORE_KEY_LEN], ckey[STORE_KEY_LEN], name[128];
    store_request_key(st, 0, "product.add", rid, req);
    snprintf(name, sizeof(name), "product:%s", serial), store_key(st, 0, name, pkey);
    snprintf(name, sizeof(name), "customer:%s", owner), store_key(st, 0, name, ckey);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "product_add"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, pkey), store_args_add(&a, ckey);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, serial), store_args_add(&a, owner);
    store_args_add(&a, "model"), store_args_add(&a, model);
    store_args_add(&a, "delivered_on"), store_args_add(&a, delivered);
    store_args_add(&a, "second_hand"), store_args_add(&a, command_flag(cmd, "second_hand") ? "1" : "0");
    store_args_add(&a, "bought_at"), store_args_add(&a, bought_at ? bought_at : "");
    registry_created(store_args_call(st, &a), reply);
}

void registry_product_transfer(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *rid = registry_request_id(cmd, reply), *to = rid ? registry_customer_id(cmd, "to", reply) : NULL;
    if (!to) return;
    const char *serial = command_arg(cmd, "serial"), *date = command_arg(cmd, "date"), *note = command_arg(cmd, "note");
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    if (validate_token("serial number", serial) != 0 || (date && clock_date_valid(date) != 0) ||
        (note && validate_text("note", note, 500, 0) != 0)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], pkey[STORE_KEY_LEN], ckey[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[128];
    store_request_key(st, 0, "product.transfer", rid, req);
    snprintf(name, sizeof(name), "product:%s", serial), store_key(st, 0, name, pkey);
    snprintf(name, sizeof(name), "customer:%s", to), store_key(st, 0, name, ckey);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "product_transfer"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, pkey), store_args_add(&a, ckey), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, to), store_args_add(&a, date ? date : today), store_args_add(&a, note ? note : "");
    redisReply *r = store_args_call(st, &a);
    if (r && r->type == REDIS_REPLY_ERROR && strcmp(r->str, "REFUSED no such product") == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_NOT_FOUND, "no product with serial %s", serial);
        freeReplyObject(r);
        return;
    }
    registry_created(r, reply);
}

/* Checks --covers "parts,labour,..." against the known coverages. */
static int registry_covers_valid(const char *covers) {
    char copy[128], *save = NULL;
    snprintf(copy, sizeof(copy), "%s", covers);
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (validate_choice("covers", tok, registry_covers) != 0) return -1;
    return strlen(covers) < sizeof(copy) ? 0 : (err_set("covers list too long"), -1);
}

/* The contract's dates and schedule: first visit, number of visits. */
typedef struct contract_plan {
    char first_visit[CLOCK_DATE_LEN];
    long every, visits, price;
} contract_plan;

static int registry_contract_plan(const Sav__Command *cmd, const char *type, const char *start, const char *end,
                                  contract_plan *p) {
    memset(p, 0, sizeof(*p));
    if (clock_date_valid(start) != 0 || clock_date_valid(end) != 0) return -1;
    if (strcmp(start, end) >= 0) {
        err_set("the contract must end after it starts (%s .. %s)", start, end);
        return -1;
    }
    if (command_int(cmd, "every", 1, 120, 0, &p->every) != 0 || command_int(cmd, "price", 0, 100000000, 0, &p->price) != 0)
        return -1;
    int maintenance = strcmp(type, "maintenance") == 0;
    if (maintenance != (p->every > 0)) {
        err_set(maintenance ? "a maintenance contract needs --every MONTHS" : "--every is for maintenance contracts");
        return -1;
    }
    if (!maintenance) return 0;
    long months = 0;
    for (char d[CLOCK_DATE_LEN]; clock_date_add_months(start, (int)(months + p->every), d) == 0 && strcmp(d, end) <= 0;)
        months += p->every;
    long planned = months / p->every;
    if (command_int(cmd, "visits", 1, 1000, planned, &p->visits) != 0) return -1;
    if (p->visits > planned || planned == 0) {
        err_set("%ld visit(s) every %ld months do not fit between %s and %s", p->visits ? p->visits : 1, p->every,
                start, end);
        return -1;
    }
    return clock_date_add_months(start, (int)p->every, p->first_visit);
}

void registry_contract_add(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *rid = registry_request_id(cmd, reply);
    if (!rid) return;
    const char *serial = command_arg(cmd, "serial"), *type = command_arg(cmd, "type");
    const char *start = command_arg(cmd, "start"), *end = command_arg(cmd, "end"), *covers = command_arg(cmd, "covers");
    int maintenance = type && strcmp(type, "maintenance") == 0;
    if (!covers) covers = maintenance ? "labour,travel,wear" : "parts,labour,travel";
    contract_plan p;
    if (validate_token("serial number", serial) != 0 || validate_choice("type", type, registry_contract_types) != 0 ||
        !start || !end || registry_covers_valid(covers) != 0 || registry_contract_plan(cmd, type, start, end, &p) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s",
                            !start || !end ? "a contract needs --start and --end" : err_get());
        return;
    }
    store *st = service_store(svc);
    char prefix[STORE_KEY_LEN], pkey[STORE_KEY_LEN], name[128];
    snprintf(name, sizeof(name), "product:%s", serial), store_key(st, 0, name, pkey);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    registry_create_args(svc, &a, "contract.add", rid, "seq:contract", 3);
    store_args_add(&a, pkey), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, "K-%06d"), store_args_add(&a, "contract");
    store_args_add(&a, maintenance ? "maintenance:due" : "");
    store_args_addf(&a, "%ld", maintenance ? clock_date_score(p.first_visit) : 0L);
    store_args_addf(&a, "product:%s:contracts", serial);
    store_args_addf(&a, "no product with serial %s", serial);
    store_args_add(&a, "serial"), store_args_add(&a, serial), store_args_add(&a, "type"), store_args_add(&a, type);
    store_args_add(&a, "start"), store_args_add(&a, start), store_args_add(&a, "end"), store_args_add(&a, end);
    store_args_add(&a, "covers"), store_args_add(&a, covers);
    store_args_add(&a, "price_cents"), store_args_addf(&a, "%ld", p.price);
    store_args_add(&a, "price_included"), store_args_add(&a, command_flag(cmd, "included") ? "1" : "0");
    if (maintenance) {
        store_args_add(&a, "every_months"), store_args_addf(&a, "%ld", p.every);
        store_args_add(&a, "visits"), store_args_addf(&a, "%ld", p.visits);
        store_args_add(&a, "visits_done"), store_args_add(&a, "0");
        store_args_add(&a, "next_visit_on"), store_args_add(&a, p.first_visit);
    }
    registry_created(store_args_call(st, &a), reply);
}
