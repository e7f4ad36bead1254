#include "settings.h"
#include "err.h"
#include "httpd.h"
#include "keys.h"
#include "textfile.h"
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum setting_type { ST_INT, ST_STR, ST_DAYS, ST_SECRET };

typedef struct setting_def {
    const char *section, *key;
    enum setting_type type;
    size_t offset, size; /* where in struct settings; size for strings */
    const char *def;
    long min, max;
} setting_def;

#define INT_SETTING(sec, k, field, d, lo, hi) {sec, k, ST_INT, offsetof(settings, field), 0, d, lo, hi}
#define STR_SETTING(sec, k, field, d) {sec, k, ST_STR, offsetof(settings, field), sizeof(((settings *)0)->field), d, 0, 0}
#define DAYS_SETTING(sec, k, field, d) {sec, k, ST_DAYS, offsetof(settings, field), 0, d, 1, 3650}
/* A password or key: "none" (empty), or file:PATH, never the secret itself in the configuration. Only the owning
 * service reads the file (min holds the owner): savctl, or another service's container, never needs it. */
/* The owner of a secret every service needs (not the tools). */
#define SETTINGS_ANY_SERVICE (SVC_COUNT + 1)
#define SECRET_SETTING(sec, k, field, owner) \
    {sec, k, ST_SECRET, offsetof(settings, field), sizeof(((settings *)0)->field), "none", owner, 0}

