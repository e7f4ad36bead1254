#include "intake.h"
#include "catalog.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTAKE_MAX_FAULTS 10
#define INTAKE_NAME_MAX 200
#define INTAKE_SYMPTOM_MAX 2000

static const char *const intake_kinds[] = {"repair", "installation", "commissioning", "preventive_maintenance",
                                           "assistance", NULL};
static const char *const intake_channels[] = {"drop_off", "on_site", "phone", "web", NULL};

/* A ticket after validation, with the facts copied from its customer and product. */
typedef struct intake_ticket {
    char requested_on[CLOCK_DATE_LEN];
    char sla_due_on[CLOCK_DATE_LEN];
    char faults[INTAKE_MAX_FAULTS * 66];
    const char *centre;
    redisReply *customer; /* HMGET of intake_customer_fields */
    redisReply *product;  /* HMGET of intake_product_fields */
} intake_ticket;

enum { CU_TYPE, CU_LANG };
static const char *const intake_customer_fields[] = {"type", "lang"};
enum { PR_OWNER, PR_MODEL, PR_DELIVERED, PR_SECOND_HAND };
static const char *const intake_product_fields[] = {"owner", "model", "delivered_on", "second_hand"};

static const char *intake_str(const redisReply *r, int i) {
    return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

/* Checks a date option, naming it in the error. */
static int intake_check_date(const char *what, const char *date) {
    if (clock_date_valid(date) == 0) return 0;
    char why[256];
    snprintf(why, sizeof(why), "%s", err_get());
    err_set("%s: %s", what, why);
    return -1;
}

static int intake_check_dates(service *svc, const Sav__TicketOpen *o, intake_ticket *t) {
    char today[CLOCK_DATE_LEN];
    clock_date_paris(clock_now_ms(), today);
    if (o->requested_on) {
        if (intake_check_date("request date", o->requested_on) != 0) return -1;
        if (strcmp(o->requested_on, today) > 0) {
            err_set("request date %s is in the future (today is %s)", o->requested_on, today);
            return -1;
        }
        snprintf(t->requested_on, sizeof(t->requested_on), "%s", o->requested_on);
    } else {
        memcpy(t->requested_on, today, sizeof(today));
    }
    int kind = 0;
    while (strcmp(intake_kinds[kind], o->kind) != 0) kind++;
    return clock_date_add_days(t->requested_on, service_settings(svc)->sla_days[kind], t->sla_due_on);
}

static int intake_check_faults(const Sav__TicketOpen *o, intake_ticket *t) {
    if (o->n_fault_codes > INTAKE_MAX_FAULTS) {
        err_set("at most %d fault codes per ticket", INTAKE_MAX_FAULTS);
        return -1;
    }
    size_t pos = 0;
    for (size_t i = 0; i < o->n_fault_codes; i++) {
        if (validate_token("fault code", o->fault_codes[i]) != 0) return -1;
        pos += (size_t)snprintf(t->faults + pos, sizeof(t->faults) - pos, "%s%s", i ? "," : "", o->fault_codes[i]);
    }
    return 0;
}

/* Checks what the request itself says, before looking anything up. */
static int intake_check(service *svc, const Sav__TicketOpen *o, intake_ticket *t) {
    if (o->customer && !o->customer_id) {
        err_set("inline customer contacts are no longer accepted: register the customer (savctl customer add) "
                "and the product (savctl product add), then open the ticket with --customer C-NNNNNN");
        return -1;
    }
    t->centre = o->centre ? o->centre : service_settings(svc)->default_centre;
    if (validate_token("request id", o->request_id) != 0 || validate_token("customer id", o->customer_id) != 0 ||
        validate_token("serial number", o->serial) != 0 || validate_choice("kind", o->kind, intake_kinds) != 0 ||
        validate_choice("channel", o->channel, intake_channels) != 0 ||
        validate_text("symptom", o->symptom, INTAKE_SYMPTOM_MAX, 1) != 0 || intake_check_dates(svc, o, t) != 0 ||
        intake_check_faults(o, t) != 0)
        return -1;
    if (!catalog_centre_find(service_catalog(svc), t->centre)) {
        err_set("service centre \"%s\" is not in the catalog", t->centre);
        return -1;
    }
    return 0;
}

/* Builds the two reads of a ticket open: the customer's facts, then the product's. */
static void intake_reads(service *svc, const char *customer_id, const char *serial, store_args reads[2]) {
    char name[96], key[STORE_KEY_LEN];
    store_args_init(&reads[0]), store_args_init(&reads[1]);
    snprintf(name, sizeof(name), "customer:%s", customer_id), store_key(service_store(svc), 0, name, key);
    store_args_add(&reads[0], "HMGET"), store_args_addf(&reads[0], "%s", key);
    for (size_t i = 0; i < sizeof(intake_customer_fields) / sizeof(intake_customer_fields[0]); i++)
        store_args_add(&reads[0], intake_customer_fields[i]);
    snprintf(name, sizeof(name), "product:%s", serial), store_key(service_store(svc), 0, name, key);
    store_args_add(&reads[1], "HMGET"), store_args_addf(&reads[1], "%s", key);
    for (size_t i = 0; i < sizeof(intake_product_fields) / sizeof(intake_product_fields[0]); i++)
        store_args_add(&reads[1], intake_product_fields[i]);
}

int intake_read_ahead(service *svc, const Sav__Envelope *req, store_args reads[SERVICE_READS_AHEAD]) {
    Sav__TicketOpen *o = (Sav__TicketOpen *)envelope_body(req, &sav__ticket_open__descriptor);
    int n = o && o->customer_id && o->serial ? 2 : 0;
    if (n) intake_reads(svc, o->customer_id, o->serial, reads);
    if (o) sav__ticket_open__free_unpacked(o, NULL);
    return n;
}

/* Reads the customer's and the product's facts (one round trip, or none when they were read ahead with the rest
 * of the burst). 0, 1 not found (err set), -1 Redis down. */
static int intake_lookup(service *svc, const Sav__TicketOpen *o, intake_ticket *t) {
    store_args reads[2];
    intake_reads(svc, o->customer_id, o->serial, reads);
    redisReply *out[2] = {service_read_ahead(svc, &reads[0]), service_read_ahead(svc, &reads[1])};
    if (!out[0] || !out[1]) {
        if (out[0]) freeReplyObject(out[0]);
        if (out[1]) freeReplyObject(out[1]);
        const int argc[] = {reads[0].argc, reads[1].argc};
        const char **argv[] = {reads[0].argv, reads[1].argv};
        const size_t *lens[] = {reads[0].len, reads[1].len};
        if (store_pipeline(service_store(svc), 2, argc, argv, lens, out) != 0) return -1;
    }
    t->customer = out[0];
    t->product = out[1];
    if (out[0]->type != REDIS_REPLY_ARRAY || out[0]->element[CU_TYPE]->type != REDIS_REPLY_STRING) {
        err_set("no customer %s", o->customer_id);
        return 1;
    }
    if (out[1]->type != REDIS_REPLY_ARRAY || out[1]->element[PR_OWNER]->type != REDIS_REPLY_STRING) {
        err_set("no product with serial %s", o->serial);
        return 1;
    }
    return 0;
}

/* Packs the TicketReceived event diagnostics will get; caller frees out. */
static int intake_event(const Sav__TicketOpen *o, const intake_ticket *t, envelope_buf *out) {
    Sav__TicketReceived ev = SAV__TICKET_RECEIVED__INIT;
    ev.model = (char *)intake_str(t->product, PR_MODEL);
    ev.kind = o->kind;
    ev.n_fault_codes = o->n_fault_codes;
    ev.fault_codes = o->fault_codes;
    ev.symptom = o->symptom;
    ev.requested_on = (char *)t->requested_on;
    ev.delivered_on = (char *)intake_str(t->product, PR_DELIVERED);
    ev.has_second_hand = 1, ev.second_hand = strcmp(intake_str(t->product, PR_SECOND_HAND), "1") == 0;
    ev.has_business = 1, ev.business = strcmp(intake_str(t->customer, CU_TYPE), "business") == 0;
    out->len = sav__ticket_received__get_packed_size(&ev);
    out->data = malloc(out->len);
    if (!out->data) {
        err_set("out of memory");
        return -1;
    }
    sav__ticket_received__pack(&ev, out->data);
    return 0;
}

static void intake_ticket_fields(service *svc, store_args *a, const Sav__TicketOpen *o, const intake_ticket *t) {
    store_args_add(a, "customer_id"), store_args_add(a, o->customer_id);
    store_args_add(a, "serial"), store_args_add(a, o->serial);
    store_args_add(a, "model"), store_args_add(a, intake_str(t->product, PR_MODEL));
    store_args_add(a, "kind"), store_args_add(a, o->kind);
    store_args_add(a, "channel"), store_args_add(a, o->channel);
    store_args_add(a, "centre"), store_args_add(a, t->centre);
    store_args_add(a, "symptom"), store_args_add(a, o->symptom);
    store_args_add(a, "faults"), store_args_add(a, t->faults);
    store_args_add(a, "requested_on"), store_args_add(a, t->requested_on);
    store_args_add(a, "sla_due_on"), store_args_add(a, t->sla_due_on);
    store_args_add(a, "request_id"), store_args_add(a, o->request_id);
    store_args_add(a, "opened_by"), store_args_add(a, service_actor(svc));
    store_args_add(a, "outcome"), store_args_add(a, "");
    /* Facts as they were at the request: the guarantees are judged on them. */
    store_args_add(a, "lang"), store_args_add(a, intake_str(t->customer, CU_LANG));
    store_args_add(a, "business"), store_args_add(a, strcmp(intake_str(t->customer, CU_TYPE), "business") == 0 ? "1" : "0");
    store_args_add(a, "delivered_on"), store_args_add(a, intake_str(t->product, PR_DELIVERED));
    store_args_add(a, "second_hand"), store_args_add(a, intake_str(t->product, PR_SECOND_HAND));
}

/* Answers a ticket open from ticket_open's reply (request_id: the request's, to free). */
static void intake_opened(service *svc, const redisReply *r, void *request_id, service_reply *reply) {
    if (!r) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_UNAVAILABLE, "redis unavailable: %s", err_get());
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "REFUSED ", 8) == 0) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", r->str + 8);
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING) {
        log_error(NULL, NULL, "ticket_open failed: %s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "ticket could not be stored");
    } else {
        Sav__TicketOpened opened = SAV__TICKET_OPENED__INIT;
        opened.ticket_id = r->element[0]->str;
        opened.state = "received";
        opened.replayed = r->element[1]->integer == 1;
        log_info(opened.ticket_id, NULL, "ticket %s (request %s)", opened.replayed ? "replayed" : "opened",
                 (const char *)request_id);
        service_reply_msg(reply, SAV__MESSAGE_TYPE__TICKET_OPENED, &opened.base);
        relay_poke(service_relay(svc, SVC_DIAGNOSTICS));
    }
    free(request_id);
}

