#include "notify.h"
#include "clock.h"
#include "contact.h"
#include "err.h"
#include "log.h"
#include "money.h"
#include "gsm.h"
#include "mailer.h"
#include "smsc.h"
#include "smsgw.h"
#include "template.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields every template may use, filled from the ticket, its customer and its centre, in this order. */
#define NOTIFY_COMMON_FIELDS \
    "customer_name", "ticket_id", "model", "serial", "centre_name", "centre_address", "opening_hours", "invoice_number"
enum { NF_NAME, NF_TICKET, NF_MODEL, NF_SERIAL, NF_CENTRE_NAME, NF_CENTRE_ADDRESS, NF_OPENING_HOURS, NF_INVOICE,
       NF_COMMON };

#define NOTIFY_MAX_FIELDS 16
#define NOTIFY_VALUE_LEN 160
/* A var is a word, a date or a sentence; anything longer is a bug upstream, not a message to send. */
#define NOTIFY_VAR_MAX_BYTES 1024

static const char *const nf_received[] = {NOTIFY_COMMON_FIELDS, "coverage", "coverage_short", NULL};
static const char *const nf_ready[] = {NOTIFY_COMMON_FIELDS, "outcome", "note", NULL};
static const char *const nf_reminder[] = {NOTIFY_COMMON_FIELDS, "days_waiting", "reminder_number", NULL};
static const char *const nf_unclaimed[] = {NOTIFY_COMMON_FIELDS, "days_waiting", NULL};
static const char *const nf_cancelled[] = {NOTIFY_COMMON_FIELDS, "reason", NULL};
static const char *const nf_repair[] = {NOTIFY_COMMON_FIELDS, NULL};
static const char *const nf_complaint_ack[] = {NOTIFY_COMMON_FIELDS, "complaint_id", "reason", "deadline", NULL};
static const char *const nf_complaint_esc[] = {NOTIFY_COMMON_FIELDS, "complaint_id", "deadline", NULL};
static const char *const nf_complaint_res[] = {NOTIFY_COMMON_FIELDS, "complaint_id", "resolution", "note", NULL};
static const char *const nf_mediator[] = {NOTIFY_COMMON_FIELDS, "complaint_id", "mediator", NULL};
static const char *const nf_diagnosis[] = {NOTIFY_COMMON_FIELDS, "cause", "action", "basis", "customer_pays",
                                           "coverage", "estimate", "waiting_parts", NULL};
static const char *const nf_deadline[] = {NOTIFY_COMMON_FIELDS, "requested_on", "deadline", "days", NULL};
static const char *const nf_quote[] = {NOTIFY_COMMON_FIELDS, "total", "valid_until", "quote_version", NULL};
static const char *const nf_quote_exp[] = {NOTIFY_COMMON_FIELDS, "total", "valid_until", NULL};
static const char *const nf_invoice[] = {NOTIFY_COMMON_FIELDS, "total", "due_on", NULL};
static const char *const nf_pay_reminder[] = {NOTIFY_COMMON_FIELDS, "invoice_id", "balance", "due_on", "reminder_number",
                                              NULL};
static const char *const nf_formal[] = {NOTIFY_COMMON_FIELDS, "invoice_id", "balance", "due_on", NULL};
static const char *const nf_maintenance[] = {NOTIFY_COMMON_FIELDS, "visit_date", "contract_id", "visit_number",
                                             NULL};

/* Every event that has templates. The first comes from CoverageEstimated; the others are CustomerNotice
 * events, whose vars are the fields after the common ones. */
#define NOTIFY_RECEIVED 0
static const template_event notify_events[] = {
    {"ticket_received", nf_received},
    {"ready_for_pickup", nf_ready},
    {"pickup_reminder", nf_reminder},
    {"unclaimed_notice", nf_unclaimed},
    {"ticket_cancelled", nf_cancelled},
    {"repair_started", nf_repair},
    {"complaint_acknowledged", nf_complaint_ack},
    {"complaint_escalated", nf_complaint_esc},
    {"complaint_resolved", nf_complaint_res},
    {"mediator_info", nf_mediator},
    {"maintenance_due", nf_maintenance},
    {"diagnosis_done", nf_diagnosis},
    {"quote_sent", nf_quote},
    {"quote_expiring", nf_quote_exp},
    {"invoice_issued", nf_invoice},
    {"payment_reminder", nf_pay_reminder},
    {"formal_notice", nf_formal},
    {"repair_deadline_breached", nf_deadline},
};
#define NOTIFY_NEVENTS (sizeof(notify_events) / sizeof(notify_events[0]))