static const setting_def setting_defs[] = {
    STR_SETTING("redis", "host", redis_host, "127.0.0.1"),
    INT_SETTING("redis", "port", redis_port, "6390", 0, 65535),
    INT_SETTING("redis", "timeout_ms", redis_timeout_ms, "2000", 10, 60000),
    /* Registry records and tickets are checked together in one atomic call: one shard until they are partitioned. */
    INT_SETTING("redis", "shards", redis_shards, "1", 1, 1),
    STR_SETTING("redis", "prefix", redis_prefix, "sav"),
    INT_SETTING("redis", "dedup_ttl_days", dedup_ttl_days, "7", 1, 365),
    STR_SETTING("redis", "sentinels", redis_sentinels, "off"),
    STR_SETTING("redis", "master_name", redis_master_name, "sav"),
    SECRET_SETTING("redis", "sentinel_password", redis_sentinel_password, SETTINGS_ANY_SERVICE),
    INT_SETTING("redis", "wait_replicas", redis_wait_replicas, "0", 0, 8),
    INT_SETTING("redis", "wait_ms", redis_wait_ms, "1000", 10, 60000),
    STR_SETTING("intake", "endpoint", endpoint[SVC_INTAKE], "tcp://127.0.0.1:5551"),
    STR_SETTING("intake", "bind", bind[SVC_INTAKE], "first"),
    STR_SETTING("diagnostics", "bind", bind[SVC_DIAGNOSTICS], "first"),
    STR_SETTING("billing", "bind", bind[SVC_BILLING], "first"),
    STR_SETTING("notification", "bind", bind[SVC_NOTIFICATION], "first"),
    INT_SETTING("relay", "claim_ms", relay_claim_ms, "2000", 100, 600000),
    INT_SETTING("relay", "takeover_ms", relay_takeover_ms, "10000", 500, 3600000),
    STR_SETTING("intake", "redis_user", redis_user[SVC_INTAKE], "none"),
    SECRET_SETTING("intake", "redis_password", redis_password[SVC_INTAKE], SVC_INTAKE),
    STR_SETTING("diagnostics", "redis_user", redis_user[SVC_DIAGNOSTICS], "none"),
    SECRET_SETTING("diagnostics", "redis_password", redis_password[SVC_DIAGNOSTICS], SVC_DIAGNOSTICS),
    STR_SETTING("billing", "redis_user", redis_user[SVC_BILLING], "none"),
    SECRET_SETTING("billing", "redis_password", redis_password[SVC_BILLING], SVC_BILLING),
    STR_SETTING("notification", "redis_user", redis_user[SVC_NOTIFICATION], "none"),
    SECRET_SETTING("notification", "redis_password", redis_password[SVC_NOTIFICATION], SVC_NOTIFICATION),
    STR_SETTING("diagnostics", "endpoint", endpoint[SVC_DIAGNOSTICS], "tcp://127.0.0.1:5552"),
    STR_SETTING("billing", "endpoint", endpoint[SVC_BILLING], "tcp://127.0.0.1:5553"),
    STR_SETTING("notification", "endpoint", endpoint[SVC_NOTIFICATION], "tcp://127.0.0.1:5554"),
    STR_SETTING("service", "instance", instance, "1"),
    STR_SETTING("service", "log_level", log_level, "info"),
    INT_SETTING("bus", "max_frame_bytes", max_frame_bytes, "65536", 1024, 16777216),
    INT_SETTING("bus", "socket_max_bytes", socket_max_bytes, "1048576", 1024, 67108864),
    INT_SETTING("relay", "batch", relay_batch, "128", 1, 10000),
    INT_SETTING("relay", "window", relay_window, "1024", 1, 100000),
    INT_SETTING("relay", "ack_timeout_ms", relay_ack_timeout_ms, "1000", 10, 600000),
    INT_SETTING("relay", "backoff_max_ms", relay_backoff_max_ms, "5000", 10, 3600000),
    INT_SETTING("relay", "max_attempts", relay_max_attempts, "60", 1, 1000000),
    INT_SETTING("relay", "scan_ms", relay_scan_ms, "1000", 10, 600000),
    INT_SETTING("client", "timeout_ms", request_timeout_ms, "3000", 10, 600000),
    INT_SETTING("client", "attempts", request_attempts, "3", 1, 100),
    STR_SETTING("client", "identity", identity, "none"),
    STR_SETTING("security", "curve", curve, "on"),
    STR_SETTING("security", "keys_dir", keys_dir, "keys"),
    STR_SETTING("security", "clients", clients_file, "keys/clients"),
    STR_SETTING("catalog", "path", catalog_path, "catalog.json"),
    STR_SETTING("notification", "templates", templates_dir, "../../services/notification/templates"),
    STR_SETTING("notification", "smtp_url", smtp_url, "off"),
    STR_SETTING("notification", "smtp_tls", smtp_tls, "none"),
    STR_SETTING("notification", "mail_from", mail_from, "sav@sav.example"),
    STR_SETTING("notification", "mail_from_name", mail_from_name, "Service après-vente"),
    STR_SETTING("notification", "mail_domain", mail_domain, "sav.example"),
    INT_SETTING("notification", "smtp_timeout_ms", smtp_timeout_ms, "10000", 100, 600000),
    INT_SETTING("notification", "mail_retry_max_ms", mail_retry_max_ms, "60000", 100, 86400000),
    INT_SETTING("notification", "mail_max_attempts", mail_max_attempts, "10", 1, 1000),
    INT_SETTING("notification", "mail_stale_ms", mail_stale_ms, "60000", 1000, 86400000),
    STR_SETTING("notification", "smpp_host", smpp_host, "off"),
    INT_SETTING("notification", "smpp_port", smpp_port, "2775", 1, 65535),
    STR_SETTING("notification", "smpp_system_id", smpp_system_id, "sav"),
    SECRET_SETTING("notification", "smpp_password", smpp_password, SVC_NOTIFICATION),
    STR_SETTING("notification", "smpp_source", smpp_source, "SAV"),
    INT_SETTING("notification", "smpp_window", smpp_window, "10", 1, 100),
    INT_SETTING("notification", "smpp_tps", smpp_tps, "50", 1, 10000),
    INT_SETTING("notification", "smpp_enquire_ms", smpp_enquire_ms, "30000", 100, 3600000),
    INT_SETTING("notification", "smpp_response_ms", smpp_response_ms, "10000", 100, 600000),
    STR_SETTING("notification", "sms_transport", sms_transport, "smpp"),
    STR_SETTING("notification", "http_sms_url", http_sms_url, "off"),
    STR_SETTING("notification", "http_sms_username", http_sms_username, "sav"),
    SECRET_SETTING("notification", "http_sms_password", http_sms_password, SVC_NOTIFICATION),
    INT_SETTING("notification", "http_sms_timeout_ms", http_sms_timeout_ms, "10000", 100, 600000),
    INT_SETTING("notification", "http_sms_tps", http_sms_tps, "50", 1, 10000),
    INT_SETTING("notification", "http_sms_turn_ms", http_sms_turn_ms, "60000", 1000, 86400000),
    STR_SETTING("intake", "http_listen", http_listen[SVC_INTAKE], "off"),
    STR_SETTING("diagnostics", "http_listen", http_listen[SVC_DIAGNOSTICS], "off"),
    STR_SETTING("billing", "http_listen", http_listen[SVC_BILLING], "off"),
    STR_SETTING("notification", "http_listen", http_listen[SVC_NOTIFICATION], "off"),
    STR_SETTING("notification", "http_callback_url", http_callback_url, "off"),
    SECRET_SETTING("notification", "http_callback_key", http_callback_key, SVC_NOTIFICATION),
    INT_SETTING("notification", "sms_retry_max_ms", sms_retry_max_ms, "60000", 100, 86400000),
    INT_SETTING("notification", "sms_max_attempts", sms_max_attempts, "10", 1, 1000),
    INT_SETTING("notification", "sms_stale_ms", sms_stale_ms, "60000", 1000, 86400000),
    STR_SETTING("notification", "sms_quiet_hours", sms_quiet_hours, "21:00-08:00"),
    STR_SETTING("notification", "sms_urgent_events", sms_urgent_events, "none"),
    INT_SETTING("billing", "vat_basis_points", vat_basis_points, "2000", 0, 10000),
    INT_SETTING("billing", "quote_validity_days", quote_validity_days, "30", 1, 365),
    INT_SETTING("billing", "quote_reminder_days", quote_reminder_days, "5", 0, 365),
    INT_SETTING("billing", "business_payment_days", business_payment_days, "30", 0, 60),
    DAYS_SETTING("billing", "payment_reminder_days", payment_reminders, "7,15,30"),
    INT_SETTING("billing", "ecb_rate_bp", ecb_rate_bp, "400", 0, 5000),
    INT_SETTING("billing", "late_penalty_points_bp", late_penalty_points_bp, "1000", 0, 5000),
    INT_SETTING("billing", "recovery_indemnity_cents", recovery_indemnity_cents, "4000", 0, 100000),
    INT_SETTING("billing", "legal_interest_bp", legal_interest_bp, "792", 0, 5000),
    INT_SETTING("billing", "warranty_labour_rate_cents", warranty_labour_rate_cents, "4500", 0, 1000000),
    INT_SETTING("billing", "diagnostic_fee_waived", diagnostic_fee_waived, "1", 0, 1),
    STR_SETTING("billing", "company_name", company_name, "SAV Électroménager France SAS"),
    STR_SETTING("billing", "company_address", company_address, "25 rue de la Réparation, 75011 Paris"),
    STR_SETTING("billing", "company_siret", company_siret, "73282932000074"),
    STR_SETTING("billing", "company_vat", company_vat, "FR44732829320"),
    STR_SETTING("intake", "default_centre", default_centre, "PAR-01"),
    INT_SETTING("sla", "repair_days", sla_days[0], "15", 1, 365),
    INT_SETTING("sla", "installation_days", sla_days[1], "10", 1, 365),
    INT_SETTING("sla", "commissioning_days", sla_days[2], "10", 1, 365),
    INT_SETTING("sla", "preventive_maintenance_days", sla_days[3], "30", 1, 365),
    INT_SETTING("sla", "assistance_days", sla_days[4], "2", 1, 365),
    DAYS_SETTING("intake", "pickup_reminder_days", pickup_reminders, "7,30,90"),
    INT_SETTING("intake", "unclaimed_days", unclaimed_days, "365", 1, 3650),
    INT_SETTING("intake", "complaint_deadline_days", complaint_deadline_days, "15", 1, 365),
    INT_SETTING("intake", "complaint_escalate_days", complaint_escalate_days, "3", 0, 365),
    INT_SETTING("intake", "mediator_after_days", mediator_after_days, "30", 1, 365),
    STR_SETTING("intake", "mediator", mediator, "Médiateur de la consommation CM2C, 49 rue de Ponthieu, 75008 Paris, www.cm2c.net"),
    INT_SETTING("intake", "maintenance_lead_days", maintenance_lead_days, "14", 0, 365),
    INT_SETTING("intake", "scheduler_ms", scheduler_ms, "60000", 100, 86400000),
    INT_SETTING("intake", "archive_after_days", archive_after_days, "730", 0, 36500),
    STR_SETTING("intake", "archive_dir", archive_dir, "archive"),
    INT_SETTING("intake", "pack_after_days", pack_after_days, "2", 0, 36500),
    INT_SETTING("catalog", "check_ms", catalog_check_ms, "2000", 100, 3600000),
};
#define SETTING_COUNT (sizeof(setting_defs) / sizeof(setting_defs[0]))

