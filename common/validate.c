#include "validate.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int validate_utf8(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            err_set("invalid UTF-8 byte 0x%02x at offset %zu", *p, (size_t)(p - (const unsigned char *)s));
            return -1;
        }
        if ((size_t)(end - p) <= n) {
            err_set("truncated UTF-8 sequence at offset %zu", (size_t)(p - (const unsigned char *)s));
            return -1;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                err_set("invalid UTF-8 continuation at offset %zu", (size_t)(p - (const unsigned char *)s) + i);
                return -1;
            }
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            err_set("invalid UTF-8 code point U+%04X at offset %zu", c, (size_t)(p - (const unsigned char *)s));
            return -1;
        }
        p += n + 1;
    }
    return 0;
}

int validate_text(const char *field, const char *s, size_t max_bytes, int multiline) {
    size_t len = s ? strlen(s) : 0;
    if (len == 0) {
        err_set("%s is empty", field);
        return -1;
    }
    if (len > max_bytes) {
        err_set("%s is too long (%zu bytes, at most %zu)", field, len, max_bytes);
        return -1;
    }
    if (validate_utf8(s, len) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("%s is not valid UTF-8: %s", field, why);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\t'))) || c == 0x7F) {
            err_set("%s contains a control character (0x%02x) at offset %zu", field, c, i);
            return -1;
        }
    }
    return 0;
}

/* Keeps the digits of a phone number, refusing anything but digits, spaces, dots, dashes and brackets. */
static int validate_phone_digits(const char *in, char *digits, size_t cap, int *plus) {
    size_t n = 0;
    *plus = 0;
    for (const char *p = in; *p; p++) {
        if (*p == '+' && p == in) {
            *plus = 1;
        } else if (isdigit((unsigned char)*p)) {
            if (n + 1 >= cap) {
                err_set("phone number \"%s\" has too many digits", in);
                return -1;
            }
            digits[n++] = *p;
        } else if (!strchr(" .-()", *p)) {
            err_set("phone number contains '%c': only digits, spaces, dots, dashes, brackets and a leading + are allowed", *p);
            return -1;
        }
    }
    digits[n] = '\0';
    return 0;
}

int validate_phone(const char *in, char *out, size_t outlen) {
    char digits[32];
    int plus;
    if (!in || !*in) {
        err_set("phone number is empty");
        return -1;
    }
    if (validate_phone_digits(in, digits, sizeof(digits), &plus) != 0) return -1;
    const char *intl;
    if (plus) {
        intl = digits;
    } else if (strncmp(digits, "00", 2) == 0) {
        intl = digits + 2;
    } else if (digits[0] == '0' && strlen(digits) == 10) {
        /* French national format: 0 + 9 digits -> +33 + 9 digits. */
        snprintf(out, outlen, "+33%s", digits + 1);
        return 0;
    } else {
        err_set("phone number \"%s\" is neither French (10 digits starting with 0) nor international (+ or 00)", in);
        return -1;
    }
    size_t n = strlen(intl);
    if (intl[0] == '0' || n < 8 || n > 15) {
        err_set("phone number \"%s\" is not a valid international number (country code, then 8 to 15 digits in all)", in);
        return -1;
    }
    if (strncmp(intl, "33", 2) == 0) {
        /* +33 numbers: 9 digits after the country code; "+33 0 6..." is a common mistake, accept it. */
        const char *national = intl + 2;
        if (national[0] == '0') national++;
        if (strlen(national) != 9 || national[0] == '0') {
            err_set("French number \"%s\" must have 9 digits after +33", in);
            return -1;
        }
        snprintf(out, outlen, "+33%s", national);
        return 0;
    }
    snprintf(out, outlen, "+%s", intl);
    return 0;
}

int validate_email(const char *s) {
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 254) {
        err_set("e-mail address must have 1 to 254 characters");
        return -1;
    }
    const char *at = strchr(s, '@');
    if (!at || strchr(at + 1, '@') || at == s || at - s > 64) {
        err_set("e-mail address \"%s\" must have exactly one @ with a local part of 1 to 64 characters", s);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7F || strchr("<>()[]\\,;:\"", c)) {
            err_set("e-mail address contains a forbidden character at offset %zu", (size_t)(p - s));
            return -1;
        }
    }
    const char *domain = at + 1, *dot = strrchr(domain, '.');
    if (!dot || domain[0] == '.' || dot[1] == '\0' || strstr(domain, "..") || domain[0] == '-' || s[len - 1] == '.') {
        err_set("e-mail address \"%s\" has no valid domain", s);
        return -1;
    }
    return 0;
}

int validate_choice(const char *field, const char *s, const char *const *choices) {
    for (const char *const *c = choices; *c; c++)
        if (s && strcmp(s, *c) == 0) return 0;
    char list[256] = "";
    size_t pos = 0;
    for (const char *const *c = choices; *c && pos < sizeof(list); c++)
        pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s%s", pos ? ", " : "", *c);
    err_set("%s must be one of: %s (got \"%s\")", field, list, s ? s : "");
    return -1;
}

int validate_ticket_id(const char *s) {
    if (!s || strlen(s) != 13 || strncmp(s, "T-", 2) != 0 || s[6] != '-') goto bad;
    for (int i = 2; i < 13; i++)
        if (i != 6 && !isdigit((unsigned char)s[i])) goto bad;
    return 0;
bad:
    err_set("\"%s\" is not a ticket id (expected T-YYYY-NNNNNN)", s ? s : "");
    return -1;
}

int validate_token(const char *field, const char *s) {
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 64) {
        err_set("%s must have 1 to 64 characters", field);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && !strchr("._:-", c)) {
            err_set("%s may contain only letters, digits and . _ : - (got \"%s\")", field, s);
            return -1;
        }
    }
    return 0;
}

int validate_company_id(const char *s) {
    size_t len = s ? strlen(s) : 0;
    if (len != 9 && len != 14) goto bad;
    int sum = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i])) goto bad;
        int digit = s[i] - '0';
        /* Luhn: double every second digit from the right. */
        if ((len - i) % 2 == 0) digit = digit * 2 > 9 ? digit * 2 - 9 : digit * 2;
        sum += digit;
    }
    if (sum % 10 == 0) return 0;
    err_set("company id %s fails its check digit (SIREN/SIRET Luhn key)", s);
    return -1;
bad:
    err_set("company id \"%s\" must be a SIREN (9 digits) or SIRET (14 digits)", s ? s : "");
    return -1;
}