/* How a var is checked and shown; a var not listed is free text, shown as sent. */
enum notify_kind { NK_TEXT, NK_CODE, NK_DATE, NK_NUMBER };
static const struct {
    const char *field;
    enum notify_kind kind;
} notify_kinds[] = {
    {"outcome", NK_CODE},        {"resolution", NK_CODE},        {"deadline", NK_DATE},
    {"visit_date", NK_DATE},     {"days_waiting", NK_NUMBER},    {"reminder_number", NK_NUMBER},
    {"visit_number", NK_NUMBER},
    {"cause", NK_CODE},          {"action", NK_CODE},            {"basis", NK_CODE},
    {"customer_pays", NK_CODE},  {"waiting_parts", NK_CODE},     {"requested_on", NK_DATE},
    {"days", NK_NUMBER},
    {"valid_until", NK_DATE},    {"due_on", NK_DATE},            {"quote_version", NK_NUMBER},
};

/* Value codes as the customer reads them: a code never reaches a customer. */
typedef struct notify_label {
    const char *field, *code, *fr, *en;
} notify_label;
static const notify_label notify_labels[] = {
    {"outcome", "repaired", "réparé", "repaired"},
    {"outcome", "exchanged", "échangé", "exchanged"},
    {"outcome", "unrepaired", "non réparé", "not repaired"},
    {"outcome", "no_fault", "aucune panne constatée", "no fault found"},
    {"resolution", "repair", "réparation de votre appareil", "repair of your appliance"},
    {"resolution", "goodwill_credit", "geste commercial (avoir)", "goodwill credit"},
    {"resolution", "refund", "remboursement", "refund"},
    {"resolution", "rejected", "réclamation non retenue", "complaint not upheld"},
    {"cause", "manufacturing", "défaut de fabrication", "manufacturing defect"},
    {"cause", "wear", "usure normale", "normal wear"},
    {"cause", "misuse", "mauvaise utilisation", "misuse"},
    {"cause", "accident", "accident", "accident"},
    {"cause", "external", "cause extérieure (surtension, chute, eau)", "external cause (surge, fall, water)"},
    {"cause", "no_fault", "aucune panne constatée", "no fault found"},
    {"action", "repair", "réparation", "repair"},
    {"action", "replace_parts", "remplacement de pièces", "replacement of parts"},
    {"action", "exchange", "échange de l'appareil", "exchange of the appliance"},
    {"action", "none", "aucune intervention nécessaire", "no work needed"},
    {"basis", "legal_conformity", "garantie légale de conformité", "legal guarantee of conformity"},
    {"basis", "commercial_warranty", "garantie commerciale du fabricant", "manufacturer's warranty"},
    {"basis", "extended_warranty", "extension de garantie", "extended warranty"},
    {"basis", "maintenance_contract", "contrat d'entretien", "maintenance contract"},
    {"basis", "goodwill", "geste commercial", "goodwill gesture"},
    {"basis", "none", "hors garantie", "not covered"},
    {"customer_pays", "0", "Cette intervention ne vous sera pas facturée.", "You will not be charged for this work."},
    {"customer_pays", "1", "Un devis détaillé vous sera soumis : rien ne sera facturé sans votre accord.",
     "You will receive a detailed quote: nothing is charged without your agreement."},
    {"waiting_parts", "0", "", ""},
    {"waiting_parts", "1", "Une pièce est en commande : nous vous préviendrons dès son arrivée.",
     "A part is on order: we will tell you as soon as it arrives."},
};

static const char *const notify_months_fr[12] = {"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
                                                 "août", "septembre", "octobre", "novembre", "décembre"};
static const char *const notify_months_en[12] = {"January", "February", "March", "April", "May", "June", "July",
                                                 "August", "September", "October", "November", "December"};

/* The e-mail sender of this process (one thread), or NULL when e-mails are only recorded. */
static mailer *notify_mailer;
/* The SMS sender of this process (one thread, SMPP or HTTP gateway), or NULL when SMS are only recorded. */
static smsc *notify_smsc;
static smsgw *notify_smsgw;

