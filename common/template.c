#include "template.h"
#include "err.h"
#include "textfile.h"
#include "validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const template_channels[] = {"sms", "email"};
static const char *const template_langs[] = {"fr", "en"};
#define TEMPLATE_VARIANTS 4 /* channels x languages */

typedef struct template_text {
    char *subject; /* e-mail only */
    char *body;
} template_text;

struct template_set {
    const template_event *events;
    size_t nevents;
    template_text *texts; /* nevents * TEMPLATE_VARIANTS */
};

static char *template_read(const char *path) {
    size_t n;
    char *buf = textfile_read(path, TEMPLATE_MAX_BYTES, &n);
    if (!buf) {
        char why[512];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("template %s", why);
        return NULL;
    }
    if (n == 0) {
        err_set("template %s: empty", path);
        free(buf);
        return NULL;
    }
    /* Editors add a final newline; a message never ends with blank space. */
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r')) buf[--n] = '\0';
    if (validate_utf8(buf, n) != 0 || strlen(buf) != n) {
        err_set("template %s: not valid UTF-8 text", path);
        free(buf);
        return NULL;
    }
    return buf;
}

static int template_field_index(const char *name, size_t len, const char *const *fields) {
    for (int i = 0; fields[i]; i++)
        if (strlen(fields[i]) == len && strncmp(fields[i], name, len) == 0) return i;
    return -1;
}

int template_check(const char *text, const char *const *fields, const char *what) {
    int line = 1;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') line++;
        if (p[0] != '{' || p[1] != '{') continue;
        const char *end = strstr(p + 2, "}}");
        const char *nl = strchr(p + 2, '\n');
        if (!end || (nl && nl < end)) {
            err_set("%s:%d: unclosed placeholder", what, line);
            return -1;
        }
        if (template_field_index(p + 2, (size_t)(end - p - 2), fields) < 0) {
            err_set("%s:%d: unknown field {{%.*s}}", what, line, (int)(end - p - 2), p + 2);
            return -1;
        }
        p = end + 1;
    }
    return 0;
}

/* Splits "Subject: ...\n\nbody" in place. */
static int template_split_email(char *text, template_text *t, const char *what) {
    char *nl = strchr(text, '\n');
    if (strncmp(text, "Subject: ", 9) != 0 || !nl || nl[1] != '\n') {
        err_set("%s: an e-mail template starts with \"Subject: ...\" and a blank line", what);
        return -1;
    }
    *nl = '\0';
    t->subject = strdup(text + 9);
    t->body = strdup(nl + 2);
    if (!t->subject || !t->body) {
        err_set("out of memory");
        return -1;
    }
    return 0;
}

static int template_load_one(const char *dir, const template_event *ev, int variant, template_text *t) {
    const char *channel = template_channels[variant / 2], *lang = template_langs[variant % 2];
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s.%s.%s.txt", dir, ev->name, channel, lang);
    char *text = template_read(path);
    if (!text) return -1;
    int rc = template_check(text, ev->fields, path);
    if (rc == 0 && variant / 2 == 1) {
        rc = template_split_email(text, t, path);
        free(text);
    } else {
        t->body = text;
    }
    return rc;
}

template_set *template_load(const char *dir, const template_event *events, size_t nevents) {
    template_set *t = calloc(1, sizeof(*t));
    if (t) t->texts = calloc(nevents * TEMPLATE_VARIANTS, sizeof(template_text));
    if (!t || !t->texts) {
        free(t);
        err_set("out of memory loading templates");
        return NULL;
    }
    t->events = events;
    t->nevents = nevents;
    for (size_t e = 0; e < nevents; e++)
        for (int v = 0; v < TEMPLATE_VARIANTS; v++)
            if (template_load_one(dir, &events[e], v, &t->texts[e * TEMPLATE_VARIANTS + v]) != 0) {
                template_free(t);
                return NULL;
            }
    return t;
}

void template_free(template_set *t) {
    if (!t) return;
    for (size_t i = 0; i < t->nevents * TEMPLATE_VARIANTS; i++) {
        free(t->texts[i].subject);
        free(t->texts[i].body);
    }
    free(t->texts);
    free(t);
}

/* Writes text with its placeholders expanded into out (when not NULL); returns the length of the result. */
static size_t template_fill(const char *text, const char *const *fields, const char *const *values, char *out) {
    size_t n = 0;
    for (const char *p = text; *p;) {
        const char *end = p[0] == '{' && p[1] == '{' ? strstr(p + 2, "}}") : NULL;
        int i = end ? template_field_index(p + 2, (size_t)(end - p - 2), fields) : -1;
        if (i < 0) {
            if (out) out[n] = *p;
            n++, p++;
            continue;
        }
        const char *v = values[i] ? values[i] : "";
        size_t len = strlen(v);
        if (out) memcpy(out + n, v, len);
        n += len;
        p = end + 2;
    }
    if (out) out[n] = '\0';
    return n;
}

/* Expands the placeholders of text, measured first: a field may appear any number of times. NULL with err. */
static char *template_expand(const char *text, const char *const *fields, const char *const *values) {
    char *out = malloc(template_fill(text, fields, values, NULL) + 1);
    if (!out) {
        err_set("out of memory rendering a template");
        return NULL;
    }
    template_fill(text, fields, values, out);
    return out;
}

int template_render(const template_set *t, const char *event, const char *channel, const char *lang,
                    const char *const *values, char **subject, char **body) {
    *subject = *body = NULL;
    int variant = -1;
    for (int v = 0; v < TEMPLATE_VARIANTS; v++)
        if (strcmp(template_channels[v / 2], channel) == 0 && strcmp(template_langs[v % 2], lang) == 0) variant = v;
    for (size_t e = 0; e < t->nevents && variant >= 0; e++) {
        if (strcmp(t->events[e].name, event) != 0) continue;
        const template_text *tt = &t->texts[e * TEMPLATE_VARIANTS + variant];
        *body = template_expand(tt->body, t->events[e].fields, values);
        if (*body && tt->subject) *subject = template_expand(tt->subject, t->events[e].fields, values);
        if (!*body || (tt->subject && !*subject)) {
            free(*body);
            *body = NULL;
            return -1;
        }
        return 0;
    }
    err_set("no template for %s/%s/%s", event, channel, lang);
    return -1;
}
