/* coverage: who is likely to pay for a reported defect, decided from the
 * product's dates and the catalog before any technician has looked at it
 * (the "first coverage estimate" of a ticket). Pure: no I/O, no clock.
 * The legal order of french-law.md applies: legal guarantee of conformity
 * for consumers (C1, C2), then the commercial warranty (C6), then billable.
 * Dates are Europe/Paris calendar dates (YYYY-MM-DD); a guarantee covers
 * up to and including its "until" day. */
#ifndef SAV_COVERAGE_H
#define SAV_COVERAGE_H

#include <stdint.h>

#include "clock.h"

typedef struct coverage_input {
    const char *kind;              /* repair, installation, commissioning, preventive_maintenance, assistance */
    int business;                  /* professional buyer: no legal guarantee of conformity */
    int second_hand;               /* presumption 12 months instead of 24 (C2) */
    const char *delivered_on;      /* NULL or "" when unknown */
    const char *requested_on;
    int commercial_warranty_months;
    int64_t parts_cents;           /* parts of the pre-diagnosis, excluding VAT */
    int labour_minutes;
    int64_t labour_rate_cents;     /* per hour, excluding VAT */
    int vat_basis_points;
    const char *lang;              /* language of the reason: fr or en */
} coverage_input;

typedef struct coverage_estimate {
    char basis[32];                /* legal_conformity, commercial_warranty or none */
    int customer_pays;
    char burden_of_proof[16];      /* seller, consumer, or "" when no legal guarantee applies */
    char legal_until[CLOCK_DATE_LEN];
    char commercial_until[CLOCK_DATE_LEN];
    int64_t estimate_cents;        /* including VAT; 0 when free */
    char reason[512];              /* one sentence for the customer, citing the rule */
} coverage_estimate;

/* Computes the estimate; 0, or -1 with err when a date is invalid. */
int coverage_estimate_compute(const coverage_input *in, coverage_estimate *out);

#endif
