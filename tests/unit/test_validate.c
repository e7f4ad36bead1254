/* Unit tests for common/validate.c: UTF-8, free text, phone numbers, e-mail, choices, ticket ids and tokens. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "validate.h"

/* Fails unless validate_utf8 accepts the len bytes of s. */
static void utf8_ok(const char *s, size_t len) {
    unit_err_clear();
    if (validate_utf8(s, len) != 0) fail_msg("validate_utf8 refused %zu bytes: %s", len, err_get());
}

/* Fails unless validate_utf8 refuses the len bytes of s with exactly the error expected. */
static void utf8_bad(const char *s, size_t len, const char *expected) {
    unit_err_clear();
    if (validate_utf8(s, len) != -1) fail_msg("validate_utf8 accepted %zu bytes, expected \"%s\"", len, expected);
    assert_err_equal(expected);
}

static void test_utf8_accepts_ascii_and_multibyte(void **state) {
    (void)state;
    utf8_ok("", 0);
    utf8_ok("plain ASCII text", 16);
    utf8_ok("a\0b", 3);                        /* NUL is a valid code point when the length is explicit */
    utf8_ok("\xC3\xA9", 2);                    /* U+00E9 e acute */
    utf8_ok("\xC2\x80", 2);                    /* U+0080, smallest 2-byte */
    utf8_ok("\xDF\xBF", 2);                    /* U+07FF, largest 2-byte */
    utf8_ok("\xE0\xA0\x80", 3);                /* U+0800, smallest 3-byte */
    utf8_ok("\xE2\x82\xAC", 3);                /* U+20AC euro sign */
    utf8_ok("\xED\x9F\xBF", 3);                /* U+D7FF, just below the surrogates */
    utf8_ok("\xEE\x80\x80", 3);                /* U+E000, just above the surrogates */
    utf8_ok("\xEF\xBF\xBF", 3);                /* U+FFFF */
    utf8_ok("\xF0\x90\x80\x80", 4);            /* U+10000, smallest 4-byte */
    utf8_ok("\xF0\x9F\x98\x80", 4);            /* U+1F600 emoji */
    utf8_ok("\xF4\x8F\xBF\xBF", 4);            /* U+10FFFF, the last code point */
    const char *mixed = "R\xC3\xA9" "frig\xC3\xA9rateur \xE2\x82\xAC \xF0\x9F\x98\x80";
    utf8_ok(mixed, strlen(mixed));
}

static void test_utf8_rejects_overlong(void **state) {
    (void)state;
    utf8_bad("\xC0\xAF", 2, "invalid UTF-8 code point U+002F at offset 0");
    utf8_bad("\xC1\xBF", 2, "invalid UTF-8 code point U+007F at offset 0");
    utf8_bad("ab\xC0\x80", 4, "invalid UTF-8 code point U+0000 at offset 2");
    utf8_bad("\xE0\x80\xAF", 3, "invalid UTF-8 code point U+002F at offset 0");
    utf8_bad("\xE0\x9F\xBF", 3, "invalid UTF-8 code point U+07FF at offset 0");
    utf8_bad("\xF0\x80\x80\xAF", 4, "invalid UTF-8 code point U+002F at offset 0");
    utf8_bad("\xF0\x8F\xBF\xBF", 4, "invalid UTF-8 code point U+FFFF at offset 0");
}

static void test_utf8_rejects_surrogates(void **state) {
    (void)state;
    utf8_bad("\xED\xA0\x80", 3, "invalid UTF-8 code point U+D800 at offset 0");
    utf8_bad("x\xED\xB2\x80", 4, "invalid UTF-8 code point U+DC80 at offset 1");
    utf8_bad("\xED\xBF\xBF", 3, "invalid UTF-8 code point U+DFFF at offset 0");
    /* A CESU-8 encoded pair (U+1F600 as two surrogates) is refused at the first half. */
    utf8_bad("\xED\xA0\xBD\xED\xB8\x80", 6, "invalid UTF-8 code point U+D83D at offset 0");
}

