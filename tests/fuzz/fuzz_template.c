/* Template loading and rendering. The input is four templates (sms fr, sms en, e-mail fr, e-mail en) and the
 * values of the fields, separated by NUL bytes; the templates are written as files of one event in a
 * directory under /dev/shm and loaded with template_load. A set that loads renders every variant, and the
 * result is the template with each {{field}} replaced by its value and nothing else changed: no placeholder
 * is left, none refers to an unknown field, a value is never expanded again, and an e-mail's subject is one
 * line. Rendering succeeds whatever the values. */
#include "fuzz.h"

#include "err.h"
#include "template.h"

#include <unistd.h>

static const char *const fields[] = {"customer_name", "ticket_id", "model", "total", "valid_until", NULL};
#define NFIELDS 5
static const template_event events[] = {{"fuzz_event", fields}};
static const char *const names[4] = {"sms.fr", "sms.en", "email.fr", "email.en"};
static const char *const defaults[4] = {
    "SAV : votre {{model}} ({{ticket_id}}) est prêt.", "After-sales: your {{model}} ({{ticket_id}}) is ready.",
    "Subject: Devis {{ticket_id}}\n\nBonjour {{customer_name}},\nMontant : {{total}} TTC, jusqu'au {{valid_until}}.\n",
    "Subject: Quote {{ticket_id}}\n\nDear {{customer_name}},\n\nTotal: {{total}}.\n"};

static char dir[64];

static void cleanup(void) {
    char path[128];
    for (int v = 0; v < 4; v++) {
        snprintf(path, sizeof(path), "%s/fuzz_event.%s.txt", dir, names[v]);
        unlink(path);
    }
    rmdir(dir);
}

static void write_file(const char *name, const char *text) {
    char path[128];
    snprintf(path, sizeof(path), "%s/fuzz_event.%s.txt", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) abort();
}

/* What template_read keeps of a file: the text without its trailing newlines, spaces and CRs. */
static char *trimmed(const char *text) {
    char *t = fuzz_strndup((const uint8_t *)text, strlen(text));
    size_t n = strlen(t);
    while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == ' ' || t[n - 1] == '\r')) t[--n] = '\0';
    return t;
}

/* The expected rendering, computed here independently: each {{field}} of the list replaced by its value. */
static char *expand(const char *text, const char *const *values) {
    size_t cap = strlen(text) + 1;
    for (int i = 0; i < NFIELDS; i++) cap += strlen(values[i]) * (strlen(text) / 4 + 1);
    char *out = malloc(cap), *w = out;
    if (!out) abort();
    for (const char *p = text; *p;) {
        int found = -1;
        if (p[0] == '{' && p[1] == '{')
            for (int i = 0; i < NFIELDS && found < 0; i++) {
                size_t n = strlen(fields[i]);
                if (strncmp(p + 2, fields[i], n) == 0 && strncmp(p + 2 + n, "}}", 2) == 0) found = i;
            }
        if (found < 0) {
            *w++ = *p++;
            continue;
        }
        size_t n = strlen(values[found]);
        memcpy(w, values[found], n);
        w += n;
        p += strlen(fields[found]) + 4;
    }
    *w = '\0';
    return out;
}

static void check_variant(const template_set *t, int v, const char *file, const char *const *values,
                          int plain_values) {
    const char *channel = v < 2 ? "sms" : "email", *lang = v % 2 ? "en" : "fr";
    char *subject, *body;
    if (template_render(t, "fuzz_event", channel, lang, values, &subject, &body) != 0) {
        fprintf(stderr, "a template that loaded does not render: %s\n", err_get());
        abort();
    }
    char *text = trimmed(file), *want_subject = NULL, *want_body;
    if (v < 2) {
        FUZZ_CHECK(subject == NULL);
        want_body = expand(text, values);
    } else {
        char *nl = strchr(text, '\n');
        FUZZ_CHECK(strncmp(text, "Subject: ", 9) == 0 && nl && nl[1] == '\n');
        *nl = '\0';
        want_subject = expand(text + 9, values);
        want_body = expand(nl + 2, values);
        FUZZ_CHECK(subject && strcmp(subject, want_subject) == 0);
        if (plain_values) FUZZ_CHECK(!strchr(subject, '\n'));
    }
    FUZZ_CHECK(strcmp(body, want_body) == 0);
    if (plain_values) FUZZ_CHECK(!strstr(body, "{{") && (!subject || !strstr(subject, "{{")));
    free(text), free(want_subject), free(want_body), free(subject), free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/dev/shm/sav-fuzz-template-XXXXXX");
        if (!mkdtemp(dir)) abort();
        atexit(cleanup);
    }
    char *f[4 + NFIELDS], *block;
    fuzz_fields(data, size, f, 4 + NFIELDS, &block);
    const char *text[4];
    for (int v = 0; v < 4; v++) {
        text[v] = f[v] ? f[v] : defaults[v];
        write_file(names[v], text[v]);
    }
    template_set *t = template_load(dir, events, 1);
    if (t) {
        const char *values[NFIELDS + 1] = {0}, *plain[NFIELDS + 1] = {0};
        static const char *const samples[NFIELDS] = {"Jeanne Martin", "T-2026-000001", "WM-7000", "274,80 €",
                                                     "30 décembre 2026"};
        for (int i = 0; i < NFIELDS; i++) values[i] = f[4 + i] ? f[4 + i] : samples[i], plain[i] = samples[i];
        for (int v = 0; v < 4; v++) {
            FUZZ_CHECK(template_check(text[v], fields, "fuzz") == 0);
            check_variant(t, v, text[v], values, 0);
            check_variant(t, v, text[v], plain, 1);
        }
        char *subject, *body;
        FUZZ_CHECK(template_render(t, "other_event", "sms", "fr", values, &subject, &body) == -1);
        FUZZ_CHECK(template_render(t, "fuzz_event", "fax", "fr", values, &subject, &body) == -1);
        template_free(t);
    }
    free(block);
    return 0;
}
