/* pricing: totals of a quote or an invoice, in integer cents.
 * Rounding rule: each line's amount excluding VAT is exact in cents (labour
 * is rounded half up to the cent once, on the line); VAT is computed per
 * rate on the sum of that rate's lines and rounded half away from zero to
 * the cent, once per rate; the total including VAT is the sum of the totals
 * excluding VAT and the VAT per rate. So the printed per-rate VAT always adds
 * up to the printed total. Pure: no I/O. */
#ifndef SAV_PRICING_H
#define SAV_PRICING_H

#include <stddef.h>
#include <stdint.h>

#define PRICING_MAX_LINES 32
#define PRICING_MAX_RATES 4

typedef struct pricing_line {
    char kind[16];        /* part, labour, travel, diagnostic, other */
    char ref[65];         /* part reference, or "" */
    char label[340];      /* what the customer reads */
    int64_t quantity;     /* units, or minutes for labour */
    int64_t unit_cents;   /* per unit, or per hour for labour, excluding VAT */
    int64_t amount_cents; /* line total excluding VAT (computed) */
    int vat_bp;           /* VAT rate in basis points, 2000 = 20 % */
} pricing_line;

typedef struct pricing_rate {
    int vat_bp;
    int64_t base_cents; /* total excluding VAT at this rate */
    int64_t vat_cents;
} pricing_rate;

typedef struct pricing_totals {
    int64_t net_cents;   /* total excluding VAT */
    int64_t vat_cents;   /* sum of the per-rate VAT */
    int64_t gross_cents; /* total including VAT */
    pricing_rate rates[PRICING_MAX_RATES];
    int nrates;
} pricing_totals;

/* Computes every line's amount and the totals; 0, or -1 with err (too many rates, negative or overflowing amounts). */
int pricing_compute(pricing_line *lines, int nlines, pricing_totals *out);

/* The invoice billing issues when a ticket becomes ready: "repair" for the work of an accepted quote (outcome
 * repaired or exchanged), "diagnostic" for a refused quote when the centre charges a diagnostic fee, NULL when
 * nothing is billed (the coverage decided the customer does not pay, or it is not decided, or no quote). Billing
 * issues it; intake keeps the product until it is issued (and paid). */
const char *pricing_invoice_kind(int customer_pays, const char *quote_status, const char *outcome,
                                 int64_t diagnostic_fee_cents);

#endif
