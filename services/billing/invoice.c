#include "invoice.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "money.h"
#include "pricing.h"
#include "quote.h"
#include "ticket.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const invoice_methods[] = {"card", "transfer", "cash", "cheque", NULL};

/* invoice.list reads invoices by pipelines of INVOICE_LIST_BATCH, among the newest INVOICE_LIST_SCAN of its index. */
#define INVOICE_LIST_BATCH 64
#define INVOICE_LIST_SCAN 10000

redisReply *invoice_read(service *svc, const char *invoice_id) {
    char name[64];
    snprintf(name, sizeof(name), "invoice:%s", invoice_id);
    return store_hgetall(service_store(svc), 0, name);
}

redisReply *invoice_load_cmd(service *svc, const Sav__Command *cmd, service_reply *reply, const char **id) {
    *id = command_arg(cmd, "id");
    if (validate_token("invoice number", *id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return NULL;
    }
    redisReply *inv = invoice_read(svc, *id);
    if (!inv || inv->elements == 0) {
        service_reply_error(reply, inv ? SAV__ERROR_CODE__ERR_NOT_FOUND : SAV__ERROR_CODE__ERR_UNAVAILABLE,
                            inv ? "no invoice %s" : "redis unavailable: %s", inv ? *id : err_get());
        if (inv) freeReplyObject(inv);
        return NULL;
    }
    return inv;
}

/* The customer's type and name, as they are when the invoice is issued. */
static int invoice_customer(service *svc, const char *customer_id, char type[16], char name[256]) {
    char key[STORE_KEY_LEN], kname[64];
    snprintf(kname, sizeof(kname), "customer:%s", customer_id);
    store_key(service_store(svc), 0, kname, key);
    const char *argv[] = {"HMGET", key, "type", "name"};
    size_t lens[] = {5, strlen(key), 4, 4};
    redisReply *r = store_call(service_store(svc), 4, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->element[0]->type != REDIS_REPLY_STRING) {
        if (r) freeReplyObject(r);
        return -1;
    }
    snprintf(type, 16, "%s", r->element[0]->str);
    snprintf(name, 256, "%s", r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
    freeReplyObject(r);
    return 0;
}

/* What an invoice carries besides its lines. */
typedef struct invoice_draft {
    const char *kind;    /* repair or diagnostic */
    json_t *document;    /* lines, totals, mentions; owned */
    int64_t gross_cents;
} invoice_draft;

/* The diagnostic fee alone, owed after a refused quote. */
static json_t *invoice_diagnostic_document(service *svc, const catalog_centre *c, int64_t *gross) {
    pricing_line l;
    memset(&l, 0, sizeof(l));
    snprintf(l.kind, sizeof(l.kind), "diagnostic");
    snprintf(l.label, sizeof(l.label), "Diagnostic (devis refusé)");
    l.quantity = 1, l.unit_cents = c->diagnostic_fee_cents, l.vat_bp = service_settings(svc)->vat_basis_points;
    pricing_totals t;
    if (pricing_compute(&l, 1, &t) != 0) return NULL;
    *gross = t.gross_cents;
    return json_pack("{s:[{s:s,s:s,s:s,s:I,s:I,s:I,s:i}],s:[{s:i,s:I,s:I}],s:I,s:I,s:I}", "lines", "kind", l.kind,
                     "ref", "", "label", l.label, "quantity", (json_int_t)1, "unit_cents", (json_int_t)l.unit_cents,
                     "amount_cents", (json_int_t)l.amount_cents, "vat_bp", l.vat_bp, "vat", "vat_bp", l.vat_bp,
                     "base_cents", (json_int_t)t.rates[0].base_cents, "vat_cents", (json_int_t)t.rates[0].vat_cents,
                     "net_cents", (json_int_t)t.net_cents, "vat_cents", (json_int_t)t.vat_cents, "gross_cents",
                     (json_int_t)t.gross_cents);
}

/* Issues an invoice (invoice_issue: gapless number, once per ticket and kind). */
static Sav__Ack__Status invoice_issue(service *svc, const Sav__Envelope *ev, const ticket_facts *t,
                                      const invoice_draft *d, char *reason, size_t reason_len) {
    const settings *cfg = service_settings(svc);
    char type[16], name[256], today[CLOCK_DATE_LEN], due[CLOCK_DATE_LEN], total[48], lang[4] = "fr";
    if (invoice_customer(svc, t->customer_id, type, name) != 0) {
        snprintf(reason, reason_len, "customer %s not readable", t->customer_id);
        return SAV__ACK__STATUS__RETRY;
    }
    int64_t now = clock_now_ms();
    clock_date_paris(now, today);
    int business = strcmp(type, "business") == 0;
    clock_date_add_days(today, business ? cfg->business_payment_days : 0, due);
    money_format(d->gross_cents, lang, total, sizeof(total));
    char *doc = json_dumps(d->document, JSON_COMPACT | JSON_PRESERVE_ORDER);
    store *st = service_store(svc);
    char purpose[STORE_KEY_LEN], seq[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], outbox[STORE_KEY_LEN];
    char seen[STORE_KEY_LEN], kname[96];
    snprintf(kname, sizeof(kname), "invoice_for:%s:%s", t->id, d->kind), store_key(st, 0, kname, purpose);
    snprintf(kname, sizeof(kname), "seq:invoice:%d", clock_year_paris(now)), store_key(st, 0, kname, seq);
    ticket_keys(svc, t->id, key, prefix);
    store_key(st, 0, "outbox:notification", outbox);
    service_seen_key(svc, ev, seen);
    /* The notice names the invoice, whose number Redis draws: the template gets it from the ticket's invoice_id. */
    const char *vars[] = {"total", total, "due_on", due};
    ticket_notice notice = {"invoice_issued", 1, vars, 2};
    envelope_buf body = {0};
    if (!doc || ticket_notice_pack(&notice, &body) != 0) {
        free(doc);
        snprintf(reason, reason_len, "out of memory");
        return SAV__ACK__STATUS__RETRY;
    }
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "invoice_issue"), store_args_add(&a, "5");
    store_args_add(&a, purpose), store_args_add(&a, seq), store_args_add(&a, key), store_args_add(&a, outbox);
    store_args_add(&a, seen), store_args_add(&a, prefix), store_args_add(&a, t->id), store_args_addf(&a, "%lld", (long long)now);
    store_args_addf(&a, "%d", clock_year_paris(now)), store_args_addf(&a, "%ld", clock_date_score(due));
    store_args_add(&a, t->customer_id), store_args_addf(&a, "%lld", (long long)d->gross_cents);
    store_args_addb(&a, body.data, body.len), store_args_addf(&a, "%d", cfg->dedup_ttl_days * 86400);
    store_args_add(&a, "kind"), store_args_add(&a, d->kind), store_args_add(&a, "customer_type"), store_args_add(&a, type);
    store_args_add(&a, "customer_name"), store_args_add(&a, name), store_args_add(&a, "issued_on"), store_args_add(&a, today);
    store_args_add(&a, "due_on"), store_args_add(&a, due), store_args_add(&a, "centre"), store_args_add(&a, t->centre);
    store_args_add(&a, "serial"), store_args_add(&a, t->serial), store_args_add(&a, "model"), store_args_add(&a, t->model);
    store_args_add(&a, "document"), store_args_add(&a, doc);
    redisReply *r = store_args_call(st, &a);
    free(doc);
    envelope_buf_free(&body);
    if (!r) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
        return SAV__ACK__STATUS__RETRY;
    }
    int ok = r->type == REDIS_REPLY_ARRAY;
    if (ok) log_info(t->id, ev->message_id, "invoice %s %s", r->element[0]->str, r->element[1]->integer ? "already issued" : "issued");
    else snprintf(reason, reason_len, "invoice_issue: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
    freeReplyObject(r);
    if (ok) relay_poke(service_relay(svc, SVC_NOTIFICATION));
    return ok ? SAV__ACK__STATUS__ACK : SAV__ACK__STATUS__RETRY;
}

/* A free repair done: the manufacturer owes the centre parts at cost and labour at the warranty rate. */
static Sav__Ack__Status invoice_claim(service *svc, const Sav__Envelope *ev, const ticket_facts *t, const char *basis,
                                      char *reason, size_t reason_len) {
    store *st = service_store(svc);
    char key[STORE_KEY_LEN], name[96];
    snprintf(name, sizeof(name), "verdict:%s", t->id), store_key(st, 0, name, key);
    const char *argv[] = {"HMGET", key, "parts", "labour_minutes"};
    size_t lens[] = {5, strlen(key), 5, 14};
    redisReply *v = store_call(st, 4, argv, lens);
    if (!v || v->type != REDIS_REPLY_ARRAY) {
        snprintf(reason, reason_len, "verdict not readable: %s", v ? "?" : err_get());
        if (v) freeReplyObject(v);
        return SAV__ACK__STATUS__RETRY;
    }
    int64_t parts = 0;
    char list[1024];
    snprintf(list, sizeof(list), "%s", v->element[0]->type == REDIS_REPLY_STRING ? v->element[0]->str : "");
    int minutes = v->element[1]->type == REDIS_REPLY_STRING ? atoi(v->element[1]->str) : 0;
    freeReplyObject(v);
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(tok, ':');
        if (colon) *colon = '\0';
        const catalog_part *p = catalog_part_find(service_catalog(svc), tok);
        if (p) parts += p->price_cents * (colon ? atoi(colon + 1) : 1);
    }
    int64_t labour = money_labour(minutes, service_settings(svc)->warranty_labour_rate_cents);
    char purpose[STORE_KEY_LEN], seq[STORE_KEY_LEN], seen[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    snprintf(name, sizeof(name), "claim_for:%s", t->id), store_key(st, 0, name, purpose);
    store_key(st, 0, "seq:claim", seq);
    service_seen_key(svc, ev, seen);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "claim_create"), store_args_add(&a, "3");
    store_args_add(&a, purpose), store_args_add(&a, seq), store_args_add(&a, seen), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, "ticket"), store_args_add(&a, t->id), store_args_add(&a, "centre"), store_args_add(&a, t->centre);
    store_args_add(&a, "serial"), store_args_add(&a, t->serial), store_args_add(&a, "basis"), store_args_add(&a, basis);
    store_args_add(&a, "parts_cents"), store_args_addf(&a, "%lld", (long long)parts);
    store_args_add(&a, "labour_minutes"), store_args_addf(&a, "%d", minutes);
    store_args_add(&a, "labour_cents"), store_args_addf(&a, "%lld", (long long)labour);
    store_args_add(&a, "total_cents"), store_args_addf(&a, "%lld", (long long)(parts + labour));
    return service_ack_status(svc, ev, store_args_call(st, &a), reason, reason_len) == SAV__ACK__STATUS__ACK
               ? SAV__ACK__STATUS__ACK : SAV__ACK__STATUS__RETRY;
}