static void test_utf8_rejects_truncated(void **state) {
    (void)state;
    utf8_bad("\xC3", 1, "truncated UTF-8 sequence at offset 0");
    utf8_bad("\xE2\x82", 2, "truncated UTF-8 sequence at offset 0");
    utf8_bad("\xF0\x9F\x98", 3, "truncated UTF-8 sequence at offset 0");
    utf8_bad("ab\xE2\x82", 4, "truncated UTF-8 sequence at offset 2");
    /* The length, not the NUL, bounds the check: a complete sequence cut by len is truncated. */
    utf8_bad("\xC3\xA9", 1, "truncated UTF-8 sequence at offset 0");
}

static void test_utf8_rejects_above_max_code_point(void **state) {
    (void)state;
    utf8_bad("\xF4\x90\x80\x80", 4, "invalid UTF-8 code point U+110000 at offset 0");
    utf8_bad("\xF7\xBF\xBF\xBF", 4, "invalid UTF-8 code point U+1FFFFF at offset 0");
    utf8_bad("\xF8\x88\x80\x80\x80", 5, "invalid UTF-8 byte 0xf8 at offset 0");
    utf8_bad("ok\xFF", 3, "invalid UTF-8 byte 0xff at offset 2");
}

static void test_utf8_rejects_bad_continuation_and_stray_bytes(void **state) {
    (void)state;
    utf8_bad("\x80", 1, "invalid UTF-8 byte 0x80 at offset 0");
    utf8_bad("a\xBF", 2, "invalid UTF-8 byte 0xbf at offset 1");
    utf8_bad("\xC3\x28", 2, "invalid UTF-8 continuation at offset 1");
    utf8_bad("xx\xE2\x82\x28", 5, "invalid UTF-8 continuation at offset 4");
    utf8_bad("\xF0\x9F\x98\xC3", 4, "invalid UTF-8 continuation at offset 3");
}

static void test_text_accepts_plain_and_utf8(void **state) {
    (void)state;
    assert_int_equal(0, validate_text("symptom", "Le lave-linge ne s'essore plus", 200, 0));
    assert_int_equal(0, validate_text("symptom", "R\xC3\xA9" "frig\xC3\xA9rateur bruyant \xE2\x82\xAC", 200, 0));
    assert_int_equal(0, validate_text("name", "x", 1, 0));
}

static void test_text_rejects_empty(void **state) {
    (void)state;
    unit_err_clear();
    assert_int_equal(-1, validate_text("symptom", "", 200, 1));
    assert_err_equal("symptom is empty");
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", NULL, 200, 0));
    assert_err_equal("name is empty");
}

static void test_text_rejects_too_long_in_bytes(void **state) {
    (void)state;
    assert_int_equal(0, validate_text("name", "0123456789", 10, 0));
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "0123456789A", 10, 0));
    assert_err_equal("name is too long (11 bytes, at most 10)");
    /* The limit counts bytes, not characters: five e-acute are 10 bytes, six are 12. */
    assert_int_equal(0, validate_text("name", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 10, 0));
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 10, 0));
    assert_err_equal("name is too long (12 bytes, at most 10)");
}

static void test_text_rejects_invalid_utf8(void **state) {
    (void)state;
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "caf\xC3", 200, 0));
    assert_err_equal("name is not valid UTF-8: truncated UTF-8 sequence at offset 3");
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "\xED\xA0\x80", 200, 1));
    assert_err_contains("name is not valid UTF-8");
    assert_err_contains("U+D800");
}

