#include "coverage.h"
#include "err.h"
#include "money.h"

#include <stdio.h>
#include <string.h>

#define LEGAL_MONTHS 24
#define PRESUMPTION_NEW_MONTHS 24
#define PRESUMPTION_SECOND_HAND_MONTHS 12

static int coverage_is_fr(const coverage_input *in) {
    return strcmp(in->lang, "en") != 0;
}

static int64_t coverage_price(const coverage_input *in) {
    int64_t net = in->parts_cents + money_labour(in->labour_minutes, in->labour_rate_cents);
    return net + money_apply_rate(net, in->vat_basis_points);
}

static void coverage_billable(const coverage_input *in, coverage_estimate *out, const char *why_fr,
                              const char *why_en) {
    char amount[48];
    snprintf(out->basis, sizeof(out->basis), "none");
    out->customer_pays = 1;
    out->estimate_cents = coverage_price(in);
    money_format(out->estimate_cents, in->lang, amount, sizeof(amount));
    if (coverage_is_fr(in))
        snprintf(out->reason, sizeof(out->reason), "%s : réparation payante, estimée à %s TTC, sur devis accepté au préalable.",
                 why_fr, amount);
    else
        snprintf(out->reason, sizeof(out->reason), "%s: the repair is chargeable, estimated at %s incl. VAT, "
                 "on a quote you accept first.", why_en, amount);
}

static int coverage_dates(const coverage_input *in, coverage_estimate *out, char presumption[CLOCK_DATE_LEN]) {
    if (clock_date_valid(in->requested_on) != 0) return -1;
    if (clock_date_add_months(in->delivered_on, LEGAL_MONTHS, out->legal_until) != 0 ||
        clock_date_add_months(in->delivered_on, in->second_hand ? PRESUMPTION_SECOND_HAND_MONTHS : PRESUMPTION_NEW_MONTHS,
                              presumption) != 0 ||
        clock_date_add_months(in->delivered_on, in->commercial_warranty_months, out->commercial_until) != 0)
        return -1;
    return 0;
}

static void coverage_legal(const coverage_input *in, coverage_estimate *out, const char *presumption) {
    snprintf(out->basis, sizeof(out->basis), "legal_conformity");
    int presumed = strcmp(in->requested_on, presumption) <= 0;
    snprintf(out->burden_of_proof, sizeof(out->burden_of_proof), "%s", presumed ? "seller" : "consumer");
    if (coverage_is_fr(in))
        snprintf(out->reason, sizeof(out->reason),
                 "Garantie légale de conformité jusqu'au %s (art. L217-3 du Code de la consommation) : réparation "
                 "gratuite si le diagnostic confirme un défaut%s.",
                 out->legal_until, presumed ? ", présumé exister dès la livraison (art. L217-7)" : "");
    else
        snprintf(out->reason, sizeof(out->reason),
                 "Legal guarantee of conformity until %s (French Consumer Code L217-3): the repair is free if the "
                 "diagnosis confirms a defect%s.",
                 out->legal_until, presumed ? ", presumed to have existed at delivery (L217-7)" : "");
}

static void coverage_commercial(const coverage_input *in, coverage_estimate *out) {
    snprintf(out->basis, sizeof(out->basis), "commercial_warranty");
    if (coverage_is_fr(in))
        snprintf(out->reason, sizeof(out->reason),
                 "Garantie commerciale du fabricant jusqu'au %s (art. L217-21 du Code de la consommation) : réparation "
                 "gratuite si le défaut est couvert.", out->commercial_until);
    else
        snprintf(out->reason, sizeof(out->reason),
                 "Manufacturer's commercial warranty until %s (French Consumer Code L217-21): the repair is free if "
                 "the defect is covered.", out->commercial_until);
}

int coverage_estimate_compute(const coverage_input *in, coverage_estimate *out) {
    memset(out, 0, sizeof(*out));
    if (strcmp(in->kind, "repair") != 0 && strcmp(in->kind, "assistance") != 0) {
        coverage_billable(in, out, "Intervention hors garantie (prestation de service)",
                          "Service visit, not a defect");
        return 0;
    }
    if (!in->delivered_on || !in->delivered_on[0]) {
        if (clock_date_valid(in->requested_on) != 0) return -1;
        coverage_billable(in, out, "Date de livraison inconnue, aucune garantie ne peut être vérifiée",
                          "Delivery date unknown, no guarantee can be checked");
        return 0;
    }
    char presumption[CLOCK_DATE_LEN];
    if (coverage_dates(in, out, presumption) != 0) return -1;
    if (strcmp(in->requested_on, in->delivered_on) < 0) {
        err_set("request date %s is before the delivery date %s", in->requested_on, in->delivered_on);
        return -1;
    }
    if (!in->business && strcmp(in->requested_on, out->legal_until) <= 0) {
        coverage_legal(in, out, presumption);
    } else if (strcmp(in->requested_on, out->commercial_until) <= 0) {
        coverage_commercial(in, out);
    } else if (in->business) {
        coverage_billable(in, out, "Client professionnel hors garantie commerciale (pas de garantie légale de conformité)",
                          "Business customer outside the commercial warranty (no legal guarantee of conformity)");
    } else {
        coverage_billable(in, out, "Garanties légale et commerciale expirées", "Legal and commercial guarantees expired");
    }
    return 0;
}