int notify_init(service *svc) {
    for (size_t e = 0; e < NOTIFY_NEVENTS; e++) {
        size_t n = 0;
        while (notify_events[e].fields[n]) n++;
        if (n > NOTIFY_MAX_FIELDS) {
            err_set("event %s has %zu fields, at most %d", notify_events[e].name, n, NOTIFY_MAX_FIELDS);
            return -1;
        }
    }
    char dir[PATH_MAX];
    settings_resolve_path(service_settings(svc), service_settings(svc)->templates_dir, dir, sizeof(dir));
    template_set *t = template_load(dir, notify_events, NOTIFY_NEVENTS);
    if (!t) return -1;
    service_set_state(svc, t);
    const settings *cfg = service_settings(svc);
    if (mailer_start(cfg, &notify_mailer) != 0 || smsc_start(cfg, &notify_smsc) != 0 ||
        smsgw_start(svc, &notify_smsgw) != 0) {
        mailer_stop(notify_mailer);
        notify_mailer = NULL;
        smsc_stop(notify_smsc);
        notify_smsc = NULL;
        template_free(t);
        service_set_state(svc, NULL);
        return -1;
    }
    return 0;
}

void notify_cleanup(service *svc) {
    mailer_stop(notify_mailer);
    notify_mailer = NULL;
    smsc_stop(notify_smsc);
    notify_smsc = NULL;
    smsgw_stop(notify_smsgw);
    notify_smsgw = NULL;
    template_free(service_state(svc));
}

/* ---- vars: checking and showing -------------------------------------------- */

static enum notify_kind notify_kind_of(const char *field) {
    for (size_t i = 0; i < sizeof(notify_kinds) / sizeof(notify_kinds[0]); i++)
        if (strcmp(notify_kinds[i].field, field) == 0) return notify_kinds[i].kind;
    return NK_TEXT;
}

static const notify_label *notify_label_find(const char *field, const char *code) {
    for (size_t i = 0; i < sizeof(notify_labels) / sizeof(notify_labels[0]); i++)
        if (strcmp(notify_labels[i].field, field) == 0 && strcmp(notify_labels[i].code, code) == 0)
            return &notify_labels[i];
    return NULL;
}

/* Returns the position of a field among an event's own fields (after the common ones), or -1. */
static int notify_var_index(const template_event *ev, const char *name) {
    for (int i = NF_COMMON; ev->fields[i]; i++)
        if (strcmp(ev->fields[i], name) == 0) return i;
    return -1;
}

/* Returns the CustomerNotice event with this name, or -1 (ticket_received comes from billing only). */
static int notify_notice_event(const char *name) {
    for (size_t e = 0; e < NOTIFY_NEVENTS; e++)
        if (e != NOTIFY_RECEIVED && strcmp(notify_events[e].name, name) == 0) return (int)e;
    return -1;
}

static int notify_is_number(const char *s) {
    size_t n = strspn(s, "0123456789");
    return n > 0 && n <= 6 && s[n] == '\0';
}

/* Checks one var's value; 0, or -1 with reason. Empty is fine: a missing var renders as empty. */
static int notify_check_value(const char *field, const char *value, char *reason, size_t reason_len) {
    const char *why = NULL;
    enum notify_kind kind = notify_kind_of(field);
    if (strlen(value) > NOTIFY_VAR_MAX_BYTES)
        why = "is longer than 1024 bytes";
    else if (!value[0])
        return 0;
    else if (kind == NK_CODE && !notify_label_find(field, value))
        why = "is not a known code";
    else if (kind == NK_DATE && clock_date_valid(value) != 0)
        why = "is not a date YYYY-MM-DD";
    else if (kind == NK_NUMBER && !notify_is_number(value))
        why = "is not a whole number";
    /* Codes, dates and numbers are not personal data and may be logged; free text may be. */
    if (why) snprintf(reason, reason_len, "var %s=\"%.60s\" %s", field, kind == NK_TEXT ? "..." : value, why);
    return why ? -1 : 0;
}

