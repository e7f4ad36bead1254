#include "coverage.h"
#include "err.h"
#include "money.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define LEGAL_MONTHS 24
#define PRESUMPTION_NEW_MONTHS 24
#define PRESUMPTION_SECOND_HAND_MONTHS 12
#define LEGAL_EXTENSION_MONTHS 6       /* C3, per earlier repair under the legal guarantee */
#define IMMOBILISATION_MIN_DAYS 7      /* C6 */
#define HIDDEN_DEFECT_MAX_YEARS 20     /* C7 */

/* The dates every rule needs, computed once. */
typedef struct coverage_dates {
    char presumption_until[CLOCK_DATE_LEN];
    char hidden_defect_until[CLOCK_DATE_LEN];
    int known; /* delivery date known */
} coverage_dates;

static int coverage_en(const coverage_input *in) {
    return strcmp(in->lang, "en") == 0;
}

static void coverage_say(coverage_decision *out, const coverage_input *in, const char *fr, const char *en, ...)
    __attribute__((format(printf, 3, 5)));

/* Writes the reason in the customer's language; fr and en take the same arguments. */
static void coverage_say(coverage_decision *out, const coverage_input *in, const char *fr, const char *en, ...) {
    va_list ap;
    va_start(ap, en);
    vsnprintf(out->reason, sizeof(out->reason), coverage_en(in) ? en : fr, ap);
    va_end(ap);
}

static int coverage_covers(const coverage_contract *c, const char *what) {
    size_t n = strlen(what);
    for (const char *p = c->covers; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && strncmp(p, what, n) == 0) return 1;
        p = comma ? comma + 1 : p + len;
    }
    return 0;
}

/* The contract of a type in force on the request date that covers this cause, or NULL. */
static const coverage_contract *coverage_contract_for(const coverage_input *in, const char *type) {
    const char *need = strcmp(in->cause, "wear") == 0 ? "wear" : strcmp(in->cause, "accident") == 0 ? "accident" : NULL;
    for (int i = 0; i < in->ncontracts; i++) {
        const coverage_contract *c = &in->contracts[i];
        if (strcmp(c->type, type) != 0 || strcmp(in->requested_on, c->start) < 0 || strcmp(in->requested_on, c->end) > 0)
            continue;
        if (need ? coverage_covers(c, need) : (coverage_covers(c, "parts") || coverage_covers(c, "labour"))) return c;
    }
    return NULL;
}

static int64_t coverage_price(const coverage_input *in) {
    int64_t net = in->parts_cents + money_labour(in->labour_minutes, in->labour_rate_cents) + in->travel_cents;
    return net + money_apply_rate(net, in->vat_basis_points);
}

/* C1, C3, C4: the legal guarantee's end, or "" for businesses and unknown deliveries. */
static int coverage_legal_until(const coverage_input *in, coverage_decision *out) {
    if (in->business || !in->delivered_on || !in->delivered_on[0]) return 0;
    int repairs = 0;
    for (int i = 0; i < in->nhistory; i++)
        if (strcmp(in->history[i].basis, "legal_conformity") == 0 && strcmp(in->history[i].outcome, "repaired") == 0)
            repairs++;
    /* C4: a replacement's delivery date starts a new two years; C3 extends by six months per repair. */
    return clock_date_add_months(in->delivered_on, LEGAL_MONTHS + LEGAL_EXTENSION_MONTHS * repairs, out->legal_until);
}

/* C6: the commercial warranty's end, pushed back by each immobilisation of 7 days or more under it. */
static int coverage_commercial_until(const coverage_input *in, coverage_decision *out) {
    if (!in->delivered_on || !in->delivered_on[0] || in->commercial_warranty_months <= 0) return 0;
    char base[CLOCK_DATE_LEN];
    if (clock_date_add_months(in->delivered_on, in->commercial_warranty_months, base) != 0) return -1;
    int extra = 0;
    for (int i = 0; i < in->nhistory; i++)
        if (strcmp(in->history[i].basis, "commercial_warranty") == 0 &&
            in->history[i].immobilisation_days >= IMMOBILISATION_MIN_DAYS)
            extra += in->history[i].immobilisation_days;
    return clock_date_add_days(base, extra, out->commercial_until);
}

