/* template: customer messages live in files, one per event, channel and
 * language: <dir>/<event>.<channel>.<lang>.txt. An e-mail template starts
 * with "Subject: ..." and a blank line. Placeholders are {{field}}. Every
 * template is loaded and checked at start: a missing file, an unknown field
 * or an unclosed placeholder stops the service before it sends anything. */
#ifndef SAV_TEMPLATE_H
#define SAV_TEMPLATE_H

#include <stddef.h>

#define TEMPLATE_MAX_BYTES 16384

/* An event's template family and the fields its templates may use. */
typedef struct template_event {
    const char *name;
    const char *const *fields; /* NULL-terminated */
} template_event;

typedef struct template_set template_set;

/* Loads and validates every template of every event for channels sms and email in fr and en; NULL with err. */
template_set *template_load(const char *dir, const template_event *events, size_t nevents);

/* Frees a template set (NULL is fine). */
void template_free(template_set *t);

/* Checks one template text against the allowed fields; 0 or -1 with err naming the line. */
int template_check(const char *text, const char *const *fields, const char *what);

/* Renders event/channel/lang with values (parallel to the event's fields); 0 or -1 with err.
 * *subject (e-mail only, else NULL) and *body are malloc'd: the caller frees them. */
int template_render(const template_set *t, const char *event, const char *channel, const char *lang,
                    const char *const *values, char **subject, char **body);

#endif