/* Reads the coverage's basis and whether the customer pays. */
static int invoice_coverage(service *svc, const char *tid, char basis[32], int *pays) {
    char key[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "coverage:%s", tid), store_key(service_store(svc), 0, name, key);
    const char *argv[] = {"HMGET", key, "basis", "customer_pays", "status"};
    size_t lens[] = {5, strlen(key), 5, 13, 6};
    redisReply *r = store_call(service_store(svc), 5, argv, lens);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) freeReplyObject(r);
        return -1;
    }
    snprintf(basis, 32, "%s", r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "none");
    *pays = r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "1") == 0;
    int decided = r->element[2]->type == REDIS_REPLY_STRING && strcmp(r->element[2]->str, "decided") == 0;
    freeReplyObject(r);
    return decided ? 0 : 1;
}

static Sav__Ack__Status invoice_decide(service *svc, const Sav__Envelope *ev, const Sav__TicketReady *ready,
                                       char *reason, size_t reason_len) {
    ticket_facts t;
    char basis[32];
    int pays, done = strcmp(ready->outcome, "repaired") == 0 || strcmp(ready->outcome, "exchanged") == 0;
    if (ticket_read(svc, ev->ticket_id, &t) != 0) {
        snprintf(reason, reason_len, "ticket not readable");
        return SAV__ACK__STATUS__RETRY;
    }
    /* The real event is written with the step into ready: a ticket that is not there (yet) is billed later. */
    if (strcmp(t.state, "ready") != 0 && strcmp(t.state, "closed") != 0) {
        snprintf(reason, reason_len, "ticket is %s, not ready", t.state);
        return SAV__ACK__STATUS__RETRY;
    }
    int decided = invoice_coverage(svc, t.id, basis, &pays);
    if (decided < 0) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
        return SAV__ACK__STATUS__RETRY;
    }
    if (decided == 1) return SAV__ACK__STATUS__ACK; /* no verdict (installation, visit): nothing to bill here */
    if (!pays) return done && strcmp(basis, "none") != 0 ? invoice_claim(svc, ev, &t, basis, reason, reason_len)
                                                         : SAV__ACK__STATUS__ACK;
    redisReply *q = quote_read(svc, t.id);
    if (!q) {
        snprintf(reason, reason_len, "redis unavailable: %s", err_get());
        return SAV__ACK__STATUS__RETRY;
    }
    const catalog_centre *c = catalog_centre_find(service_catalog(svc), t.centre);
    invoice_draft d = {pricing_invoice_kind(pays, quote_field(q, "status"), ready->outcome,
                                            c ? c->diagnostic_fee_cents : 0), NULL, 0};
    if (d.kind && strcmp(d.kind, "repair") == 0) {
        d.document = json_loads(quote_field(q, "document"), 0, NULL);
        d.gross_cents = atoll(quote_field(q, "gross_cents"));
    } else if (d.kind) {
        d.document = invoice_diagnostic_document(svc, c, &d.gross_cents);
    }
    freeReplyObject(q);
    Sav__Ack__Status st = SAV__ACK__STATUS__ACK;
    if (d.kind && !d.document) snprintf(reason, reason_len, "the invoice could not be drawn up"), st = SAV__ACK__STATUS__REJECT;
    else if (d.kind) st = invoice_issue(svc, ev, &t, &d, reason, reason_len);
    json_decref(d.document);
    return st;
}

