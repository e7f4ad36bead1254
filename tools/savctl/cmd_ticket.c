/* savctl ticket open|show. */
#include "savctl.h"
#include "clock.h"
#include "err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICKET_MAX_FAULTS 10

const char savctl_help_ticket_open[] =
    "NAME\n    savctl ticket open - open a service ticket\n\n"
    "SYNOPSIS\n"
    "    savctl [--config FILE] [--identity NAME] [--json] ticket open --customer C-NNNNNN --serial SN --kind KIND\n"
    "           [--channel CHANNEL] [--centre CENTRE] --symptom TEXT [--fault CODE]...\n"
    "           [--requested-on YYYY-MM-DD] [--request-id ID]\n\n"
    "DESCRIPTION\n"
    "    Opens a ticket for a registered product of a registered customer (savctl customer add,\n"
    "    savctl product add). Intake checks that the product belongs to the customer and, for a\n"
    "    repair, that the product has no other open repair ticket; it stores the ticket with its\n"
    "    SLA due date (sla.<kind>_days after the request) and, in the same atomic step, queues it\n"
    "    for diagnostics, which proposes a pre-diagnosis (installation, commissioning and\n"
    "    maintenance visits skip diagnosis); billing then estimates who pays and notification\n"
    "    writes the customer's messages. The timeline records the identity that opened it.\n\n"
    "OPTIONS\n"
    "    --customer C-NNNNNN  the customer (the product's owner)\n"
    "    --serial SN          the product's serial number\n"
    "    --kind KIND          repair, installation, commissioning, preventive_maintenance, assistance\n"
    "    --channel CHANNEL    drop_off (default), on_site, phone, web\n"
    "    --centre CENTRE      service centre id from the catalog (default intake.default_centre)\n"
    "    --symptom TEXT       what the customer reports\n"
    "    --fault CODE         fault code shown by the appliance; repeat for several (at most 10)\n"
    "    --requested-on DATE  date of the customer's request (default: today, Europe/Paris)\n"
    "    --request-id ID      idempotency key: the same id again returns the first answer and\n"
    "                         changes nothing (default: a fresh random id)\n\n"
    "OUTPUT\n"
    "    The ticket id. --json: {\"id\": \"T-YYYY-NNNNNN\", \"state\": \"received\", \"replayed\": false}\n\n"
    "EXIT STATUS\n    0 opened (or replayed), 1 usage, 2 rejected (reason on stderr), 3 unknown customer or\n"
    "    product, 4 intake unavailable, 6 forbidden (the identity's key or role: front_desk, manager, admin).\n";

const char savctl_help_ticket_show[] =
    "NAME\n    savctl ticket show - show a ticket, what each service recorded, and its timeline\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] ticket show T-YYYY-NNNNNN\n\n"
    "DESCRIPTION\n"
    "    Prints the ticket's state, customer and product, the pre-diagnosis (diagnostics),\n"
    "    the coverage estimate (billing), the customer notifications (notification) and the\n"
    "    timeline of every step with its time (Europe/Paris), state and actor (the identity that\n"
    "    ran it, or the service that acted by itself).\n\n"
    "OUTPUT\n"
    "    --json: one object with id, state, kind, channel, serial, model, customer {name, phone,\n"
    "    email, lang, business}, delivered_on, requested_on, symptom, fault_codes, created_at and\n"
    "    updated_at (UTC, ISO 8601), prediagnosis (object or null), coverage (object or null),\n"
    "    notifications [{id, event, channel, status, recipient, subject, body, lang, at}] and\n"
    "    timeline [{at, event, state, actor, detail}].\n\n"
    "EXIT STATUS\n    0 shown, 1 usage, 2 malformed id, 3 no such ticket, 4 intake unavailable, 6 the identity\n"
    "    is not admitted.\n";

typedef struct ticket_args {
    Sav__TicketOpen open;
    char *faults[TICKET_MAX_FAULTS];
    char request_id[ENVELOPE_ID_LEN];
} ticket_args;

