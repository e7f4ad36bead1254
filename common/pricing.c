#include "pricing.h"
#include "err.h"
#include "money.h"

#include <string.h>

/* Above this, sums of cents could overflow the products computed for VAT: refuse. */
#define PRICING_MAX_CENTS 100000000000LL /* one billion euros */

static int pricing_line_amount(pricing_line *l) {
    if (l->quantity < 0 || l->unit_cents < 0 || l->quantity > 1000000 || l->unit_cents > PRICING_MAX_CENTS ||
        l->vat_bp < 0 || l->vat_bp > 10000) {
        err_set("line \"%s\": quantity, price or VAT rate out of range", l->label);
        return -1;
    }
    l->amount_cents = strcmp(l->kind, "labour") == 0 ? money_labour((int)l->quantity, l->unit_cents)
                                                      : l->quantity * l->unit_cents;
    if (l->amount_cents > PRICING_MAX_CENTS) {
        err_set("line \"%s\": amount too large", l->label);
        return -1;
    }
    return 0;
}

int pricing_compute(pricing_line *lines, int nlines, pricing_totals *out) {
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < nlines; i++) {
        if (pricing_line_amount(&lines[i]) != 0) return -1;
        int r = 0;
        while (r < out->nrates && out->rates[r].vat_bp != lines[i].vat_bp) r++;
        if (r == out->nrates) {
            if (r == PRICING_MAX_RATES) {
                err_set("at most %d VAT rates per document", PRICING_MAX_RATES);
                return -1;
            }
            out->rates[out->nrates++].vat_bp = lines[i].vat_bp;
        }
        out->rates[r].base_cents += lines[i].amount_cents;
        out->net_cents += lines[i].amount_cents;
    }
    if (out->net_cents > PRICING_MAX_CENTS) {
        err_set("total too large");
        return -1;
    }
    for (int r = 0; r < out->nrates; r++) {
        out->rates[r].vat_cents = money_apply_rate(out->rates[r].base_cents, out->rates[r].vat_bp);
        out->vat_cents += out->rates[r].vat_cents;
    }
    out->gross_cents = out->net_cents + out->vat_cents;
    return 0;
}

const char *pricing_invoice_kind(int customer_pays, const char *quote_status, const char *outcome,
                                 int64_t diagnostic_fee_cents) {
    int done = strcmp(outcome, "repaired") == 0 || strcmp(outcome, "exchanged") == 0;
    if (!customer_pays) return NULL;
    if (done && strcmp(quote_status, "accepted") == 0) return "repair";
    if (strcmp(quote_status, "refused") == 0 && diagnostic_fee_cents > 0) return "diagnostic";
    return NULL;
}