static const char *service_names[SVC_COUNT] = {"intake", "diagnostics", "billing", "notification"};

const char *settings_service_name(enum service_id id) {
    return id < SVC_COUNT ? service_names[id] : "unknown";
}

int settings_service_id(const char *name) {
    for (int i = 0; i < SVC_COUNT; i++)
        if (strcmp(name, service_names[i]) == 0) return i;
    return -1;
}

static const setting_def *settings_find(const char *section, const char *key) {
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (strcmp(setting_defs[i].section, section) == 0 && strcmp(setting_defs[i].key, key) == 0)
            return &setting_defs[i];
    return NULL;
}

/* Parses "7,30,90" into a schedule: integers in [min, max], strictly increasing. */
static int settings_days_parse(settings_days *out, const setting_def *d, const char *value, const char *where) {
    settings_days days = {0};
    const char *p = value;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (errno || end == p || v < d->min || v > d->max || (days.n && v <= days.day[days.n - 1]) ||
            days.n == SETTINGS_MAX_DAYS || (*end && *end != ',')) {
            err_set("%s: %s.%s must be up to %d increasing numbers of days from %ld to %ld separated by commas, "
                    "got \"%s\"", where, d->section, d->key, SETTINGS_MAX_DAYS, d->min, d->max, value);
            return -1;
        }
        days.day[days.n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    *out = days;
    return 0;
}

/* Checks a secret's value: "none" (kept as "") or file:PATH, kept as it is until settings_read_secrets. */
static int settings_secret(const setting_def *d, char *field, const char *value, const char *where) {
    if (strcmp(value, "none") == 0) {
        field[0] = '\0';
        return 0;
    }
    if (strncmp(value, "file:", 5) != 0 || !value[5]) {
        err_set("%s: %s.%s is a secret: give it as file:PATH (a file only the service's user can read), never in "
                "the configuration itself", where, d->section, d->key);
        return -1;
    }
    if (strlen(value) >= d->size) {
        err_set("%s: %s.%s: the file name is too long", where, d->section, d->key);
        return -1;
    }
    /* The file name appears in error messages and logs, which are UTF-8 JSON. */
    if (validate_utf8(value, strlen(value)) != 0) {
        err_set("%s: %s.%s: the file name is not valid UTF-8", where, d->section, d->key);
        return -1;
    }
    memcpy(field, value, strlen(value) + 1);
    return 0;
}

/* Replaces a secret's file:PATH (relative to the configuration's directory) by what the file holds: one line,
 * the file readable by its owner and group only. */
static int settings_read_secret(settings *s, const setting_def *d, char *field) {
    char path[PATH_MAX];
    struct stat st;
    settings_resolve_path(s, field + 5, path, sizeof(path));
    if (stat(path, &st) != 0) {
        err_set("%s.%s: %s: %s", d->section, d->key, path, strerror(errno));
        return -1;
    }
    if (st.st_mode & S_IRWXO) {
        err_set("%s.%s: %s is readable by others: chmod o-rwx %s", d->section, d->key, path, path);
        return -1;
    }
    size_t len;
    char *text = textfile_read(path, d->size + 2, &len);
    if (!text) {
        char why[512];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("%s.%s: %s: %s", d->section, d->key, path, why);
        return -1;
    }
    if (len > 0 && text[len - 1] == '\n') text[--len] = '\0';
    if (len > 0 && text[len - 1] == '\r') text[--len] = '\0';
    int rc = -1;
    if (len == 0 || len >= d->size)
        err_set("%s.%s: %s holds %s", d->section, d->key, path, len ? "more than one short line" : "nothing");
    else if (validate_text("secret", text, d->size - 1, 0) != 0)
        err_set("%s.%s: %s must hold one line of printable UTF-8", d->section, d->key, path);
    else
        memcpy(field, text, len + 1), rc = 0;
    memset(text, 0, len);
    free(text);
    return rc;
}

/* Whether this process reads the secret d: its own service's, or one every service needs. */
static int settings_owns(const settings *s, const setting_def *d) {
    return d->min == s->self || (d->min == SETTINGS_ANY_SERVICE && s->self < SVC_COUNT);
}

/* Reads the secrets this process owns (the others keep only their files' names), once the environment had its
 * say: SAV_<SECTION>_<KEY> may name another file. */
static int settings_read_secrets(settings *s) {
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_def *d = &setting_defs[i];
        char *field = (char *)s + d->offset;
        if (d->type == ST_SECRET && settings_owns(s, d) && field[0] && settings_read_secret(s, d, field) != 0)
            return -1;
    }
    return 0;
}

