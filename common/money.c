#include "money.h"

#include <stdio.h>
#include <string.h>

int64_t money_apply_rate(int64_t amount_cents, int basis_points) {
    int64_t product = amount_cents * basis_points;
    int64_t q = product / 10000, r = product % 10000;
    if (r >= 5000) q++;
    else if (r <= -5000) q--;
    return q;
}

int64_t money_labour(int minutes, int64_t rate_cents_per_hour) {
    int64_t product = (int64_t)minutes * rate_cents_per_hour;
    return (product + 30) / 60;
}

/* Writes the integer part with a thousands separator. */
static size_t money_group(int64_t units, const char *sep, char *out, size_t len) {
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", (long long)units);
    size_t pos = 0;
    for (int i = 0; i < n && pos + 4 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0) pos += (size_t)snprintf(out + pos, len - pos, "%s", sep);
        out[pos++] = digits[i];
    }
    out[pos] = '\0';
    return pos;
}

void money_format(int64_t cents, const char *lang, char *out, size_t len) {
    const char *sign = cents < 0 ? "-" : "";
    int64_t abs = cents < 0 ? -cents : cents;
    char units[48];
    if (strcmp(lang, "en") == 0) {
        money_group(abs / 100, ",", units, sizeof(units));
        snprintf(out, len, "%s€%s.%02lld", sign, units, (long long)(abs % 100));
    } else {
        /* French typography: narrow no-break space between thousands and before the euro sign. */
        money_group(abs / 100, "\u202f", units, sizeof(units));
        snprintf(out, len, "%s%s,%02lld\u00a0€", sign, units, (long long)(abs % 100));
    }
}