/* Queues ticket_open (the reply follows its answer, see intake_opened); fills reply when it cannot. */
static void intake_store(service *svc, const Sav__TicketOpen *o, const intake_ticket *t, const envelope_buf *event,
                         service_reply *reply) {
    store *st = service_store(svc);
    const settings *cfg = service_settings(svc);
    int shard = store_request_shard(st, o->request_id);
    int64_t now = clock_now_ms();
    char req_key[STORE_KEY_LEN], seq_key[STORE_KEY_LEN], outbox[STORE_KEY_LEN], prefix[STORE_KEY_LEN], name[96];
    store_request_key(st, shard, "ticket.open", o->request_id, req_key);
    snprintf(name, sizeof(name), "seq:ticket:%d", clock_year_paris(now));
    store_key(st, shard, name, seq_key);
    store_key(st, shard, "outbox:diagnostics", outbox);
    store_shard_prefix(st, shard, prefix);

    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "ticket_open"), store_args_add(&a, "3");
    store_args_add(&a, req_key), store_args_add(&a, seq_key), store_args_add(&a, outbox);
    store_args_add(&a, prefix);
    store_args_addf(&a, "%d", shard);
    store_args_addf(&a, "%d", store_shards(st));
    store_args_addf(&a, "%d", clock_year_paris(now));
    store_args_addf(&a, "%lld", (long long)now);
    store_args_addf(&a, "%d", cfg->dedup_ttl_days * 86400);
    store_args_addb(&a, event->data, event->len);
    store_args_add(&a, o->customer_id), store_args_add(&a, o->serial), store_args_add(&a, o->kind);
    intake_ticket_fields(svc, &a, o, t);

    char *request_id = strdup(o->request_id);
    if (!request_id) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "out of memory");
        return;
    }
    service_reply_after(svc, &a, SVC_DIAGNOSTICS, intake_opened, request_id, reply);
}