/* Stores one value into its field; where names the origin for the error message. */
static int settings_assign(settings *s, const setting_def *d, const char *value, const char *where) {
    char *field = (char *)s + d->offset;
    if (d->type == ST_DAYS) return settings_days_parse((settings_days *)(void *)field, d, value, where);
    if (d->type == ST_SECRET) return settings_secret(d, field, value, where);
    if (d->type == ST_STR) {
        size_t len = strlen(value);
        if (len == 0) {
            err_set("%s: %s.%s is empty", where, d->section, d->key);
            return -1;
        }
        if (len >= d->size) {
            err_set("%s: %s.%s is too long (%zu bytes, at most %zu)", where, d->section, d->key, len, d->size - 1);
            return -1;
        }
        if (validate_utf8(value, len) != 0) {
            err_set("%s: %s.%s is not valid UTF-8", where, d->section, d->key);
            return -1;
        }
        memcpy(field, value, len + 1);
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v < d->min || v > d->max) {
        err_set("%s: %s.%s must be an integer from %ld to %ld, got \"%s\"", where, d->section, d->key, d->min,
                d->max, value);
        return -1;
    }
    *(int *)field = (int)v;
    return 0;
}

static char *settings_trim(char *p) {
    while (isspace((unsigned char)*p)) p++;
    char *e = p + strlen(p);
    while (e > p && isspace((unsigned char)e[-1])) *--e = '\0';
    return p;
}

