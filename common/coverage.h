/* coverage: who pays for a reported defect, under French law (docs:
 * french-law.md C1-C9). Pure: no I/O, no clock; every input is given.
 *
 * Decision order: exclusions (C8: misuse, accident, external cause; wear
 * unless a contract covers it) -> legal guarantee of conformity for consumers
 * (C1 two years from delivery, C2 presumption 24/12 months, C3 +6 months per
 * earlier repair under it, C4 a new two years after an exchange that replaced
 * a product whose owner asked for repair, C9 free whatever the commercial
 * warranty says) -> commercial warranty (C6, extended by every immobilisation
 * of 7 days or more under it) -> extended warranty -> maintenance contract ->
 * billable, where a consumer still has the hidden-defects action (C7).
 * Dates are Europe/Paris calendar dates YYYY-MM-DD; a guarantee covers up to
 * and including its "until" day. */
#ifndef SAV_COVERAGE_H
#define SAV_COVERAGE_H

#include <stdint.h>

#include "clock.h"

#define COVERAGE_MAX_CONTRACTS 8
#define COVERAGE_MAX_HISTORY 32

/* A contract attached to the product. */
typedef struct coverage_contract {
    const char *type;  /* extended_warranty or maintenance */
    const char *start;
    const char *end;
    const char *covers; /* comma list: parts, labour, travel, wear, accident */
} coverage_contract;

/* An earlier ticket of the same unit. */
typedef struct coverage_past {
    const char *basis;       /* the coverage it got */
    const char *outcome;     /* repaired, exchanged, ... */
    int immobilisation_days; /* request (or hand-over) to ready */
} coverage_past;

typedef struct coverage_input {
    const char *kind;               /* repair, installation, ... */
    int business;                   /* professional buyer: no legal guarantee (C1 is for consumers) */
    int second_hand;
    const char *delivered_on;       /* NULL or "" when unknown */
    int replacement_after_repair_request; /* this unit replaced one whose owner asked for repair (C4) */
    const char *requested_on;
    int commercial_warranty_months;
    const char *cause;              /* manufacturing, wear, misuse, accident, external, no_fault; "" = not diagnosed yet */
    const coverage_contract *contracts;
    int ncontracts;
    const coverage_past *history;
    int nhistory;
    int64_t parts_cents;            /* parts excluding VAT, for the price of a billable repair */
    int labour_minutes;
    int64_t labour_rate_cents;
    int64_t travel_cents;           /* on-site work: the centre's travel fee, excluding VAT */
    int vat_basis_points;
    const char *lang;               /* fr or en: the language of the reason */
} coverage_input;

typedef struct coverage_decision {
    char basis[32];                 /* legal_conformity, commercial_warranty, extended_warranty,
                                       maintenance_contract, goodwill, none */
    int customer_pays;
    char burden_of_proof[16];       /* seller, consumer, or "" when no legal guarantee applies */
    char legal_until[CLOCK_DATE_LEN];      /* "" when not applicable (business, unknown delivery) */
    char commercial_until[CLOCK_DATE_LEN];
    char extended_until[CLOCK_DATE_LEN];
    char rule[16];                  /* the rule applied: C1, C6, C8, ... */
    int64_t estimate_cents;         /* including VAT when the customer pays; 0 when free */
    char reason[640];               /* one sentence for the customer, citing the rule */
} coverage_decision;

/* Decides coverage; 0, or -1 with err when an input is invalid (bad date, request before delivery). */
int coverage_decide(const coverage_input *in, coverage_decision *out);

#endif