static void coverage_extended_until(const coverage_input *in, coverage_decision *out) {
    for (int i = 0; i < in->ncontracts; i++)
        if (strcmp(in->contracts[i].type, "extended_warranty") == 0 && strcmp(in->contracts[i].end, out->extended_until) > 0)
            snprintf(out->extended_until, sizeof(out->extended_until), "%s", in->contracts[i].end);
}

static int coverage_check(const coverage_input *in, coverage_dates *d, coverage_decision *out) {
    if (clock_date_valid(in->requested_on) != 0) return -1;
    d->known = in->delivered_on && in->delivered_on[0];
    if (d->known) {
        if (clock_date_valid(in->delivered_on) != 0) return -1;
        if (strcmp(in->requested_on, in->delivered_on) < 0) {
            err_set("request date %s is before the delivery date %s", in->requested_on, in->delivered_on);
            return -1;
        }
        int months = in->second_hand && !in->replacement_after_repair_request ? PRESUMPTION_SECOND_HAND_MONTHS
                                                                              : PRESUMPTION_NEW_MONTHS;
        if (clock_date_add_months(in->delivered_on, months, d->presumption_until) != 0 ||
            clock_date_add_months(in->delivered_on, 12 * HIDDEN_DEFECT_MAX_YEARS, d->hidden_defect_until) != 0)
            return -1;
    }
    for (int i = 0; i < in->ncontracts; i++)
        if (clock_date_valid(in->contracts[i].start) != 0 || clock_date_valid(in->contracts[i].end) != 0) return -1;
    if (coverage_legal_until(in, out) != 0 || coverage_commercial_until(in, out) != 0) return -1;
    coverage_extended_until(in, out);
    return 0;
}

static void coverage_set(coverage_decision *out, const char *basis, int pays, const char *rule) {
    snprintf(out->basis, sizeof(out->basis), "%s", basis);
    snprintf(out->rule, sizeof(out->rule), "%s", rule);
    out->customer_pays = pays;
}

static void coverage_billable(const coverage_input *in, const coverage_dates *d, coverage_decision *out,
                              const char *why_fr, const char *why_en, const char *rule) {
    char amount[48];
    coverage_set(out, "none", 1, rule);
    out->estimate_cents = coverage_price(in);
    money_format(out->estimate_cents, in->lang, amount, sizeof(amount));
    int hidden = !in->business && d->known && strcmp(in->cause, "manufacturing") == 0 &&
                 strcmp(in->requested_on, d->hidden_defect_until) <= 0 && out->legal_until[0] &&
                 strcmp(in->requested_on, out->legal_until) > 0;
    coverage_say(out, in,
                 "%s : réparation payante (%s TTC), sur devis accepté au préalable%s.",
                 "%s: the repair is chargeable (%s incl. VAT), on a quote you accept first%s.",
                 coverage_en(in) ? why_en : why_fr, amount,
                 hidden ? (coverage_en(in) ? "; for a hidden defect you may still act against the seller within two "
                                             "years of discovering it (Civil Code 1641 and 1648)"
                                           : " ; pour un vice caché, vous pouvez agir contre le vendeur dans les deux "
                                             "ans de sa découverte (art. 1641 et 1648 du Code civil)")
                        : "");
}

/* C8: causes that are not a lack of conformity; returns 1 if the decision is made. */
static int coverage_exclusion(const coverage_input *in, const coverage_dates *d, coverage_decision *out) {
    const char *c = in->cause;
    if (strcmp(c, "misuse") != 0 && strcmp(c, "accident") != 0 && strcmp(c, "external") != 0) return 0;
    if (strcmp(c, "accident") == 0 && coverage_contract_for(in, "extended_warranty")) return 0;
    coverage_billable(in, d, out, "Dommage dû à une mauvaise utilisation, un accident ou une cause extérieure (surtension, "
                                  "chute, eau), exclu des garanties",
                      "Damage from misuse, an accident or an external cause (surge, fall, water) is excluded from the "
                      "guarantees", "C8");
    return 1;
}