static int ticket_parse_open(int argc, char **argv, ticket_args *t) {
    static const struct option opts[] = {
        {"customer", required_argument, 0, 'n'}, {"serial", required_argument, 0, 's'},
        {"kind", required_argument, 0, 'k'},     {"channel", required_argument, 0, 'c'},
        {"centre", required_argument, 0, 'C'},   {"symptom", required_argument, 0, 'y'},
        {"fault", required_argument, 0, 'f'},    {"requested-on", required_argument, 0, 'r'},
        {"request-id", required_argument, 0, 'i'}, {0, 0, 0, 0}};
    Sav__TicketOpen *o = &t->open;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o->customer_id = optarg; break;
        case 's': o->serial = optarg; break;
        case 'k': o->kind = optarg; break;
        case 'c': o->channel = optarg; break;
        case 'C': o->centre = optarg; break;
        case 'y': o->symptom = optarg; break;
        case 'f':
            if (o->n_fault_codes == TICKET_MAX_FAULTS)
                return savctl_usage_error("ticket open", "at most %d --fault", TICKET_MAX_FAULTS);
            t->faults[o->n_fault_codes++] = optarg;
            break;
        case 'r': o->requested_on = optarg; break;
        case 'i': o->request_id = optarg; break;
        default: return savctl_usage_error("ticket open", "unknown option");
        }
    }
    if (optind < argc) return savctl_usage_error("ticket open", "unexpected argument \"%s\"", argv[optind]);
    const char *missing = !o->customer_id ? "--customer" : !o->serial ? "--serial" : !o->kind ? "--kind"
                          : !o->symptom ? "--symptom" : NULL;
    if (missing) return savctl_usage_error("ticket open", "%s is required", missing);
    return 0;
}

int savctl_cmd_ticket_open(savctl *ctl, int argc, char **argv) {
    ticket_args t;
    memset(&t, 0, sizeof(t));
    sav__ticket_open__init(&t.open);
    t.open.fault_codes = t.faults;
    int rc = ticket_parse_open(argc, argv, &t);
    if (rc != 0) return rc;
    /* Required by the schema, decided by intake: the centre and model come from the records. */
    t.open.model = "";
    if (!t.open.channel) t.open.channel = "drop_off";
    if (!t.open.request_id) {
        envelope_new_id(t.request_id);
        t.open.request_id = t.request_id;
    }
    Sav__Envelope *reply;
    rc = savctl_request(ctl, SVC_INTAKE, SAV__MESSAGE_TYPE__TICKET_OPEN, &t.open.base, NULL, &reply);
    if (rc != SAVCTL_OK) return rc;
    Sav__TicketOpened *opened = reply->type == SAV__MESSAGE_TYPE__TICKET_OPENED
                                    ? (Sav__TicketOpened *)envelope_body(reply, &sav__ticket_opened__descriptor)
                                    : NULL;
    envelope_free(reply);
    if (!opened) {
        fprintf(stderr, "savctl: intake sent an unexpected reply\n");
        return SAVCTL_INTERNAL;
    }
    if (ctl->json)
        savctl_print_json(json_pack("{s:s,s:s,s:b}", "id", opened->ticket_id, "state", opened->state, "replayed",
                                    opened->replayed));
    else
        printf("%s%s\n", opened->ticket_id, opened->replayed ? " (already opened by this request id)" : "");
    sav__ticket_opened__free_unpacked(opened, NULL);
    return SAVCTL_OK;
}

/* ---- show ---------------------------------------------------------------- */

static const char *ticket_field(Sav__Field **fields, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(fields[i]->name, name) == 0) return fields[i]->value;
    return "";
}