void intake_open(service *svc, const Sav__TicketOpen *o, service_reply *reply) {
    intake_ticket t = {0};
    envelope_buf event = {0};
    int found;
    if (intake_check(svc, o, &t) != 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
    else if ((found = intake_lookup(svc, o, &t)) != 0)
        service_reply_error(reply, found < 0 ? SAV__ERROR_CODE__ERR_UNAVAILABLE : SAV__ERROR_CODE__ERR_NOT_FOUND, "%s",
                            err_get());
    else if (intake_event(o, &t, &event) != 0)
        service_reply_error(reply, SAV__ERROR_CODE__ERR_INTERNAL, "%s", err_get());
    else
        intake_store(svc, o, &t, &event, reply);
    envelope_buf_free(&event);
    if (t.customer) freeReplyObject(t.customer);
    if (t.product) freeReplyObject(t.product);
}

void intake_on_ticket_open(service *svc, const Sav__Envelope *req, service_reply *reply) {
    Sav__TicketOpen *o = (Sav__TicketOpen *)envelope_body(req, &sav__ticket_open__descriptor);
    if (!o) {
        service_reply_error(reply, SAV__ERROR_CODE__ERR_REJECTED, "%s", err_get());
        return;
    }
    intake_open(svc, o, reply);
    sav__ticket_open__free_unpacked(o, NULL);
}