Sav__Ack__Status invoice_on_ready(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__TicketReady *ready = (Sav__TicketReady *)envelope_body(ev, &sav__ticket_ready__descriptor);
    if (!ready || !ev->ticket_id) {
        snprintf(reason, reason_len, "%s", ready ? "ticket.ready without a ticket id" : err_get());
        if (ready) sav__ticket_ready__free_unpacked(ready, NULL);
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status = invoice_decide(svc, ev, ready, reason, reason_len);
    sav__ticket_ready__free_unpacked(ready, NULL);
    return status;
}

/* ---- commands ---------------------------------------------------------------- */

static const char *const invoice_ints[] = {"total_cents", "paid_cents", "credited_cents", "balance_cents",
                                           "parts_cents", "labour_cents", "labour_minutes", "amount_cents", NULL};

static json_t *invoice_json(const redisReply *flat) {
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        const char *k = flat->element[i]->str, *v = flat->element[i + 1]->str;
        int integer = 0;
        for (const char *const *n = invoice_ints; *n; n++) integer |= strcmp(*n, k) == 0;
        if (strcmp(k, "document") == 0)
            json_object_set_new(o, k, json_loads(v, 0, NULL) ?: json_null());
        else if (integer)
            json_object_set_new(o, k, json_integer(atoll(v)));
        else
            json_object_set_new(o, k, command_json_str(v));
    }
    return o;
}