/* C1, C2, C9: the legal guarantee of conformity; returns 1 if it applies. */
static int coverage_legal(const coverage_input *in, const coverage_dates *d, coverage_decision *out) {
    if (!out->legal_until[0] || strcmp(in->requested_on, out->legal_until) > 0) return 0;
    if (strcmp(in->cause, "manufacturing") != 0 && in->cause[0]) return 0;
    int presumed = strcmp(in->requested_on, d->presumption_until) <= 0;
    coverage_set(out, "legal_conformity", 0, in->replacement_after_repair_request ? "C4" : "C1");
    snprintf(out->burden_of_proof, sizeof(out->burden_of_proof), "%s", presumed ? "seller" : "consumer");
    coverage_say(out, in,
                 "Garantie légale de conformité jusqu'au %s (art. L217-3 du Code de la consommation) : réparation "
                 "gratuite, transport et réinstallation compris%s.",
                 "Legal guarantee of conformity until %s (French Consumer Code L217-3): the repair is free, transport "
                 "and reinstallation included%s.",
                 out->legal_until,
                 presumed ? (coverage_en(in) ? "; the defect is presumed to have existed at delivery (L217-7)"
                                             : " ; le défaut est présumé exister dès la livraison (art. L217-7)")
                          : (coverage_en(in) ? "; it is for you to show the defect existed at delivery (L217-7)"
                                             : " ; il vous appartient de montrer que le défaut existait à la livraison "
                                               "(art. L217-7)"));
    return 1;
}

/* C6: the manufacturer's commercial warranty; returns 1 if it applies. */
static int coverage_commercial(const coverage_input *in, coverage_decision *out) {
    if (!out->commercial_until[0] || strcmp(in->requested_on, out->commercial_until) > 0) return 0;
    if (strcmp(in->cause, "manufacturing") != 0 && in->cause[0]) return 0;
    coverage_set(out, "commercial_warranty", 0, "C6");
    coverage_say(out, in,
                 "Garantie commerciale du fabricant jusqu'au %s (art. L217-21 du Code de la consommation) : "
                 "réparation gratuite.",
                 "Manufacturer's commercial warranty until %s (French Consumer Code L217-21): the repair is free.",
                 out->commercial_until);
    return 1;
}

/* Extended warranty and maintenance contracts, as written (C8: wear only if covered). */
static int coverage_contracts(const coverage_input *in, coverage_decision *out) {
    const coverage_contract *c = coverage_contract_for(in, "extended_warranty");
    const char *basis = "extended_warranty";
    if (!c) c = coverage_contract_for(in, "maintenance"), basis = "maintenance_contract";
    if (!c) return 0;
    coverage_set(out, basis, 0, "contract");
    coverage_say(out, in, "%s en vigueur jusqu'au %s : intervention prise en charge selon le contrat (%s).",
                 "%s in force until %s: covered as the contract says (%s).",
                 strcmp(basis, "extended_warranty") == 0 ? (coverage_en(in) ? "Extended warranty" : "Extension de garantie")
                                                         : (coverage_en(in) ? "Maintenance contract" : "Contrat d'entretien"),
                 c->end, c->covers);
    return 1;
}

int coverage_decide(const coverage_input *in, coverage_decision *out) {
    coverage_dates d = {0};
    memset(out, 0, sizeof(*out));
    if (coverage_check(in, &d, out) != 0) return -1;
    if (strcmp(in->kind, "repair") != 0 && strcmp(in->kind, "assistance") != 0) {
        if (coverage_contracts(in, out)) return 0;
        coverage_billable(in, &d, out, "Intervention hors garantie (prestation de service)", "Service visit, not a defect",
                          "service");
        return 0;
    }
    if (strcmp(in->cause, "no_fault") == 0) {
        coverage_set(out, "none", 0, "no_fault");
        coverage_say(out, in, "Aucun défaut constaté : aucune réparation n'est facturée.",
                     "No fault found: no repair is charged.");
        return 0;
    }
    if (coverage_exclusion(in, &d, out) || coverage_legal(in, &d, out) || coverage_commercial(in, out) ||
        coverage_contracts(in, out))
        return 0;
    if (!d.known)
        coverage_billable(in, &d, out, "Date de livraison inconnue, aucune garantie ne peut être vérifiée",
                          "Delivery date unknown, no guarantee can be checked", "none");
    else if (strcmp(in->cause, "wear") == 0)
        coverage_billable(in, &d, out, "L'usure normale n'est couverte par aucune garantie ni aucun contrat de ce produit",
                          "Normal wear is covered by no guarantee or contract of this product", "C8");
    else if (in->business)
        coverage_billable(in, &d, out, "Client professionnel hors garantie commerciale (pas de garantie légale de conformité)",
                          "Business customer outside the commercial warranty (no legal guarantee of conformity)", "C1");
    else
        coverage_billable(in, &d, out, "Garanties légale et commerciale expirées", "Legal and commercial guarantees expired",
                          "none");
    return 0;
}
