/* Unit tests of common/mail: headers, RFC 2047 subjects, multipart/alternative, CRLF, HTML escaping, injection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mail.h"

static mail_input base(void) {
    mail_input in = {"sav@example.fr", "Service après-vente", "jeanne@example.fr", "Votre demande T-2026-000001 est prête",
                     "Bonjour Jeanne,\n\nVotre <appareil> & le reste.\nÀ bientôt.", "T-2026-000001.x.email.1@sav.example",
                     1796000000000LL};
    return in;
}

static void headers_and_parts_are_all_there(void **state) {
    (void)state;
    mail_input in = base();
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    assert_int_equal(strlen(m), n);
    assert_non_null(strstr(m, "To: <jeanne@example.fr>\r\n"));
    assert_non_null(strstr(m, "Date: Mon, 30 Nov 2026 00:53:20 +0000\r\n"));
    assert_non_null(strstr(m, "Message-ID: <T-2026-000001.x.email.1@sav.example>\r\n"));
    assert_non_null(strstr(m, "Auto-Submitted: auto-generated\r\n"));
    assert_non_null(strstr(m, "MIME-Version: 1.0\r\n"));
    char *plain = strstr(m, "Content-Type: text/plain; charset=UTF-8"), *html = strstr(m, "Content-Type: text/html; charset=UTF-8");
    assert_non_null(plain);
    assert_non_null(html);
    assert_true(plain < html);
    free(m);
}

static void every_line_ends_with_crlf(void **state) {
    (void)state;
    mail_input in = base();
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (m[i] == '\n') assert_true(i > 0 && m[i - 1] == '\r');
        if (m[i] == '\r') assert_true(i + 1 < n && m[i + 1] == '\n');
    }
    free(m);
}

static void non_ascii_subject_and_name_are_encoded_words(void **state) {
    (void)state;
    mail_input in = base();
    in.subject = "Réparation terminée : votre lave-linge WM-7000 est prête à être retirée chez SAV Paris Nation, "
                 "12 cours de Vincennes";
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    char *subject = strstr(m, "Subject: =?UTF-8?B?");
    assert_non_null(subject);
    assert_non_null(strstr(m, "From: =?UTF-8?B?"));
    /* Each encoded word is at most 75 characters and the folded lines continue with a space. */
    int words = 0;
    for (char *w = strstr(subject, "=?UTF-8?B?"); w && w < strstr(m, "\r\nDate:"); w = strstr(w + 1, "=?UTF-8?B?")) {
        char *end = strstr(w, "?=");
        assert_non_null(end);
        assert_true(end + 2 - w <= 75);
        words++;
    }
    assert_true(words >= 3);
    assert_non_null(strstr(subject, "?=\r\n =?UTF-8?B?"));
    assert_null(strstr(m, "Réparation"));
    free(m);
}

/* Longest line of a message, CRLF excluded. */
static size_t longest_line(const char *m) {
    size_t longest = 0;
    for (const char *p = m; *p;) {
        size_t n = strcspn(p, "\r");
        if (n > longest) longest = n;
        p += n + (p[n] ? 2 : 0);
    }
    return longest;
}

static void long_or_lookalike_ascii_headers_are_encoded_words(void **state) {
    (void)state;
    char subject[1201], name[401];
    memset(subject, 'a', 1200), subject[1200] = '\0';
    memset(name, 'N', 400), name[400] = '\0';
    mail_input in = base();
    in.subject = subject; /* a 1200-character line broke RFC 5322's 998 (found by fuzz_mail) */
    in.from_name = name;
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    assert_true(longest_line(m) <= 76 + 256);
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?YWFh"));
    assert_non_null(strstr(m, "From: =?UTF-8?B?Tk5O"));
    free(m);
    in = base();
    in.subject = "=?UTF-8?B?SGk=?="; /* plain, a client would show "Hi" */
    assert_int_equal(mail_build(&in, &m, &n), 0);
    assert_non_null(strstr(m, "Subject: =?UTF-8?B?PT9VVEYtOD9CP1NHaz0/PQ==?=\r\n"));
    free(m);
    in = base();
    in.from_name = "SAV";
    assert_int_equal(mail_build(&in, &m, &n), 0);
    assert_non_null(strstr(m, "From: \"SAV\" <sav@example.fr>\r\n"));
    free(m);
}

static void html_part_escapes_customer_text(void **state) {
    (void)state;
    mail_input in = base();
    in.text = "<script>alert('x')</script> & \"q\"";
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    /* The HTML part is base64: decode-free check that the raw text never appears as markup. */
    assert_null(strstr(m, "<script>"));
    free(m);
}

static void injection_is_refused(void **state) {
    (void)state;
    char *m = NULL;
    size_t n;
    mail_input in = base();
    in.subject = "Hello\r\nBcc: victim@example.com";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    assert_non_null(strstr(err_get(), "subject"));
    in = base();
    in.to = "a@example.com>\r\nRCPT TO:<b@example.com";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    in = base();
    in.from_name = "Evil\nX-Header: 1";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    in = base();
    in.to = "not-an-address";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    in = base();
    in.message_id = "no-domain";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    in = base();
    in.message_id = "T-2026-000001.x@sav.électro.fr"; /* 8-bit in a header */
    assert_int_equal(mail_build(&in, &m, &n), -1);
    in = base();
    in.message_id = "a\"b@sav.example";
    assert_int_equal(mail_build(&in, &m, &n), -1);
    assert_null(m);
}

static void boundary_has_only_rfc2046_characters(void **state) {
    (void)state;
    mail_input in = base();
    in.message_id = "T-2026-000001.email*.1@sav.example"; /* '*' is fine in an id, not in a boundary (fuzz_mail) */
    char *m;
    size_t n;
    assert_int_equal(mail_build(&in, &m, &n), 0);
    assert_non_null(strstr(m, "Message-ID: <T-2026-000001.email*.1@sav.example>\r\n"));
    assert_non_null(strstr(m, "boundary=\"=_sav_T-2026-000001.email..1.sav.example\"\r\n"));
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(headers_and_parts_are_all_there),
        cmocka_unit_test(every_line_ends_with_crlf),
        cmocka_unit_test(non_ascii_subject_and_name_are_encoded_words),
        cmocka_unit_test(long_or_lookalike_ascii_headers_are_encoded_words),
        cmocka_unit_test(html_part_escapes_customer_text),
        cmocka_unit_test(injection_is_refused),
        cmocka_unit_test(boundary_has_only_rfc2046_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
