/* money: amounts are integer cents, always. VAT is computed per line in
 * basis points and rounded half away from zero to the cent. */
#ifndef SAV_MONEY_H
#define SAV_MONEY_H

#include <stddef.h>
#include <stdint.h>

/* Returns amount * basis_points / 10000, rounded half away from zero (2000 bp = 20 %). */
int64_t money_apply_rate(int64_t amount_cents, int basis_points);

/* Returns the cost of `minutes` of labour at `rate_cents` per hour, rounded half up to the cent. */
int64_t money_labour(int minutes, int64_t rate_cents_per_hour);

/* Formats cents for a customer: "1 234,56 €" (fr) or "€1,234.56" (en). */
void money_format(int64_t cents, const char *lang, char *out, size_t len);

#endif