/* Parses one non-empty, non-comment line. */
static int settings_line(settings *s, char *line, char *section, size_t seclen, const char *where) {
    if (line[0] == '[') {
        char *close = strchr(line, ']');
        if (!close || close[1] != '\0' || close == line + 1) {
            err_set("%s: a section header must look like [name]", where);
            return -1;
        }
        *close = '\0';
        snprintf(section, seclen, "%s", line + 1);
        return 0;
    }
    char *eq = strchr(line, '=');
    if (!eq) {
        err_set("%s: expected \"key = value\" or \"[section]\"", where);
        return -1;
    }
    *eq = '\0';
    char *key = settings_trim(line), *value = eq + 1;
    /* A '#' after whitespace starts a comment, as on a line of its own. */
    for (char *p = value; *p; p++)
        if (*p == '#' && (p == value || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    value = settings_trim(value);
    if (!section[0]) {
        err_set("%s: key \"%s\" appears before any [section]", where, key);
        return -1;
    }
    const setting_def *d = settings_find(section, key);
    if (!d) {
        err_set("%s: unknown setting %s.%s", where, section, key);
        return -1;
    }
    return settings_assign(s, d, value, where);
}

/* Reads the lines of f; name is the file's name in error messages. */
static int settings_parse_stream(settings *s, FILE *f, const char *name) {
    char line[1024], section[64] = "", where[PATH_MAX + 32];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", name, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            err_set("%s: line longer than %zu bytes", where, sizeof(line) - 2);
            rc = -1;
            break;
        }
        char *p = settings_trim(line);
        if (*p == '\0' || *p == '#' || *p == ';') continue;
        rc = settings_line(s, p, section, sizeof(section), where);
    }
    if (rc == 0 && ferror(f)) {
        err_set("cannot read config file %s", name);
        rc = -1;
    }
    return rc;
}

static int settings_apply_env(settings *s) {
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        char name[128];
        size_t n = (size_t)snprintf(name, sizeof(name), "SAV_%s_%s", setting_defs[i].section, setting_defs[i].key);
        for (size_t j = 0; j < n; j++) name[j] = (char)toupper((unsigned char)name[j]);
        const char *v = getenv(name);
        if (v && settings_assign(s, &setting_defs[i], v, name) != 0) return -1;
    }
    return 0;
}

/* The placeholders of notification.http_sms_url, each replaced by its URL-escaped value at send time. */
static const char *const settings_sms_url_fields[] = {"username", "password", "from", "to", "text", "coding",
                                                      "charset", "dlr_mask", "dlr_url", NULL};

static int settings_check_sms_url(const char *url) {
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        err_set("notification.http_sms_url must be off or an http:// or https:// URL template, got \"%s\"", url);
        return -1;
    }
    for (const char *p = strchr(url, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        size_t n = close ? (size_t)(close - p - 1) : 0;
        int known = 0;
        for (int i = 0; close && settings_sms_url_fields[i]; i++)
            known |= strlen(settings_sms_url_fields[i]) == n && strncmp(p + 1, settings_sms_url_fields[i], n) == 0;
        if (!known) {
            err_set("notification.http_sms_url: unknown placeholder at \"%.20s\" (known: {username} {password} {from} "
                    "{to} {text} {coding} {charset} {dlr_mask} {dlr_url})", p);
            return -1;
        }
    }
    if (!strstr(url, "{to}") || !strstr(url, "{text}") || !strstr(url, "{dlr_url}")) {
        err_set("notification.http_sms_url must carry {to}, {text} and {dlr_url}");
        return -1;
    }
    return 0;
}

static int settings_check_sms_http(const settings *s) {
    if (strcmp(s->sms_transport, "smpp") != 0 && strcmp(s->sms_transport, "http") != 0) {
        err_set("notification.sms_transport must be smpp or http, got \"%s\"", s->sms_transport);
        return -1;
    }
    char host[SETTINGS_STR];
    int port;
    for (int i = 0; i < SVC_COUNT; i++) {
        char what[64];
        snprintf(what, sizeof(what), "%s.http_listen", service_names[i]);
        if (strcmp(s->http_listen[i], "off") != 0 &&
            httpd_parse_listen(what, s->http_listen[i], host, sizeof(host), &port) != 0)
            return -1;
        for (int j = 0; j < i; j++)
            if (strcmp(s->http_listen[i], "off") != 0 && strcmp(s->http_listen[i], s->http_listen[j]) == 0) {
                err_set("%s and %s share the HTTP listener %s", service_names[j], service_names[i], s->http_listen[i]);
                return -1;
            }
    }
    if (strcmp(s->http_sms_url, "off") == 0) return 0;
    if (settings_check_sms_url(s->http_sms_url) != 0) return -1;
    if (strcmp(s->http_listen[SVC_NOTIFICATION], "off") == 0) {
        err_set("notification.http_sms_url needs notification.http_listen: the gateway reports there");
        return -1;
    }
    if (strcmp(s->http_callback_url, "off") != 0 && strncmp(s->http_callback_url, "http://", 7) != 0 &&
        strncmp(s->http_callback_url, "https://", 8) != 0) {
        err_set("notification.http_callback_url must be off or an http:// or https:// URL, got \"%s\"",
                s->http_callback_url);
        return -1;
    }
    /* Only the notification service holds the secrets themselves; the others see their files' names. */
    if (s->self == SVC_NOTIFICATION && strlen(s->http_callback_key) < 16) {
        err_set("notification.http_callback_key must have at least 16 characters with notification.http_sms_url on");
        return -1;
    }
    return 0;
}