static void test_text_rejects_control_characters(void **state) {
    (void)state;
    unit_err_clear();
    assert_int_equal(-1, validate_text("symptom", "a\x01" "b", 200, 0));
    assert_err_equal("symptom contains a control character (0x01) at offset 1");
    unit_err_clear();
    assert_int_equal(-1, validate_text("symptom", "\x1b[31mred", 200, 1));
    assert_err_equal("symptom contains a control character (0x1b) at offset 0");
    unit_err_clear();
    assert_int_equal(-1, validate_text("symptom", "del\x7f", 200, 1));
    assert_err_equal("symptom contains a control character (0x7f) at offset 3");
    /* Carriage return is refused even in multiline text. */
    unit_err_clear();
    assert_int_equal(-1, validate_text("symptom", "line\r\nnext", 200, 1));
    assert_err_equal("symptom contains a control character (0x0d) at offset 4");
}

static void test_text_multiline_allows_newline_and_tab_only_when_asked(void **state) {
    (void)state;
    assert_int_equal(0, validate_text("symptom", "line one\nline two\tindented", 200, 1));
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "line one\nline two", 200, 0));
    assert_err_equal("name contains a control character (0x0a) at offset 8");
    unit_err_clear();
    assert_int_equal(-1, validate_text("name", "a\tb", 200, 0));
    assert_err_equal("name contains a control character (0x09) at offset 1");
}

/* Fails unless validate_phone turns in into expected. */
static void phone_ok(const char *in, const char *expected) {
    char out[17];
    memset(out, 'x', sizeof(out));
    unit_err_clear();
    if (validate_phone(in, out, sizeof(out)) != 0) fail_msg("validate_phone(\"%s\") refused: %s", in, err_get());
    if (strcmp(out, expected) != 0) fail_msg("validate_phone(\"%s\") gave \"%s\", expected \"%s\"", in, out, expected);
}

/* Fails unless validate_phone refuses in with an error containing needle. */
static void phone_bad(const char *in, const char *needle) {
    char out[17];
    unit_err_clear();
    if (validate_phone(in, out, sizeof(out)) != -1) fail_msg("validate_phone(\"%s\") accepted it as \"%s\"", in, out);
    assert_err_contains(needle);
}

static void test_phone_french_forms(void **state) {
    (void)state;
    phone_ok("06 12 34 56 78", "+33612345678");
    phone_ok("06.12.34.56.78", "+33612345678");
    phone_ok("06-12-34-56-78", "+33612345678");
    phone_ok("0612345678", "+33612345678");
    phone_ok("+33 6 12 34 56 78", "+33612345678");
    phone_ok("+33612345678", "+33612345678");
    phone_ok("+33 (0)6 12 34 56 78", "+33612345678");
    phone_ok("+33 0 6 12 34 56 78", "+33612345678");
    phone_ok("0033612345678", "+33612345678");
    phone_ok("00 33 6 12 34 56 78", "+33612345678");
    phone_ok("01 23 45 67 89", "+33123456789");
}

static void test_phone_international(void **state) {
    (void)state;
    phone_ok("+44 20 7946 0958", "+442079460958");
    phone_ok("0044 20 7946 0958", "+442079460958");
    phone_ok("+1 (212) 555-0123", "+12125550123");
    phone_ok("+49 30 12345678", "+493012345678");
    /* 15 digits, the E.164 maximum, fill the documented 17-byte buffer exactly. */
    phone_ok("+123456789012345", "+123456789012345");
}

static void test_phone_rejects_letters(void **state) {
    (void)state;
    phone_bad("06 12 34 AB 78", "contains 'A'");
    phone_bad("06 12 34 AB 78", "only digits");
    phone_bad("tel: 0612345678", "contains 't'");
    phone_bad("0612345678 ext 12", "contains 'e'");
    /* A + anywhere but first is not a country code. */
    phone_bad("06+12345678", "contains '+'");
}

static void test_phone_rejects_too_short(void **state) {
    (void)state;
    phone_bad("06 12 34 56", "10 digits starting with 0");
    phone_bad("+33 6 12", "8 to 15 digits");
    phone_bad("+44 20 79", "8 to 15 digits");
    phone_bad("+33 6 12 34 56 7", "9 digits after +33");
}

