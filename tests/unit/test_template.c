/* Unit tests of common/template: load-time validation and rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "template.h"

static const char *const fields[] = {"name", "ticket_id", NULL};
static const template_event events[] = {{"greeting", fields}};

static char dir[64];

static void write_file(const char *name, const char *text) {
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_dir(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sav-template-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_file("greeting.sms.fr.txt", "Bonjour {{name}}, dossier {{ticket_id}}.");
    write_file("greeting.sms.en.txt", "Hello {{name}}, file {{ticket_id}}.");
    write_file("greeting.email.fr.txt", "Subject: Dossier {{ticket_id}}\n\nBonjour {{name}}.\n");
    write_file("greeting.email.en.txt", "Subject: File {{ticket_id}}\n\nHello {{name}}.\n");
    return 0;
}

static int remove_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static void renders_every_channel_and_language(void **state) {
    (void)state;
    template_set *t = template_load(dir, events, 1);
    assert_non_null(t);
    const char *values[] = {"Zoé", "T-2026-000001"};
    char *subject, *body;
    assert_int_equal(template_render(t, "greeting", "sms", "fr", values, &subject, &body), 0);
    assert_null(subject);
    assert_string_equal(body, "Bonjour Zoé, dossier T-2026-000001.");
    free(body);
    assert_int_equal(template_render(t, "greeting", "email", "en", values, &subject, &body), 0);
    assert_string_equal(subject, "File T-2026-000001");
    assert_string_equal(body, "Hello Zoé."); /* the final newline of the file is trimmed */
    free(subject);
    free(body);
    assert_int_equal(template_render(t, "greeting", "sms", "de", values, &subject, &body), -1);
    template_free(t);
}

static void a_field_used_many_times_renders(void **state) {
    (void)state;
    /* The output was sized for each value 8 times: more uses failed to render a template that had loaded
     * (found by fuzz_template). */
    char text[512] = "", want[4096] = "", value[101];
    memset(value, 'X', 100);
    value[100] = '\0';
    for (int i = 0; i < 20; i++) strcat(text, "{{name}} "), strcat(want, value), strcat(want, " ");
    want[strlen(want) - 1] = '\0';
    write_file("greeting.sms.en.txt", text);
    template_set *t = template_load(dir, events, 1);
    assert_non_null(t);
    const char *values[] = {value, ""};
    char *subject, *body;
    assert_int_equal(template_render(t, "greeting", "sms", "en", values, &subject, &body), 0);
    assert_string_equal(body, want);
    free(body);
    template_free(t);
    write_file("greeting.sms.en.txt", "Hello {{name}}, file {{ticket_id}}.");
}

static void unknown_field_is_refused_at_load(void **state) {
    (void)state;
    assert_int_equal(template_check("Hi {{name}}\nsee {{amount}}", fields, "x.txt"), -1);
    assert_non_null(strstr(err_get(), "x.txt:2: unknown field {{amount}}"));
    assert_int_equal(template_check("Hi {{name", fields, "y.txt"), -1);
    assert_non_null(strstr(err_get(), "unclosed"));
    assert_int_equal(template_check("Hi {{name}} {single}", fields, "z.txt"), 0);
}

static void missing_template_or_subject_is_refused(void **state) {
    (void)state;
    write_file("greeting.email.en.txt", "Hello {{name}} without a subject\n");
    assert_null(template_load(dir, events, 1));
    assert_non_null(strstr(err_get(), "Subject"));
    char path[256];
    snprintf(path, sizeof(path), "%s/greeting.email.en.txt", dir);
    unlink(path);
    assert_null(template_load(dir, events, 1));
    assert_non_null(strstr(err_get(), "greeting.email.en.txt"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renders_every_channel_and_language),
        cmocka_unit_test(a_field_used_many_times_renders),
        cmocka_unit_test(unknown_field_is_refused_at_load),
        cmocka_unit_test(missing_template_or_subject_is_refused),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