/* Each service may connect to Redis as a user of its own (an ACL user with only what it needs). */
static int settings_check_redis_users(const settings *s) {
    for (int i = 0; i < SVC_COUNT; i++) {
        const char *user = s->redis_user[i];
        if (strcmp(user, "none") != 0 && validate_token("redis user", user) != 0) {
            char why[256];
            snprintf(why, sizeof(why), "%s", err_get());
            err_set("%s.redis_user: %s", service_names[i], why);
            return -1;
        }
        if (s->self == i && strcmp(user, "none") != 0 && !s->redis_password[i][0]) {
            err_set("%s.redis_user %s needs %s.redis_password (file:PATH)", service_names[i], user, service_names[i]);
            return -1;
        }
    }
    return 0;
}

/* The item of a comma list that starts at p (len bytes) without the blanks around it, the operator's layout. */
static size_t settings_list_item(const char *p, size_t len, const char **item) {
    while (len && (*p == ' ' || *p == '\t')) p++, len--;
    while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    *item = p;
    return len;
}

int settings_endpoints(const settings *s, enum service_id id, char out[][SETTINGS_STR]) {
    int n = 0;
    /* Every item counts, an empty one too (between two commas, or after the last): the check refuses it. */
    for (const char *p = s->endpoint[id]; n < SETTINGS_MAX_INSTANCES; p++) {
        size_t len = strcspn(p, ",");
        const char *item;
        size_t item_len = settings_list_item(p, len, &item);
        snprintf(out[n++], SETTINGS_STR, "%.*s", (int)item_len, item);
        p += len;
        if (!*p) break;
    }
    return n;
}

void settings_bind_endpoint(const settings *s, enum service_id id, char out[SETTINGS_STR]) {
    char all[SETTINGS_MAX_INSTANCES][SETTINGS_STR];
    if (strcmp(s->bind[id], "first") != 0 || settings_endpoints(s, id, all) == 0)
        snprintf(out, SETTINGS_STR, "%s", s->bind[id]);
    else
        snprintf(out, SETTINGS_STR, "%s", all[0]);
}

/* Whether bind is tcp://ADDRESS:PORT with the port of the tcp:// endpoint: the address clients resolve (a
 * Kubernetes pod's DNS name) is not one a socket can bind, its IP address is. */
static int settings_same_tcp_port(const char *bind, const char *endpoint) {
    if (strncmp(bind, "tcp://", 6) != 0 || strncmp(endpoint, "tcp://", 6) != 0) return 0;
    const char *b = strrchr(bind, ':'), *e = strrchr(endpoint, ':');
    return b > bind + 5 && e > endpoint + 5 && b[1] && strspn(b + 1, "0123456789") == strlen(b + 1) &&
           strcmp(b, e) == 0;
}

/* Each service's instances: endpoints that are tcp:// or ipc://, shared with no other service; the bound one
 * among them. */
static int settings_check_endpoints(const settings *s) {
    char all[SVC_COUNT][SETTINGS_MAX_INSTANCES][SETTINGS_STR];
    int n[SVC_COUNT];
    for (int i = 0; i < SVC_COUNT; i++) {
        n[i] = settings_endpoints(s, i, all[i]);
        int commas = 0;
        for (const char *c = s->endpoint[i]; *c; c++) commas += *c == ',';
        if (commas >= SETTINGS_MAX_INSTANCES) {
            err_set("%s.endpoint lists more than %d instances", service_names[i], SETTINGS_MAX_INSTANCES);
            return -1;
        }
        for (int k = 0; k < n[i]; k++) {
            const char *e = all[i][k];
            if (strncmp(e, "tcp://", 6) != 0 && strncmp(e, "ipc://", 6) != 0) {
                err_set("%s.endpoint must list endpoints starting with tcp:// or ipc://, separated by commas, got "
                        "\"%s\"", service_names[i], s->endpoint[i]);
                return -1;
            }
            for (int j = 0; j < i; j++)
                for (int l = 0; l < n[j]; l++)
                    if (strcmp(e, all[j][l]) == 0) {
                        err_set("%s and %s share the endpoint %s", service_names[j], service_names[i], e);
                        return -1;
                    }
        }
        int bound = strcmp(s->bind[i], "first") == 0;
        for (int k = 0; k < n[i] && !bound; k++)
            bound = strcmp(s->bind[i], all[i][k]) == 0 || settings_same_tcp_port(s->bind[i], all[i][k]);
        if (!bound) {
            err_set("%s.bind must be first, one of %s.endpoint, or a tcp:// address on the port of one of them "
                    "(the endpoint a host name, bound at its IP address), got \"%s\"", service_names[i],
                    service_names[i], s->bind[i]);
            return -1;
        }
    }
    if (s->relay_takeover_ms < 2 * s->relay_claim_ms) {
        err_set("relay.takeover_ms (%d) must be at least twice relay.claim_ms (%d): a live relay keeps what it holds "
                "every claim_ms", s->relay_takeover_ms, s->relay_claim_ms);
        return -1;
    }
    return 0;
}