static json_t *ticket_time(int64_t ms) {
    char buf[40];
    clock_format_utc(ms, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *ticket_opt_string(const char *s) {
    return s && s[0] ? json_string(s) : json_null();
}

/* A section recorded by a service as a JSON object; numeric and boolean fields typed. */
static json_t *ticket_section(Sav__Field **fields, size_t n) {
    if (n == 0) return json_null();
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *k = fields[i]->name, *v = fields[i]->value;
        if (strcmp(k, "customer_pays") == 0 || strcmp(k, "matched") == 0)
            json_object_set_new(o, k, json_boolean(strcmp(v, "1") == 0));
        else if (strcmp(k, "estimate_cents") == 0 || strcmp(k, "labour_minutes") == 0 ||
                 strcmp(k, "parts_availability_years") == 0 || strcmp(k, "gross_cents") == 0 ||
                 strcmp(k, "total_cents") == 0 || strcmp(k, "balance_cents") == 0 || strcmp(k, "version") == 0)
            json_object_set_new(o, k, json_integer(atoll(v)));
        else
            json_object_set_new(o, k, ticket_opt_string(v));
    }
    return o;
}

static json_t *ticket_faults(const char *csv) {
    json_t *arr = json_array();
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", csv);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        json_array_append_new(arr, json_string(tok));
    return arr;
}

static json_t *ticket_complaints(const Sav__TicketView *v) {
    json_t *arr = json_array();
    for (size_t i = 0; i < v->n_complaints; i++)
        json_array_append_new(arr, ticket_section(v->complaints[i]->fields, v->complaints[i]->n_fields));
    return arr;
}

#define TF2(name) ticket_field(v->ticket, v->n_ticket, name)

static json_t *ticket_json(const Sav__TicketView *v) {
    Sav__Field **f = v->ticket, **c = v->customer;
    size_t n = v->n_ticket, nc = v->n_customer;
#define TF(name) ticket_field(f, n, name)
#define CF(name) ticket_field(c, nc, name)
    json_t *o = json_pack("{s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:s,s:s}", "id", TF("id"), "state", TF("state"), "outcome",
                          ticket_opt_string(TF("outcome")), "kind", TF("kind"), "channel", TF("channel"), "customer_id",
                          TF("customer_id"), "serial", TF("serial"), "model", TF("model"), "centre", TF("centre"));
    json_object_set_new(o, "customer",
                        json_pack("{s:s,s:o,s:o,s:s,s:b}", "name", CF("name"), "phone", ticket_opt_string(CF("phone")),
                                  "email", ticket_opt_string(CF("email")), "lang", CF("lang"), "business",
                                  strcmp(CF("type"), "business") == 0));
    json_object_set_new(o, "delivered_on", ticket_opt_string(TF("delivered_on")));
    json_object_set_new(o, "second_hand", json_boolean(strcmp(TF("second_hand"), "1") == 0));
    json_object_set_new(o, "requested_on", json_string(TF("requested_on")));
    json_object_set_new(o, "sla_due_at", ticket_opt_string(TF("sla_due_on")));
    json_object_set_new(o, "symptom", json_string(TF("symptom")));
    json_object_set_new(o, "fault_codes", ticket_faults(TF("faults")));
    json_object_set_new(o, "created_at", ticket_time(atoll(TF("created_at"))));
    json_object_set_new(o, "updated_at", ticket_time(atoll(TF("updated_at"))));
    json_object_set_new(o, "unclaimed", json_boolean(strcmp(TF("unclaimed"), "1") == 0));
#undef TF
#undef CF
    json_object_set_new(o, "prediagnosis", ticket_section(v->prediagnosis, v->n_prediagnosis));
    json_object_set_new(o, "diagnosis", ticket_section(v->verdict, v->n_verdict));
    json_object_set_new(o, "coverage", ticket_section(v->coverage, v->n_coverage));
    json_object_set_new(o, "quote", ticket_section(v->quote, v->n_quote));
    json_object_set_new(o, "invoice", ticket_section(v->invoice, v->n_invoice));
    json_object_set_new(o, "immobilisation_days", TF2("immobilisation_days")[0] ? json_integer(atoi(TF2("immobilisation_days")))
                                                                               : json_null());
    json_object_set_new(o, "complaints", ticket_complaints(v));
    json_t *notifs = json_array();
    for (size_t i = 0; i < v->n_notifications; i++) {
        const Sav__NotificationView *nv = v->notifications[i];
        json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "id", nv->id, "event", nv->event, "channel",
                              nv->channel, "status", nv->status, "recipient", nv->recipient, "subject",
                              ticket_opt_string(nv->subject), "body", nv->body, "lang", nv->lang);
        json_object_set_new(j, "at", ticket_time(nv->at_ms));
        if (nv->sms_coding) {
            json_object_set_new(j, "sms_coding", json_string(nv->sms_coding));
            json_object_set_new(j, "sms_parts", json_integer(nv->sms_parts));
        }
        json_array_append_new(notifs, j);
    }
    json_object_set_new(o, "notifications", notifs);
    json_t *timeline = json_array();
    for (size_t i = 0; i < v->n_timeline; i++) {
        const Sav__TimelineEntry *e = v->timeline[i];
        json_t *j = json_pack("{s:o,s:s,s:s,s:s,s:s}", "at", ticket_time(e->at_ms), "event", e->event, "state",
                              e->state, "actor", e->actor, "detail", e->detail ? e->detail : "");
        json_array_append_new(timeline, j);
    }
    json_object_set_new(o, "timeline", timeline);
    return o;
}