/* Checks a notice's vars: each declared by its event, given once, with a value the templates can show. */
static int notify_check_vars(const template_event *ev, const Sav__CustomerNotice *n, char *reason,
                             size_t reason_len) {
    for (size_t i = 0; i < n->n_vars; i++) {
        const char *name = n->vars[i]->name;
        if (notify_var_index(ev, name) < 0) {
            snprintf(reason, reason_len, "event %s does not take var \"%.60s\"", ev->name, name);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(n->vars[j]->name, name) == 0) {
                snprintf(reason, reason_len, "var %s given twice", name);
                return -1;
            }
        if (notify_check_value(name, n->vars[i]->value, reason, reason_len) != 0) return -1;
    }
    return 0;
}

/* Writes a checked YYYY-MM-DD date as people write it: "1er décembre 2026", "1 December 2026". */
static void notify_format_date(const char *date, const char *lang, char *out, size_t len) {
    int y = 0, m = 0, d = 0;
    if (sscanf(date, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12) {
        snprintf(out, len, "%s", date);
    } else if (strcmp(lang, "en") == 0) {
        snprintf(out, len, "%d %s %d", d, notify_months_en[m - 1], y);
    } else {
        snprintf(out, len, "%d%s %s %d", d, d == 1 ? "er" : "", notify_months_fr[m - 1], y);
    }
}

/* Returns a checked var's value as the customer reads it in lang; buf holds it when it had to be made. */
static const char *notify_show(const char *field, const char *value, const char *lang, char *buf, size_t len) {
    enum notify_kind kind = notify_kind_of(field);
    if (!value[0]) return value;
    if (kind == NK_CODE) {
        const notify_label *l = notify_label_find(field, value);
        return l ? (strcmp(lang, "en") == 0 ? l->en : l->fr) : value;
    }
    if (kind == NK_DATE) {
        notify_format_date(value, lang, buf, len);
        return buf;
    }
    return value;
}

/* ---- values, rendering, recording ------------------------------------------ */

/* The values of one event's fields, in the customer's language. */
typedef struct notify_values {
    const char *v[NOTIFY_MAX_FIELDS];               /* parallel to the event's fields; NULL renders as "" */
    char text[NOTIFY_MAX_FIELDS][NOTIFY_VALUE_LEN]; /* values made here (dates, short coverage) */
} notify_values;

/* Puts an event's own values (after the common ones) into nv, in lang. */
typedef void (*notify_fill_fn)(const template_event *ev, const void *arg, const char *lang, notify_values *nv);

static void notify_fill_notice(const template_event *ev, const void *arg, const char *lang, notify_values *nv) {
    const Sav__CustomerNotice *n = arg;
    for (size_t i = 0; i < n->n_vars; i++) {
        int f = notify_var_index(ev, n->vars[i]->name);
        if (f >= 0) nv->v[f] = notify_show(n->vars[i]->name, n->vars[i]->value, lang, nv->text[f], NOTIFY_VALUE_LEN);
    }
}

/* The coverage in a few words, for an SMS: the full reason is for the e-mail. */
static void notify_coverage_short(const Sav__CoverageEstimated *cov, const char *lang, char *out, size_t len) {
    int en = strcmp(lang, "en") == 0;
    char amount[48];
    const notify_label *basis = notify_label_find("basis", cov->basis);
    if (!cov->customer_pays && basis)
        snprintf(out, len, en ? "Likely free: %s." : "Prise en charge probable : %s, gratuite.", en ? basis->en : basis->fr);
    else if (cov->estimate_cents > 0) {
        money_format(cov->estimate_cents, lang, amount, sizeof(amount));
        snprintf(out, len, en ? "Chargeable, estimate %s incl. VAT; quote to follow." : "Payant, estimation %s TTC ; devis à suivre.", amount);
    } else
        snprintf(out, len, en ? "Chargeable; quote to follow." : "Payant ; devis à suivre.");
}

static void notify_fill_coverage(const template_event *ev, const void *arg, const char *lang, notify_values *nv) {
    const Sav__CoverageEstimated *cov = arg;
    int full = notify_var_index(ev, "coverage"), brief = notify_var_index(ev, "coverage_short");
    nv->v[full] = cov->reason;
    notify_coverage_short(cov, lang, nv->text[brief], NOTIFY_VALUE_LEN);
    nv->v[brief] = nv->text[brief];
}

/* Finds the ticket's centre (NULL for a ticket without one); RETRY when the catalog does not know it. */
static Sav__Ack__Status notify_centre(service *svc, const contact *c, const catalog_centre **out, char *reason,
                                      size_t reason_len) {
    *out = c->centre[0] ? catalog_centre_find(service_catalog(svc), c->centre) : NULL;
    if (c->centre[0] && !*out) {
        /* Intake knows a centre we do not: our catalog is older. A restart with the new one fixes it. */
        snprintf(reason, reason_len, "centre %s is not in notification's catalog", c->centre);
        return SAV__ACK__STATUS__RETRY;
    }
    return SAV__ACK__STATUS__ACK;
}

static void notify_fill_common(const contact *c, const catalog_centre *centre, notify_values *nv) {
    nv->v[NF_NAME] = c->name;
    nv->v[NF_TICKET] = c->ticket_id;
    nv->v[NF_MODEL] = c->model;
    nv->v[NF_SERIAL] = c->serial;
    nv->v[NF_CENTRE_NAME] = centre ? centre->name : "";
    nv->v[NF_CENTRE_ADDRESS] = centre ? centre->address : "";
    nv->v[NF_OPENING_HOURS] = centre ? centre->opening_hours : "";
    nv->v[NF_INVOICE] = c->invoice_id ? c->invoice_id : "";
}

/* One rendered notification. */
typedef struct notify_message {
    char id[STORE_KEY_LEN];
    contact_route route;
    char *subject; /* malloc'd; NULL but for e-mails */
    char *body;    /* malloc'd */
} notify_message;

/* The notifications of one event for one ticket, recorded together. */
typedef struct notify_batch {
    const char *event;
    char version[16];
    const char *lang;
    notify_message msgs[CONTACT_MAX_ROUTES];
    int count;
} notify_batch;

static void notify_batch_free(notify_batch *b) {
    for (int i = 0; i < CONTACT_MAX_ROUTES; i++) free(b->msgs[i].subject), free(b->msgs[i].body);
}

/* Renders the batch's event once per route; 0 or -1 with err. */
static int notify_render(service *svc, const contact *c, const notify_values *nv, notify_batch *b) {
    contact_route routes[CONTACT_MAX_ROUTES];
    int n = contact_routes(c, routes);
    /* With an SMTP server or an SMS transport configured, messages are queued for the sender instead of only recorded. */
    for (int i = 0; i < n; i++)
        if ((notify_mailer && strcmp(routes[i].channel, "email") == 0) || ((notify_smsc || notify_smsgw) && strcmp(routes[i].channel, "sms") == 0))
            routes[i].status = "queued";
    for (b->count = 0; b->count < n; b->count++) {
        notify_message *m = &b->msgs[b->count];
        m->route = routes[b->count];
        snprintf(m->id, sizeof(m->id), "%s:%s:%s:%s", c->ticket_id, b->event, m->route.channel, b->version);
        if (template_render(service_state(svc), b->event, m->route.template_channel, b->lang, nv->v, &m->subject,
                            &m->body) != 0)
            return -1;
    }
    return 0;
}

/* Returns 1 if the event's SMS may go in quiet hours (listed in notification.sms_urgent_events). */
static int notify_urgent(const settings *cfg, const char *event) {
    size_t n = strlen(event);
    for (const char *p = cfg->sms_urgent_events; (p = strstr(p, event)) != NULL; p += n)
        if ((p == cfg->sms_urgent_events || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
    return 0;
}

static Sav__Ack__Status notify_record(service *svc, const Sav__Envelope *ev, const notify_batch *b, char *reason,
                                      size_t reason_len) {
    store *st = service_store(svc);
    char seen[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    service_seen_key(svc, ev, seen);
    store_shard_prefix(st, store_ticket_shard(st, ev->ticket_id), prefix);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "notification_record"), store_args_add(&a, "1");
    store_args_add(&a, seen), store_args_add(&a, prefix), store_args_add(&a, ev->ticket_id);
    store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_addf(&a, "%d", service_settings(svc)->dedup_ttl_days * 86400);
    store_args_add(&a, b->event);
    store_args_addf(&a, "%d", b->count);
    for (int i = 0; i < b->count; i++) {
        const notify_message *m = &b->msgs[i];
        store_args_add(&a, m->id), store_args_add(&a, m->route.channel), store_args_add(&a, m->route.status);
        store_args_add(&a, m->route.recipient), store_args_add(&a, m->subject ? m->subject : "");
        store_args_add(&a, m->body), store_args_add(&a, b->lang), store_args_add(&a, b->version);
        /* What an SMS will cost on the air: its coding and number of parts. */
        gsm_message sms;
        if (strcmp(m->route.template_channel, "sms") == 0 && gsm_encode(m->body, strlen(m->body), 0, &sms) == 0) {
            store_args_add(&a, sms.coding == GSM_CODING_GSM7 ? "gsm7" : "ucs2");
            store_args_addf(&a, "%d", sms.nparts);
        } else {
            store_args_add(&a, ""), store_args_add(&a, "");
        }
        store_args_add(&a, notify_urgent(service_settings(svc), b->event) ? "1" : "0");
    }
    return service_ack_after(svc, ev, &a, SVC_COUNT, reason, reason_len);
}

/* Reads the ticket's contact, renders event `e` (values from fill) on every route and records it once. */
static Sav__Ack__Status notify_deliver(service *svc, const Sav__Envelope *ev, size_t e, unsigned version,
                                       notify_fill_fn fill, const void *arg, char *reason, size_t reason_len) {
    contact c;
    const catalog_centre *centre = NULL;
    notify_batch b = {.event = notify_events[e].name};
    snprintf(b.version, sizeof(b.version), "%u", version);
    Sav__Ack__Status status = contact_read(svc, ev->ticket_id, &c, reason, reason_len);
    if (status == SAV__ACK__STATUS__ACK) status = notify_centre(svc, &c, &centre, reason, reason_len);
    if (status == SAV__ACK__STATUS__ACK) {
        notify_values nv = {0};
        b.lang = c.lang;
        notify_fill_common(&c, centre, &nv);
        fill(&notify_events[e], arg, c.lang, &nv);
        if (notify_render(svc, &c, &nv, &b) != 0) {
            snprintf(reason, reason_len, "%s", err_get());
            status = SAV__ACK__STATUS__REJECT;
        } else {
            status = notify_record(svc, ev, &b, reason, reason_len);
        }
    }
    notify_batch_free(&b);
    contact_free(&c);
    return status;
}

Sav__Ack__Status notify_on_coverage_estimated(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__CoverageEstimated *cov = (Sav__CoverageEstimated *)envelope_body(ev, &sav__coverage_estimated__descriptor);
    if (!cov || !ev->ticket_id) {
        snprintf(reason, reason_len, "%s", cov ? "coverage.estimated without a ticket id" : err_get());
        if (cov) sav__coverage_estimated__free_unpacked(cov, NULL);
        return SAV__ACK__STATUS__REJECT;
    }
    Sav__Ack__Status status =
        notify_deliver(svc, ev, NOTIFY_RECEIVED, 1, notify_fill_coverage, cov, reason, reason_len);
    sav__coverage_estimated__free_unpacked(cov, NULL);
    return status;
}

Sav__Ack__Status notify_on_customer_notice(service *svc, const Sav__Envelope *ev, char *reason, size_t reason_len) {
    Sav__CustomerNotice *n = (Sav__CustomerNotice *)envelope_body(ev, &sav__customer_notice__descriptor);
    Sav__Ack__Status status = SAV__ACK__STATUS__REJECT;
    int e = n ? notify_notice_event(n->event) : -1;
    if (!n)
        snprintf(reason, reason_len, "%s", err_get());
    else if (!ev->ticket_id)
        snprintf(reason, reason_len, "customer notice %s without a ticket id", n->event);
    else if (e < 0)
        snprintf(reason, reason_len, "unknown notice event \"%.60s\"", n->event);
    else if (notify_check_vars(&notify_events[e], n, reason, reason_len) == 0)
        status = notify_deliver(svc, ev, (size_t)e, n->version, notify_fill_notice, n, reason, reason_len);
    /* A notice that can never be sent is a bug in its sender: make it impossible to miss. */
    if (status == SAV__ACK__STATUS__REJECT)
        log_error(ev->ticket_id, ev->message_id, "customer notice rejected: %s", reason);
    if (n) sav__customer_notice__free_unpacked(n, NULL);
    return status;
}