/* Simple interest on cents for days at a yearly rate in basis points, rounded half up to the cent like every amount. */
static int64_t invoice_interest(int64_t cents, int days, int rate_bp) {
    const int64_t per = 10000LL * 365;
    return (cents * days * rate_bp + per / 2) / per;
}

json_t *invoice_lateness(service *svc, const redisReply *inv, const char *today) {
    const settings *cfg = service_settings(svc);
    const char *due = quote_field(inv, "due_on");
    int64_t balance = atoll(quote_field(inv, "balance_cents"));
    int late = clock_date_valid(due) == 0 ? clock_date_diff_days(due, today) : 0;
    if (late <= 0 || balance <= 0) return json_pack("{s:i}", "days_late", late > 0 ? late : 0);
    if (strcmp(quote_field(inv, "customer_type"), "business") == 0) {
        /* B3: ECB rate + 10 points, per day late, and the flat EUR 40, due without a reminder. */
        int rate = cfg->ecb_rate_bp + cfg->late_penalty_points_bp;
        int64_t penalty = invoice_interest(balance, late, rate);
        return json_pack("{s:i,s:i,s:I,s:I}", "days_late", late, "penalty_rate_bp", rate, "penalty_cents",
                         (json_int_t)penalty, "recovery_indemnity_cents", (json_int_t)cfg->recovery_indemnity_cents);
    }
    /* B4: a consumer owes interest only from the formal notice. */
    const char *notice = quote_field(inv, "formal_notice_on");
    int days = notice[0] ? clock_date_diff_days(notice, today) : 0;
    int64_t interest = days > 0 ? invoice_interest(balance, days, cfg->legal_interest_bp) : 0;
    return json_pack("{s:i,s:s,s:I}", "days_late", late, "formal_notice_on", notice[0] ? notice : "none",
                     "interest_cents", (json_int_t)interest);
}