/* Prints a service's section: the fields of `order` first, in that order, then any others. */
static void ticket_print_section(const char *title, Sav__Field **fields, size_t n, const char *const *order) {
    printf("\n%s\n", title);
    if (n == 0) printf("  (nothing recorded yet)\n");
    for (const char *const *k = order; *k; k++) {
        const char *v = ticket_field(fields, n, *k);
        if (strcmp(*k, "customer_pays") == 0 || strcmp(*k, "matched") == 0) v = strcmp(v, "1") == 0 ? "yes" : "no";
        if (v[0]) printf("  %-26s %s\n", *k, v);
    }
    for (size_t i = 0; i < n; i++) {
        const char *const *k = order;
        while (*k && strcmp(*k, fields[i]->name) != 0) k++;
        /* Times are stored in milliseconds: shown by the ticket's timeline, not here. */
        if (!*k && fields[i]->value[0] && strcmp(fields[i]->name, "at") != 0 && strcmp(fields[i]->name, "created_at") != 0 &&
            strcmp(fields[i]->name, "updated_at") != 0 && strcmp(fields[i]->name, "resolved_at") != 0)
            printf("  %-26s %s\n", fields[i]->name, fields[i]->value);
    }
}

/* Prints text indented under a notification, line by line. */
static void ticket_print_body(const char *body) {
    for (const char *line = body; *line;) {
        const char *nl = strchr(line, '\n');
        int len = nl ? (int)(nl - line) : (int)strlen(line);
        printf("        %.*s\n", len, line);
        line += len + (nl ? 1 : 0);
    }
}

static const char *const ticket_prediag_order[] = {"family", "matched", "fault_code", "symptom", "likely_cause", "parts",
                                                   "labour_minutes", "parts_availability_years", NULL};
static const char *const ticket_coverage_order[] = {"status", "basis", "rule", "customer_pays", "estimate_cents",
                                                    "burden_of_proof", "legal_until", "commercial_until",
                                                    "extended_until", "reason", NULL};
static const char *const ticket_verdict_order[] = {"version", "cause", "action", "parts", "labour_minutes", "by", "note",
                                                   NULL};

static void ticket_print_header(const Sav__TicketView *v) {
    Sav__Field **f = v->ticket, **c = v->customer;
    size_t n = v->n_ticket, nc = v->n_customer;
    char when[48];
    clock_format_paris(atoll(ticket_field(f, n, "created_at")), when, sizeof(when));
    printf("Ticket     %s    state: %s%s%s    kind: %s (%s)    centre: %s\n", ticket_field(f, n, "id"),
           ticket_field(f, n, "state"), ticket_field(f, n, "outcome")[0] ? "    outcome: " : "",
           ticket_field(f, n, "outcome"), ticket_field(f, n, "kind"), ticket_field(f, n, "channel"),
           ticket_field(f, n, "centre"));
    printf("Customer   %s %s  phone %s  e-mail %s  lang %s%s\n", ticket_field(f, n, "customer_id"),
           ticket_field(c, nc, "name"), ticket_field(c, nc, "phone")[0] ? ticket_field(c, nc, "phone") : "-",
           ticket_field(c, nc, "email")[0] ? ticket_field(c, nc, "email") : "-", ticket_field(c, nc, "lang"),
           strcmp(ticket_field(c, nc, "type"), "business") == 0 ? "  (business)" : "");
    printf("Product    %s  serial %s  delivered %s%s\n", ticket_field(f, n, "model"), ticket_field(f, n, "serial"),
           ticket_field(f, n, "delivered_on")[0] ? ticket_field(f, n, "delivered_on") : "unknown",
           strcmp(ticket_field(f, n, "second_hand"), "1") == 0 ? " (second-hand)" : "");
    printf("Symptom    %s  faults: %s\n", ticket_field(f, n, "symptom"),
           ticket_field(f, n, "faults")[0] ? ticket_field(f, n, "faults") : "-");
    printf("Opened     %s (requested on %s, due by %s)%s\n", when, ticket_field(f, n, "requested_on"),
           ticket_field(f, n, "sla_due_on"), strcmp(ticket_field(f, n, "unclaimed"), "1") == 0
                                                 ? "  UNCLAIMED: keep the product, judicial procedure only" : "");
}