/* Parses "host:port" or "[v6]:port" of len bytes; port 0 when it is missing or not a number. */
static void settings_host_port(const char *item, size_t len, char host[SETTINGS_STR], int *port) {
    size_t colon = len;
    while (colon > 0 && item[colon - 1] != ':') colon--;
    size_t hlen = colon ? colon - 1 : len, plen = colon ? len - colon : 0;
    const char *h = item;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') h++, hlen -= 2;
    snprintf(host, SETTINGS_STR, "%.*s", (int)hlen, h);
    int value = 0;
    *port = 0;
    if (plen == 0 || plen > 5) return;
    for (size_t i = 0; i < plen; i++) {
        if (!isdigit((unsigned char)item[colon + i])) return;
        value = value * 10 + (item[colon + i] - '0');
    }
    *port = value;
}

int settings_sentinels(const settings *s, char host[][SETTINGS_STR], int port[]) {
    if (strcmp(s->redis_sentinels, "off") == 0) return 0;
    int n = 0;
    for (const char *p = s->redis_sentinels; n < SETTINGS_MAX_SENTINELS; p++) {
        size_t len = strcspn(p, ",");
        const char *item;
        size_t item_len = settings_list_item(p, len, &item);
        settings_host_port(item, item_len, host[n], &port[n]);
        n++;
        p += len;
        if (!*p) break;
    }
    return n;
}

/* redis.sentinels: off, or up to eight host:port; a master name the sentinels can be asked about; a WAIT that
 * ends before the command's timeout. */