static void test_phone_rejects_too_long(void **state) {
    (void)state;
    phone_bad("06 12 34 56 78 90", "10 digits starting with 0");
    phone_bad("+44 1234 5678 9012 34", "8 to 15 digits");
    phone_bad("+33 6 12 34 56 78 9", "9 digits after +33");
    phone_bad("+33 1234567890123456789012345678901234567890", "too many digits");
}

static void test_phone_rejects_12345(void **state) {
    (void)state;
    phone_bad("12345", "neither French (10 digits starting with 0) nor international (+ or 00)");
    phone_bad("12345", "\"12345\"");
}

static void test_phone_rejects_empty(void **state) {
    (void)state;
    phone_bad("", "phone number is empty");
    phone_bad(NULL, "phone number is empty");
    phone_bad(" . - ", "neither French");
    phone_bad("+", "8 to 15 digits");
}

static void test_phone_rejects_country_code_zero(void **state) {
    (void)state;
    phone_bad("+0612345678", "not a valid international number");
    phone_bad("000612345678", "not a valid international number");
    phone_bad("+33 0 0 12 34 56 78", "9 digits after +33");
}

static void test_email_accepts_common_addresses(void **state) {
    (void)state;
    assert_int_equal(0, validate_email("jean.dupont@example.fr"));
    assert_int_equal(0, validate_email("a@b.co"));
    assert_int_equal(0, validate_email("x+tag@sub.example.com"));
    assert_int_equal(0, validate_email("service-client_2@mail.example-shop.fr"));
    char local64[80];
    memset(local64, 'l', 64);
    strcpy(local64 + 64, "@example.fr");
    assert_int_equal(0, validate_email(local64));
}

/* Fails unless validate_email refuses s with an error containing needle. */
static void email_bad(const char *s, const char *needle) {
    unit_err_clear();
    if (validate_email(s) != -1) fail_msg("validate_email(\"%s\") accepted it", s ? s : "(null)");
    assert_err_contains(needle);
}

static void test_email_rejects_bad_at_sign(void **state) {
    (void)state;
    email_bad("jean.example.fr", "exactly one @");
    email_bad("a@@example.fr", "exactly one @");
    email_bad("a@b@example.fr", "exactly one @");
    email_bad("@example.fr", "local part of 1 to 64");
    char local65[80];
    memset(local65, 'l', 65);
    strcpy(local65 + 65, "@example.fr");
    email_bad(local65, "local part of 1 to 64");
}

static void test_email_rejects_bad_length(void **state) {
    (void)state;
    email_bad("", "1 to 254 characters");
    email_bad(NULL, "1 to 254 characters");
    /* 254 bytes pass, 255 do not: "user@" + n letters + ".fr". */
    char addr[300];
    snprintf(addr, sizeof(addr), "user@%0246d.fr", 0);
    assert_int_equal(254, (int)strlen(addr));
    assert_int_equal(0, validate_email(addr));
    snprintf(addr, sizeof(addr), "user@%0247d.fr", 0);
    assert_int_equal(255, (int)strlen(addr));
    email_bad(addr, "1 to 254 characters");
}

static void test_email_rejects_forbidden_characters(void **state) {
    (void)state;
    email_bad("jean dupont@example.fr", "forbidden character at offset 4");
    email_bad("jean\t@example.fr", "forbidden character at offset 4");
    email_bad("j\xC3\xA9r\xC3\xB4me@example.fr", "forbidden character at offset 1");
    email_bad("<jean@example.fr>", "forbidden character at offset 0");
    email_bad("jean,paul@example.fr", "forbidden character at offset 4");
    email_bad("jean@example.fr;x", "forbidden character");
}

static void test_email_rejects_bad_domain(void **state) {
    (void)state;
    email_bad("jean@example", "has no valid domain");
    email_bad("jean@.fr", "has no valid domain");
    email_bad("jean@example.", "has no valid domain");
    email_bad("jean@example.fr.", "has no valid domain");
    email_bad("jean@example..fr", "has no valid domain");
    email_bad("jean@-example.fr", "has no valid domain");
    email_bad("jean@", "has no valid domain");
}

