/* invoice export: an invoice as a plain-text document with every legal
 * mention (CGI 242 nonies A; Code de commerce L441-9 and L441-10 for
 * businesses; L111-4 for the parts-availability period). */
#include "invoice.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "money.h"
#include "quote.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer. */
typedef struct export_text {
    char *data;
    size_t len, cap;
} export_text;

static void export_add(export_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void export_add(export_text *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (t->data && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->data, cap);
        if (!grown) return;
        t->data = grown, t->cap = cap;
    }
}

static void export_money(int64_t cents, char *out, size_t len) {
    money_format(cents, "fr", out, len);
}

/* A rate in basis points as French text: 2000 -> "20 %", 550 -> "5,5 %". */
static const char *export_rate(int bp, char *out, size_t len) {
    if (bp % 100 == 0)
        snprintf(out, len, "%d %%", bp / 100);
    else
        snprintf(out, len, "%d,%d %%", bp / 100, (bp % 100) / 10);
    return out;
}

static void export_lines(export_text *t, const json_t *doc) {
    json_t *line;
    size_t i;
    char unit[48], amount[48], pct_line[16];
    export_add(t, "\nDésignation                                            Qté      PU HT        Total HT   TVA\n");
    json_array_foreach(json_object_get(doc, "lines"), i, line) {
        const char *kind = json_string_value(json_object_get(line, "kind"));
        export_money(json_integer_value(json_object_get(line, "unit_cents")), unit, sizeof(unit));
        export_money(json_integer_value(json_object_get(line, "amount_cents")), amount, sizeof(amount));
        if (kind && strcmp(kind, "labour") == 0)
            export_add(t, "%-50s %5lld min  %10s/h %12s  %s\n", json_string_value(json_object_get(line, "label")),
                       (long long)json_integer_value(json_object_get(line, "quantity")), unit, amount,
                       export_rate((int)json_integer_value(json_object_get(line, "vat_bp")), pct_line, sizeof(pct_line)));
        else
            export_add(t, "%-50s %8lld  %12s %12s  %s\n", json_string_value(json_object_get(line, "label")),
                       (long long)json_integer_value(json_object_get(line, "quantity")), unit, amount,
                       export_rate((int)json_integer_value(json_object_get(line, "vat_bp")), pct_line, sizeof(pct_line)));
    }
    json_t *rate;
    char base[48], vat[48], net[48], gross[48];
    export_money(json_integer_value(json_object_get(doc, "net_cents")), net, sizeof(net));
    export_money(json_integer_value(json_object_get(doc, "gross_cents")), gross, sizeof(gross));
    export_add(t, "\nTotal HT : %s\n", net);
    json_array_foreach(json_object_get(doc, "vat"), i, rate) {
        export_money(json_integer_value(json_object_get(rate, "base_cents")), base, sizeof(base));
        export_money(json_integer_value(json_object_get(rate, "vat_cents")), vat, sizeof(vat));
        char pct[16];
        export_add(t, "TVA %s sur %s : %s\n", export_rate((int)json_integer_value(json_object_get(rate, "vat_bp")), pct,
                                                         sizeof(pct)), base, vat);
    }
    export_add(t, "Total TTC : %s\n", gross);
}

static void export_terms(service *svc, export_text *t, const redisReply *inv, int business) {
    const settings *cfg = service_settings(svc);
    char indemnity[48];
    export_money(cfg->recovery_indemnity_cents, indemnity, sizeof(indemnity));
    export_add(t, "\nÉchéance : %s. ", quote_field(inv, "due_on"));
    if (business)
        export_add(t, "Paiement à %d jours. Pas d'escompte pour paiement anticipé. En cas de retard, pénalités au taux "
                      "de refinancement de la BCE majoré de 10 points (%.2f %% l'an), exigibles sans rappel, et "
                      "indemnité forfaitaire pour frais de recouvrement de %s (art. L441-10 et D441-5 du Code de "
                      "commerce).\n", cfg->business_payment_days,
                   (cfg->ecb_rate_bp + cfg->late_penalty_points_bp) / 100.0, indemnity);
    else
        export_add(t, "Payable au retrait de l'appareil. Pas d'escompte pour paiement anticipé. Intérêts au taux légal "
                      "après mise en demeure (art. 1231-6 et 1344 du Code civil).\n");
}

void invoice_export_cmd(service *svc, const Sav__Command *cmd, service_reply *reply) {
    const char *id;
    redisReply *inv = invoice_load_cmd(svc, cmd, reply, &id);
    if (!inv) return;
    const settings *cfg = service_settings(svc);
    json_t *doc = json_loads(quote_field(inv, "document"), 0, NULL);
    int business = strcmp(quote_field(inv, "customer_type"), "business") == 0;
    const catalog_centre *centre = catalog_centre_find(service_catalog(svc), quote_field(inv, "centre"));
    export_text t = {0};
    export_add(&t, "FACTURE %s\n\nVendeur : %s\n%s\nSIRET %s - TVA intracommunautaire %s\n", id, cfg->company_name,
               cfg->company_address, cfg->company_siret, cfg->company_vat);
    if (centre) export_add(&t, "Centre de service : %s, %s\n", centre->name, centre->address);
    export_add(&t, "\nClient : %s (%s, %s)\nDate d'émission : %s\nDossier : %s, appareil n° de série %s\n",
               quote_field(inv, "customer_name"), quote_field(inv, "customer_id"),
               business ? "professionnel" : "particulier", quote_field(inv, "issued_on"), quote_field(inv, "ticket"),
               quote_field(inv, "serial"));
    if (doc) export_lines(&t, doc);
    export_terms(svc, &t, inv, business);
    char paid[48], balance[48], credited[48];
    export_money(atoll(quote_field(inv, "paid_cents")), paid, sizeof(paid));
    export_money(atoll(quote_field(inv, "credited_cents")), credited, sizeof(credited));
    export_money(atoll(quote_field(inv, "balance_cents")), balance, sizeof(balance));
    int64_t owed = atoll(quote_field(inv, "balance_cents"));
    if (owed < 0) money_format(-owed, "fr", balance, sizeof(balance));
    export_add(&t, "Déjà réglé : %s - Avoirs : %s - %s : %s\n", paid, credited, owed < 0 ? "À rembourser" : "Reste dû",
               balance);
    const catalog_model *m = catalog_model_find(service_catalog(svc), quote_field(inv, "model"));
    if (m)
        export_add(&t, "\nPièces détachées du modèle %s disponibles pendant %d ans (art. L111-4 du Code de la "
                       "consommation).\n", m->id, m->parts_availability_years);
    export_add(&t, "Les garanties légales de conformité et des vices cachés s'appliquent.\n");
    json_decref(doc);
    freeReplyObject(inv);
    service_reply_json(reply, json_pack("{s:s,s:s%}", "id", id, "text", t.data ? t.data : "", t.len));
    free(t.data);
}