void invoice_show_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id;
    redisReply *inv = invoice_load_cmd(svc, cmd, reply, &id);
    if (!inv) return;
    char today[CLOCK_DATE_LEN], key[STORE_KEY_LEN], name[80];
    clock_date_paris(clock_now_ms(), today);
    json_t *o = invoice_json(inv);
    json_object_set_new(o, "lateness", invoice_lateness(svc, inv, today));
    snprintf(name, sizeof(name), "invoice:%s:payments", id), store_key(service_store(svc), 0, name, key);
    const char *argv[] = {"LRANGE", key, "0", "-1"};
    size_t lens[] = {6, strlen(key), 1, 2};
    redisReply *p = store_call(service_store(svc), 4, argv, lens);
    json_t *payments = json_array();
    for (size_t i = 0; p && p->type == REDIS_REPLY_ARRAY && i < p->elements; i++)
        json_array_append_new(payments, json_loads(p->element[i]->str, 0, NULL) ?: json_null());
    json_object_set_new(o, "payments", payments);
    if (p) freeReplyObject(p);
    freeReplyObject(inv);
    service_reply_json(reply, o);
}

/* The index an invoice list walks: the customer's own invoices when one is named, the unpaid ones when only those
 * can match, else all. Returns its ids newest first, at most INVOICE_LIST_SCAN + 1 of them (free with
 * freeReplyObject), or NULL with err. */
static redisReply *invoice_list_index(service *svc, const char *customer, int unpaid_only) {
    if (!customer) return store_newest(service_store(svc), unpaid_only ? "invoices:unpaid" : "invoices", INVOICE_LIST_SCAN + 1);
    char name[64], key[STORE_KEY_LEN], stop[24];
    snprintf(name, sizeof(name), "customer:%s:invoices", customer), store_key(service_store(svc), 0, name, key);
    snprintf(stop, sizeof(stop), "-%d", INVOICE_LIST_SCAN + 1);
    const char *argv[] = {"LRANGE", key, stop, "-1"};
    size_t lens[] = {6, strlen(key), strlen(stop), 2};
    redisReply *r = store_call(service_store(svc), 4, argv, lens);
    if (r && r->type != REDIS_REPLY_ARRAY) {
        err_set("redis LRANGE %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        freeReplyObject(r);
        return NULL;
    }
    /* The customer's list is in issue order: turn it newest first like the sorted sets. */
    for (size_t i = 0; r && i < r->elements / 2; i++) {
        redisReply *t = r->element[i];
        r->element[i] = r->element[r->elements - 1 - i], r->element[r->elements - 1 - i] = t;
    }
    return r;
}

/* Reads n invoices in one round trip into out (free each). Returns 0, or -1 with err. */
static int invoice_read_batch(service *svc, redisReply *const *ids, int n, redisReply **out) {
    char keys[INVOICE_LIST_BATCH][STORE_KEY_LEN], name[64];
    const char *argv[INVOICE_LIST_BATCH][2], **argvp[INVOICE_LIST_BATCH];
    size_t lens[INVOICE_LIST_BATCH][2];
    const size_t *lensp[INVOICE_LIST_BATCH];
    int argc[INVOICE_LIST_BATCH];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "invoice:%s", ids[i]->str), store_key(service_store(svc), 0, name, keys[i]);
        argv[i][0] = "HGETALL", argv[i][1] = keys[i], lens[i][0] = 7, lens[i][1] = strlen(keys[i]);
        argvp[i] = argv[i], lensp[i] = lens[i], argc[i] = 2;
    }
    return store_pipeline(service_store(svc), n, argc, argvp, lensp, out);
}