static int settings_check_sentinels(const settings *s) {
    char host[SETTINGS_MAX_SENTINELS][SETTINGS_STR];
    int port[SETTINGS_MAX_SENTINELS], commas = 0;
    for (const char *c = s->redis_sentinels; *c; c++) commas += *c == ',';
    int n = settings_sentinels(s, host, port);
    if (commas >= SETTINGS_MAX_SENTINELS) {
        err_set("redis.sentinels lists more than %d sentinels", SETTINGS_MAX_SENTINELS);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (!host[i][0] || port[i] < 1 || port[i] > 65535) {
            err_set("redis.sentinels must be off or host:port items separated by commas, got \"%s\"",
                    s->redis_sentinels);
            return -1;
        }
    if (n && s->redis_host[0] == '/') {
        err_set("redis.sentinels name the master: redis.host cannot also be a unix socket (%s)", s->redis_host);
        return -1;
    }
    if (s->redis_wait_replicas > 0 && s->redis_wait_ms >= s->redis_timeout_ms) {
        err_set("redis.wait_ms (%d) must be below redis.timeout_ms (%d): a write waits for its replicas within one "
                "command's time", s->redis_wait_ms, s->redis_timeout_ms);
        return -1;
    }
    return validate_token("redis.master_name", s->redis_master_name);
}

static int settings_check(const settings *s) {
    if (settings_check_endpoints(s) != 0 || settings_check_sentinels(s) != 0) return -1;
    if (s->max_frame_bytes > s->socket_max_bytes) {
        err_set("bus.max_frame_bytes (%d) must not exceed bus.socket_max_bytes (%d)", s->max_frame_bytes,
                s->socket_max_bytes);
        return -1;
    }
    if (validate_token("redis.prefix", s->redis_prefix) != 0 || validate_token("service.instance", s->instance) != 0)
        return -1;
    if (strcmp(s->smtp_url, "off") != 0 && strncmp(s->smtp_url, "smtp://", 7) != 0 && strncmp(s->smtp_url, "smtps://", 8) != 0) {
        err_set("notification.smtp_url must be off, smtp://host:port or smtps://host:port, got \"%s\"", s->smtp_url);
        return -1;
    }
    if (strcmp(s->smtp_tls, "none") != 0 && strcmp(s->smtp_tls, "starttls") != 0) {
        err_set("notification.smtp_tls must be none or starttls, got \"%s\"", s->smtp_tls);
        return -1;
    }
    if (validate_email(s->mail_from) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("notification.mail_from: %s", why);
        return -1;
    }
    /* The right-hand side of every Message-ID: a bad one would fail every e-mail at send time. */
    if (!s->mail_domain[0] ||
        strspn(s->mail_domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(s->mail_domain)) {
        err_set("notification.mail_domain must be a domain name (ASCII letters, digits, dots, dashes), got \"%s\"",
                s->mail_domain);
        return -1;
    }
    if (settings_quiet_hours(s->sms_quiet_hours, NULL, NULL) != 0) return -1;
    /* SMPP 3.4 caps these C-octet strings: system_id 16, password 9, an alphanumeric source 11 characters. */
    if (strlen(s->smpp_system_id) > 15 || (s->self == SVC_NOTIFICATION && strlen(s->smpp_password) > 8) ||
        strlen(s->smpp_source) > 11 || !s->smpp_source[0]) {
        err_set("notification.smpp_system_id (at most 15 characters), smpp_password (8) and smpp_source (1 to 11) "
                "do not fit SMPP 3.4");
        return -1;
    }
    if (settings_check_sms_http(s) != 0 || settings_check_redis_users(s) != 0) return -1;
    if (strcmp(s->curve, "on") != 0 && strcmp(s->curve, "off") != 0) {
        err_set("security.curve must be on or off, got \"%s\"", s->curve);
        return -1;
    }
    if (strcmp(s->identity, "none") != 0 && keys_name_check(s->identity) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("client.identity: %s", why);
        return -1;
    }
    if (s->redis_host[0] != '/' && s->redis_port == 0) {
        err_set("redis.port must be set unless redis.host is a unix socket path");
        return -1;
    }
    return 0;
}

int settings_quiet_hours(const char *spec, int *start, int *end) {
    unsigned h1, m1, h2, m2;
    char tail;
    if (start) *start = *end = -1;
    if (strcmp(spec, "off") == 0) return 0;
    if (sscanf(spec, "%2u:%2u-%2u:%2u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 23 || h2 > 23 || m1 > 59 ||
        m2 > 59 || h1 * 60 + m1 == h2 * 60 + m2) {
        err_set("notification.sms_quiet_hours must be off or HH:MM-HH:MM (Europe/Paris, start and end differ), "
                "got \"%s\"", spec);
        return -1;
    }
    if (start) *start = (int)(h1 * 60 + m1), *end = (int)(h2 * 60 + m2);
    return 0;
}

/* Sets the defaults, whose secrets this process reads, and the file name that relative paths start from; 0 or -1
 * with err. */
static int settings_begin(settings *s, const char *name, enum service_id self) {
    memset(s, 0, sizeof(*s));
    s->self = (int)self;
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (settings_assign(s, &setting_defs[i], setting_defs[i].def, "default") != 0) return -1;
    if (strlen(name) >= sizeof(s->path)) {
        err_set("config path is too long");
        return -1;
    }
    snprintf(s->path, sizeof(s->path), "%s", name);
    return 0;
}

/* Reads f (closed here), then the environment, then the secrets, then checks the whole; 0 or -1 with err. */
static int settings_read(settings *s, FILE *f, const char *name) {
    int rc = settings_parse_stream(s, f, name);
    fclose(f);
    if (rc != 0 || settings_apply_env(s) != 0 || settings_read_secrets(s) != 0) return -1;
    return settings_check(s);
}

int settings_load(settings *s, const char *path) {
    return settings_load_service(s, path, SVC_COUNT);
}

int settings_load_service(settings *s, const char *path, enum service_id self) {
    if (!path) path = getenv("SAV_CONFIG");
    if (!path || !*path) path = "deploy/local/sav.conf";
    if (settings_begin(s, path, self) != 0) return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        err_set("cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    return settings_read(s, f, path);
}

int settings_load_text(settings *s, const char *text, size_t len, const char *name) {
    if (settings_begin(s, name, SVC_COUNT) != 0) return -1;
    /* The same line reader as for a file, so that a text and a file with the same bytes load alike. */
    FILE *f = fmemopen((void *)text, len, "r");
    if (!f) {
        err_set("cannot read the configuration text %s: %s", name, strerror(errno));
        return -1;
    }
    return settings_read(s, f, name);
}

int settings_get(const settings *s, const char *section, const char *key, char *out, size_t outlen) {
    const setting_def *d = settings_find(section, key);
    if (!d) {
        err_set("unknown setting %s.%s", section, key);
        return -1;
    }
    const char *field = (const char *)s + d->offset;
    if (d->type == ST_SECRET) {
        snprintf(out, outlen, "%s", !field[0] ? "none" : settings_owns(s, d) ? "(secret, read from its file)" : field);
    } else if (d->type == ST_STR) {
        snprintf(out, outlen, "%s", field);
    } else if (d->type == ST_DAYS) {
        const settings_days *days = (const settings_days *)(const void *)field;
        size_t pos = 0;
        out[0] = '\0';
        for (int i = 0; i < days->n && pos < outlen; i++)
            pos += (size_t)snprintf(out + pos, outlen - pos, "%s%d", i ? "," : "", days->day[i]);
    } else {
        snprintf(out, outlen, "%d", *(const int *)field);
    }
    return 0;
}

void settings_resolve_path(const settings *s, const char *path, char *out, size_t outlen) {
    const char *slash = strrchr(s->path, '/');
    if (path[0] == '/' || !slash)
        snprintf(out, outlen, "%s", path);
    else
        snprintf(out, outlen, "%.*s/%s", (int)(slash - s->path), s->path, path);
}
