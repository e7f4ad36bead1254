/* Phone and e-mail validation, and the other checks of common/validate, on any text. A phone number that is
 * accepted comes out in E.164 (+, a country code not starting with 0, 8 to 15 digits; French numbers +33 and
 * 9 digits), fits the 17 bytes callers give, and normalises to itself. An accepted e-mail address has one @,
 * a local part of 1 to 64 bytes, a dotted domain with no empty label, at most 254 bytes, and nothing that
 * could break out of a mail header or an SMTP command. validate_utf8 agrees with an independent decoder. */
#include "fuzz.h"

#include "validate.h"

#include <ctype.h>

static int is_e164(const char *s) {
    size_t n = strlen(s);
    if (s[0] != '+' || n < 9 || n > 16 || s[1] < '1' || s[1] > '9') return 0;
    for (size_t i = 1; i < n; i++)
        if (!isdigit((unsigned char)s[i])) return 0;
    if (strncmp(s, "+33", 3) == 0) return n == 12 && s[3] != '0';
    return 1;
}

static void check_phone(const char *in) {
    char out[17], again[17];
    memset(out, 0x55, sizeof(out));
    if (validate_phone(in, out, sizeof(out)) != 0) return;
    FUZZ_CHECK(memchr(out, 0, sizeof(out)) != NULL);
    FUZZ_CHECK(is_e164(out));
    FUZZ_CHECK(validate_phone(out, again, sizeof(again)) == 0 && strcmp(out, again) == 0);
    /* The subscriber's digits (the last 9) are the input's last digits: none invented, dropped or moved. */
    char digits[64];
    size_t nd = 0;
    for (const char *p = in; *p && nd < sizeof(digits) - 1; p++)
        if (isdigit((unsigned char)*p)) digits[nd++] = *p;
    size_t no = strlen(out), tail = no - 1 < 9 ? no - 1 : 9;
    FUZZ_CHECK(nd >= tail && memcmp(digits + nd - tail, out + no - tail, tail) == 0);
}

static void check_email(const char *s) {
    if (validate_email(s) != 0) return;
    size_t len = strlen(s);
    FUZZ_CHECK(len >= 3 && len <= 254);
    const char *at = strchr(s, '@');
    FUZZ_CHECK(at && at > s && at - s <= 64 && !strchr(at + 1, '@'));
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        FUZZ_CHECK(c > 0x20 && c < 0x7F && !strchr("<>\"\\,;:()[]", c));
    }
    const char *domain = at + 1;
    FUZZ_CHECK(strchr(domain, '.') != NULL);
    FUZZ_CHECK(domain[0] != '.' && s[len - 1] != '.' && !strstr(domain, ".."));
}

static void check_others(const char *s, size_t len) {
    int valid = fuzz_utf8_ok((const unsigned char *)s, len);
    FUZZ_CHECK(valid == (validate_utf8(s, len) == 0));
    if (validate_text("field", s, 200, 0) == 0) {
        FUZZ_CHECK(len > 0 && len <= 200 && valid);
        for (size_t i = 0; i < len; i++) FUZZ_CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7F);
    }
    if (validate_ticket_id(s) == 0) FUZZ_CHECK(len == 13 && s[0] == 'T' && s[1] == '-' && s[6] == '-');
    if (validate_token("token", s) == 0) {
        FUZZ_CHECK(len >= 1 && len <= 64);
        for (size_t i = 0; i < len; i++) FUZZ_CHECK(isalnum((unsigned char)s[i]) || strchr("._:-", s[i]));
    }
    if (validate_company_id(s) == 0) FUZZ_CHECK(len == 9 || len == 14);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = fuzz_strndup(data, size);
    check_phone(s);
    check_email(s);
    check_others(s, strlen(s));
    free(s);
    return 0;
}