static void test_email_rejects_domain_starting_with_dot(void **state) {
    (void)state;
    /* ".fr" alone is refused; a leading dot must be refused too when the domain has more dots. */
    email_bad("jean@.example.fr", "has no valid domain");
}

static const char *const kinds[] = {"repair", "installation", "assistance", NULL};

static void test_choice_accepts_each_choice(void **state) {
    (void)state;
    assert_int_equal(0, validate_choice("kind", "repair", kinds));
    assert_int_equal(0, validate_choice("kind", "installation", kinds));
    assert_int_equal(0, validate_choice("kind", "assistance", kinds));
}

static void test_choice_rejects_others_naming_field_and_choices(void **state) {
    (void)state;
    unit_err_clear();
    assert_int_equal(-1, validate_choice("kind", "Repair", kinds));
    assert_err_equal("kind must be one of: repair, installation, assistance (got \"Repair\")");
    unit_err_clear();
    assert_int_equal(-1, validate_choice("kind", "repai", kinds));
    assert_err_contains("(got \"repai\")");
    unit_err_clear();
    assert_int_equal(-1, validate_choice("kind", "", kinds));
    assert_err_contains("(got \"\")");
    unit_err_clear();
    assert_int_equal(-1, validate_choice("kind", NULL, kinds));
    assert_err_equal("kind must be one of: repair, installation, assistance (got \"\")");
    static const char *const none[] = {NULL};
    unit_err_clear();
    assert_int_equal(-1, validate_choice("lang", "fr", none));
    assert_err_equal("lang must be one of:  (got \"fr\")");
}

static void test_choice_accepts_late_choice_in_long_list(void **state) {
    (void)state;
    /* Ten 40-byte choices overflow the 256-byte list of the error message; every one must still match. */
    char names[10][41];
    const char *choices[11];
    for (int i = 0; i < 10; i++) {
        memset(names[i], 'a' + i, 40);
        names[i][40] = '\0';
        choices[i] = names[i];
    }
    choices[10] = NULL;
    for (int i = 0; i < 10; i++) {
        unit_err_clear();
        if (validate_choice("field", names[i], choices) != 0)
            fail_msg("choice %d of 10 refused: %s", i + 1, err_get());
    }
}

static void test_ticket_id_accepts_valid(void **state) {
    (void)state;
    assert_int_equal(0, validate_ticket_id("T-2026-000001"));
    assert_int_equal(0, validate_ticket_id("T-1999-999999"));
}

static void test_ticket_id_rejects_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",               "T-2026-00001",  "T-2026-0000001", "t-2026-000001", "X-2026-000001",
        "T_2026-000001",  "T-2026_000001", "T-20a6-000001",  "T-2026-00000a", " T-2026-000001",
        "T-2026-000001 ", "T-026-0000001", "T--2026-00001",  "T-2026-+00001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (validate_ticket_id(bad[i]) != -1) fail_msg("validate_ticket_id accepted \"%s\"", bad[i]);
        char expected[96];
        snprintf(expected, sizeof(expected), "\"%s\" is not a ticket id (expected T-YYYY-NNNNNN)", bad[i]);
        assert_err_equal(expected);
    }
    unit_err_clear();
    assert_int_equal(-1, validate_ticket_id(NULL));
    assert_err_equal("\"\" is not a ticket id (expected T-YYYY-NNNNNN)");
}

static void test_token_accepts_allowed_characters(void **state) {
    (void)state;
    assert_int_equal(0, validate_token("serial", "SN-123_abc.def:9"));
    assert_int_equal(0, validate_token("serial", "x"));
    char max[65];
    memset(max, 'Z', 64);
    max[64] = '\0';
    assert_int_equal(0, validate_token("serial", max));
}

