#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_service[32] = "sav";
static char log_instance[64] = "";
static enum log_level log_min = LOG_INFO;
static const char *log_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *service, const char *instance, enum log_level min_level) {
    snprintf(log_service, sizeof(log_service), "%s", service);
    snprintf(log_instance, sizeof(log_instance), "%s", instance ? instance : "");
    log_min = min_level;
}

int log_level_parse(const char *name) {
    for (int i = 0; i < 4; i++)
        if (strcmp(name, log_names[i]) == 0) return i;
    return -1;
}

const char *log_mask(const char *personal, char *out) {
    size_t n = strlen(personal);
    const char *at = strchr(personal, '@');
    if (at && strlen(at) < LOG_MASK_LEN - 5)
        snprintf(out, LOG_MASK_LEN, "%.1s***%s", personal, at);
    else if (n > 4 && n < LOG_MASK_LEN)
        snprintf(out, LOG_MASK_LEN, "%.2s%.*s%s", personal, (int)(n - 4), "******************************", personal + n - 2);
    else
        snprintf(out, LOG_MASK_LEN, "***");
    return out;
}

/* Appends s to buf as the inside of a JSON string; control bytes become \u00XX. */
static size_t log_escape(char *buf, size_t pos, size_t cap, const char *s) {
    for (; *s && pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[pos++] = '\\';
            buf[pos++] = (char)c;
        } else if (c < 0x20) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "\\u%04x", c);
        } else {
            buf[pos++] = (char)c;
        }
    }
    return pos;
}

static size_t log_field(char *buf, size_t pos, size_t cap, const char *name, const char *value) {
    if (!value || pos + strlen(name) + 8 >= cap) return pos;
    pos += (size_t)snprintf(buf + pos, cap - pos, ",\"%s\":\"", name);
    pos = log_escape(buf, pos, cap, value);
    if (pos + 1 < cap) buf[pos++] = '"';
    return pos;
}

void log_write(enum log_level level, const char *ticket, const char *msg_id, const char *fmt, ...) {
    if (level < log_min) return;
    char text[1024], line[2048], ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    size_t pos = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\"", ts, log_names[level]);
    pos = log_field(line, pos, sizeof(line), "service", log_service);
    if (log_instance[0]) pos = log_field(line, pos, sizeof(line), "instance", log_instance);
    pos = log_field(line, pos, sizeof(line), "ticket", ticket);
    pos = log_field(line, pos, sizeof(line), "msg_id", msg_id);
    pos = log_field(line, pos, sizeof(line), "msg", text);
    if (pos + 2 >= sizeof(line)) pos = sizeof(line) - 3;
    line[pos++] = '}';
    line[pos++] = '\n';
    /* One write per line so that concurrent processes sharing a log file do not interleave. */
    ssize_t ignored = write(STDERR_FILENO, line, pos);
    (void)ignored;
}