/* Whether an invoice read back passes the list's filters. */
static int invoice_list_keeps(const redisReply *inv, const char *status, const char *customer, int overdue, const char *today) {
    return inv->type == REDIS_REPLY_ARRAY && inv->elements > 0 &&
           (!status || strcmp(quote_field(inv, "status"), status) == 0) &&
           (!customer || strcmp(quote_field(inv, "customer_id"), customer) == 0) &&
           (!overdue || strcmp(quote_field(inv, "due_on"), today) < 0);
}

void invoice_list_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    static const char *const statuses[] = {"unpaid", "partially_paid", "paid", "credited", NULL};
    const char *status = command_arg(cmd, "status"), *customer = command_arg(cmd, "customer");
    int overdue = command_flag(cmd, "overdue");
    long limit;
    if (command_int(cmd, "limit", 1, 1000, 50, &limit) != 0 || (status && validate_choice("status", status, statuses) != 0) ||
        (customer && validate_token("customer id", customer) != 0)) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    int unpaid_only = overdue || (status && (strcmp(status, "unpaid") == 0 || strcmp(status, "partially_paid") == 0));
    redisReply *ids = invoice_list_index(svc, customer, unpaid_only);
    if (!ids) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return;
    }
    size_t scan = ids->elements < INVOICE_LIST_SCAN ? ids->elements : INVOICE_LIST_SCAN, i = 0;
    json_t *rows = json_array();
    while (i < scan && json_array_size(rows) < (size_t)limit) {
        int n = scan - i < INVOICE_LIST_BATCH ? (int)(scan - i) : INVOICE_LIST_BATCH;
        redisReply *batch[INVOICE_LIST_BATCH];
        if (invoice_read_batch(svc, ids->element + i, n, batch) != 0) {
            json_decref(rows), freeReplyObject(ids);
            service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
            return;
        }
        for (int k = 0; k < n; k++, i++) {
            if (json_array_size(rows) < (size_t)limit && invoice_list_keeps(batch[k], status, customer, overdue, today)) {
                json_t *o = invoice_json(batch[k]);
                json_object_del(o, "document");
                json_array_append_new(rows, o);
            }
            freeReplyObject(batch[k]);
        }
    }
    /* Only the newest INVOICE_LIST_SCAN of an index are looked at: say so when older ones might have matched. */
    int truncated = json_array_size(rows) < (size_t)limit && ids->elements > INVOICE_LIST_SCAN;
    freeReplyObject(ids);
    service_reply_json(reply, json_pack("{s:o,s:i,s:s,s:b}", "invoices", rows, "count", (int)json_array_size(rows), "today", today,
                                        "truncated", truncated));
}

void payment_record_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "invoice"), *method = command_arg(cmd, "method"), *ref = command_arg(cmd, "ref");
    long amount;
    if (validate_token("invoice number", id) != 0 || command_int(cmd, "amount", 1, 100000000, 0, &amount) != 0 ||
        amount == 0 || validate_choice("method", method, invoice_methods) != 0 || (ref && validate_text("ref", ref, 100, 0) != 0) ||
        !cmd->request_id || validate_token("request id", cmd->request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", amount == 0 ? "--amount is required" : err_get());
        return;
    }
    store *st = service_store(svc);
    char req[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[96];
    store_request_key(st, 0, "payment.record", cmd->request_id, req);
    snprintf(name, sizeof(name), "invoice:%s", id), store_key(st, 0, name, key);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "payment_record"), store_args_add(&a, "2");
    store_args_add(&a, req), store_args_add(&a, key), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_addf(&a, "%ld", amount), store_args_add(&a, method), store_args_add(&a, ref ? ref : "");
    store_args_add(&a, service_actor(svc));
    redisReply *r = store_args_call(st, &a);
    char what[64];
    snprintf(what, sizeof(what), "invoice %s", id);
    if (!service_reply_failure(reply, r, what))
        service_reply_json(reply, json_pack("{s:s,s:I,s:s,s:b}", "invoice", id, "balance_cents", (json_int_t)r->element[0]->integer,
                                            "status", r->element[1]->str, "replayed", r->element[2]->integer == 1));
    if (r) freeReplyObject(r);
}