static void test_token_rejects_bad_length(void **state) {
    (void)state;
    unit_err_clear();
    assert_int_equal(-1, validate_token("serial", ""));
    assert_err_equal("serial must have 1 to 64 characters");
    unit_err_clear();
    assert_int_equal(-1, validate_token("model", NULL));
    assert_err_equal("model must have 1 to 64 characters");
    char over[66];
    memset(over, 'Z', 65);
    over[65] = '\0';
    unit_err_clear();
    assert_int_equal(-1, validate_token("serial", over));
    assert_err_equal("serial must have 1 to 64 characters");
}

static void test_token_rejects_other_characters(void **state) {
    (void)state;
    static const char *const bad[] = {"a b", "a/b", "a*", "{s1}", "caf\xC3\xA9", "a\nb", "a@b", "a+b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (validate_token("serial", bad[i]) != -1) fail_msg("validate_token accepted \"%s\"", bad[i]);
        assert_err_contains("serial may contain only letters, digits and . _ : -");
    }
    unit_err_clear();
    assert_int_equal(-1, validate_token("serial", "a b"));
    assert_err_equal("serial may contain only letters, digits and . _ : - (got \"a b\")");
}

static void test_company_id_siren_and_siret(void **state) {
    (void)state;
    assert_int_equal(0, validate_company_id("732829320"));
    assert_int_equal(0, validate_company_id("73282932000074"));
    unit_err_clear();
    assert_int_equal(-1, validate_company_id("732829321"));
    assert_err_contains("check digit");
    unit_err_clear();
    assert_int_equal(-1, validate_company_id("73282932"));
    assert_err_contains("SIREN (9 digits) or SIRET (14 digits)");
    unit_err_clear();
    assert_int_equal(-1, validate_company_id("7328293A0"));
    assert_err_contains("SIREN");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_company_id_siren_and_siret),
        cmocka_unit_test(test_utf8_accepts_ascii_and_multibyte),
        cmocka_unit_test(test_utf8_rejects_overlong),
        cmocka_unit_test(test_utf8_rejects_surrogates),
        cmocka_unit_test(test_utf8_rejects_truncated),
        cmocka_unit_test(test_utf8_rejects_above_max_code_point),
        cmocka_unit_test(test_utf8_rejects_bad_continuation_and_stray_bytes),
        cmocka_unit_test(test_text_accepts_plain_and_utf8),
        cmocka_unit_test(test_text_rejects_empty),
        cmocka_unit_test(test_text_rejects_too_long_in_bytes),
        cmocka_unit_test(test_text_rejects_invalid_utf8),
        cmocka_unit_test(test_text_rejects_control_characters),
        cmocka_unit_test(test_text_multiline_allows_newline_and_tab_only_when_asked),
        cmocka_unit_test(test_phone_french_forms),
        cmocka_unit_test(test_phone_international),
        cmocka_unit_test(test_phone_rejects_letters),
        cmocka_unit_test(test_phone_rejects_too_short),
        cmocka_unit_test(test_phone_rejects_too_long),
        cmocka_unit_test(test_phone_rejects_12345),
        cmocka_unit_test(test_phone_rejects_empty),
        cmocka_unit_test(test_phone_rejects_country_code_zero),
        cmocka_unit_test(test_email_accepts_common_addresses),
        cmocka_unit_test(test_email_rejects_bad_at_sign),
        cmocka_unit_test(test_email_rejects_bad_length),
        cmocka_unit_test(test_email_rejects_forbidden_characters),
        cmocka_unit_test(test_email_rejects_bad_domain),
        cmocka_unit_test(test_email_rejects_domain_starting_with_dot),
        cmocka_unit_test(test_choice_accepts_each_choice),
        cmocka_unit_test(test_choice_rejects_others_naming_field_and_choices),
        cmocka_unit_test(test_choice_accepts_late_choice_in_long_list),
        cmocka_unit_test(test_ticket_id_accepts_valid),
        cmocka_unit_test(test_ticket_id_rejects_malformed),
        cmocka_unit_test(test_token_accepts_allowed_characters),
        cmocka_unit_test(test_token_rejects_bad_length),
        cmocka_unit_test(test_token_rejects_other_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
