/* log: one JSON object per line on stderr, with the service, the ticket and
 * the message id, so that a ticket's path through the services can be
 * followed with grep. Never log personal data (phone, e-mail, names). */
#ifndef SAV_LOG_H
#define SAV_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the service and instance names written on every line (instance may be NULL) and the minimum level. */
void log_init(const char *service, const char *instance, enum log_level min_level);

/* Parses "debug", "info", "warn" or "error"; returns -1 on anything else. */
int log_level_parse(const char *name);

/* Writes into out (at least LOG_MASK_LEN bytes) a phone number or e-mail address fit for a log: the first two and
 * the last two characters of a number ("+3******78"), the first letter and the domain of an address
 * ("j***@example.fr"); returns out. */
#define LOG_MASK_LEN 96
const char *log_mask(const char *personal, char *out);

/* Writes one line; ticket and msg_id may be NULL. */
void log_write(enum log_level level, const char *ticket, const char *msg_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(t, m, ...) log_write(LOG_DEBUG, t, m, __VA_ARGS__)
#define log_info(t, m, ...) log_write(LOG_INFO, t, m, __VA_ARGS__)
#define log_warn(t, m, ...) log_write(LOG_WARN, t, m, __VA_ARGS__)
#define log_error(t, m, ...) log_write(LOG_ERROR, t, m, __VA_ARGS__)

#endif