void savctl_ticket_print(const Sav__TicketView *v) {
    char when[48];
    ticket_print_header(v);
    ticket_print_section("Pre-diagnosis (diagnostics)", v->prediagnosis, v->n_prediagnosis, ticket_prediag_order);
    if (v->n_verdict) ticket_print_section("Diagnosis (technician)", v->verdict, v->n_verdict, ticket_verdict_order);
    ticket_print_section(strcmp(ticket_field(v->coverage, v->n_coverage, "status"), "decided") == 0
                             ? "Coverage decision (diagnostics)" : "Coverage estimate (billing)",
                         v->coverage, v->n_coverage, ticket_coverage_order);
    static const char *const quote_order[] = {"version", "status", "gross_cents", "valid_until", NULL};
    static const char *const invoice_order[] = {"id", "status", "total_cents", "balance_cents", "due_on", NULL};
    if (v->n_quote) ticket_print_section("Quote (billing)", v->quote, v->n_quote, quote_order);
    if (v->n_invoice) ticket_print_section("Invoice (billing)", v->invoice, v->n_invoice, invoice_order);
    static const char *const complaint_order[] = {"id", "status", "reason", "deadline", "text", "resolution", NULL};
    for (size_t i = 0; i < v->n_complaints; i++)
        ticket_print_section("Complaint", v->complaints[i]->fields, v->complaints[i]->n_fields, complaint_order);
    printf("\nNotifications (notification)\n");
    if (v->n_notifications == 0) printf("  (none yet)\n");
    for (size_t i = 0; i < v->n_notifications; i++) {
        const Sav__NotificationView *nv = v->notifications[i];
        printf("  %-5s %-9s %s  [%s]", nv->channel, nv->status, nv->recipient, nv->id);
        if (nv->sms_coding) printf("  %s, %u part%s", nv->sms_coding, nv->sms_parts, nv->sms_parts > 1 ? "s" : "");
        printf("\n");
        if (nv->subject && nv->subject[0]) printf("        Subject: %s\n", nv->subject);
        ticket_print_body(nv->body);
    }
    printf("\nTimeline\n");
    for (size_t i = 0; i < v->n_timeline; i++) {
        const Sav__TimelineEntry *e = v->timeline[i];
        clock_format_paris(e->at_ms, when, sizeof(when));
        printf("  %s  %-26s %-14s %-13s %s\n", when, e->event, e->state, e->actor, e->detail ? e->detail : "");
    }
}

int savctl_cmd_ticket_show(savctl *ctl, int argc, char **argv) {
    if (argc != 2) return savctl_usage_error("ticket show", "expects exactly one ticket id");
    Sav__TicketShow q = SAV__TICKET_SHOW__INIT;
    q.ticket_id = argv[1];
    Sav__Envelope *reply;
    int rc = savctl_request(ctl, SVC_INTAKE, SAV__MESSAGE_TYPE__TICKET_SHOW, &q.base, NULL, &reply);
    if (rc != SAVCTL_OK) return rc;
    Sav__TicketView *v = reply->type == SAV__MESSAGE_TYPE__TICKET_VIEW
                             ? (Sav__TicketView *)envelope_body(reply, &sav__ticket_view__descriptor)
                             : NULL;
    envelope_free(reply);
    if (!v) {
        fprintf(stderr, "savctl: intake sent an unexpected reply\n");
        return SAVCTL_INTERNAL;
    }
    if (ctl->json)
        savctl_print_json(ticket_json(v));
    else
        savctl_ticket_print(v);
    sav__ticket_view__free_unpacked(v, NULL);
    return SAVCTL_OK;
}