void invoice_credit_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id"), *why = command_arg(cmd, "reason");
    long amount;
    int full = command_flag(cmd, "full");
    if (validate_token("invoice number", id) != 0 || command_int(cmd, "amount", 1, 100000000, 0, &amount) != 0 ||
        full == (amount > 0) || !why || validate_text("reason", why, 500, 0) != 0 || !cmd->request_id ||
        validate_token("request id", cmd->request_id) != 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s",
                            full == (amount > 0) ? "give exactly one of --amount CENTS and --full"
                            : !why ? "a credit note needs --reason" : err_get());
        return;
    }
    store *st = service_store(svc);
    int64_t now = clock_now_ms();
    char req[STORE_KEY_LEN], seq[STORE_KEY_LEN], key[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[96];
    store_request_key(st, 0, "invoice.credit", cmd->request_id, req);
    snprintf(name, sizeof(name), "seq:credit:%d", clock_year_paris(now)), store_key(st, 0, name, seq);
    snprintf(name, sizeof(name), "invoice:%s", id), store_key(st, 0, name, key);
    store_shard_prefix(st, 0, prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "credit_issue"), store_args_add(&a, "3");
    store_args_add(&a, req), store_args_add(&a, seq), store_args_add(&a, key), store_args_add(&a, prefix);
    store_args_addf(&a, "%lld", (long long)now), store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_addf(&a, "%d", clock_year_paris(now)), store_args_addf(&a, "%ld", full ? 0L : amount), store_args_add(&a, why);
    store_args_add(&a, service_actor(svc));
    redisReply *r = store_args_call(st, &a);
    char what[64];
    snprintf(what, sizeof(what), "invoice %s", id);
    if (!service_reply_failure(reply, r, what))
        service_reply_json(reply, json_pack("{s:s,s:s,s:I,s:b}", "id", r->element[0]->str, "invoice", id, "amount_cents",
                                            (json_int_t)r->element[1]->integer, "replayed", r->element[2]->integer == 1));
    if (r) freeReplyObject(r);
}

void claim_list_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *status = command_arg(cmd, "status");
    redisReply *ids = store_newest(service_store(svc), "claims", 1000);
    if (!ids) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
        return;
    }
    json_t *rows = json_array();
    int64_t total = 0;
    for (size_t i = 0; i < ids->elements; i++) {
        char name[64];
        snprintf(name, sizeof(name), "claim:%s", ids->element[i]->str);
        redisReply *c = store_hgetall(service_store(svc), 0, name);
        if (c && (!status || strcmp(quote_field(c, "status"), status) == 0)) {
            json_array_append_new(rows, invoice_json(c));
            total += atoll(quote_field(c, "total_cents"));
        }
        if (c) freeReplyObject(c);
    }
    freeReplyObject(ids);
    service_reply_json(reply, json_pack("{s:o,s:i,s:I}", "claims", rows, "count", (int)json_array_size(rows),
                                        "total_cents", (json_int_t)total));
}

void claim_decide_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id = command_arg(cmd, "id"), *to = command_arg(cmd, "status"), *why = command_arg(cmd, "reason");
    static const char *const statuses[] = {"approved", "rejected", "paid", NULL};
    if (validate_token("claim id", id) != 0 || validate_choice("status", to, statuses) != 0 ||
        (strcmp(to, "rejected") == 0 && (!why || validate_text("reason", why, 500, 0) != 0))) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s",
                            to && strcmp(to, "rejected") == 0 && !why ? "a rejection needs --reason" : err_get());
        return;
    }
    char key[STORE_KEY_LEN], name[64];
    snprintf(name, sizeof(name), "claim:%s", id), store_key(service_store(svc), 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "claim_status"), store_args_add(&a, "1"), store_args_add(&a, key);
    store_args_add(&a, to), store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%s_by", to), store_args_add(&a, service_actor(svc));
    if (why) store_args_add(&a, "reason"), store_args_add(&a, why);
    redisReply *r = store_args_call(service_store(svc), &a);
    char what[64];
    snprintf(what, sizeof(what), "claim %s", id);
    if (!service_reply_failure(reply, r, what))
        service_reply_json(reply, json_pack("{s:s,s:s}", "id", id, "status", r->str));
    if (r) freeReplyObject(r);
}
