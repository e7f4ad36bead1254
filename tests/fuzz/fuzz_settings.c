/* The configuration parser on any text. A configuration that loads satisfies every bound stated here again,
 * independently of common/settings.c (integers in range, strings non-empty, NUL-terminated, UTF-8, day
 * schedules increasing, secrets empty or file:PATH), and the cross checks (each service's instances at tcp://
 * or ipc:// endpoints shared with no other service, the bound one among them or on one's tcp port, takeover
 * after claim, frame below socket limit, mail sender, SMPP lengths); written back as "[section] key = value"
 * from settings_get it loads again to the same values. A refusal always says why. */
#include "fuzz.h"

#include "settings.h"
#include "err.h"
#include "validate.h"

enum kind { K_INT, K_STR, K_DAYS, K_SECRET };

typedef struct key {
    const char *section, *name;
    enum kind kind;
    size_t offset, size;
    long min, max;
} key;

#define I(sec, k, field, lo, hi) {sec, k, K_INT, offsetof(settings, field), 0, lo, hi}
#define S(sec, k, field) {sec, k, K_STR, offsetof(settings, field), sizeof(((settings *)0)->field), 0, 0}
#define D(sec, k, field) {sec, k, K_DAYS, offsetof(settings, field), 0, 1, 3650}
/* A secret as a tool loads it: empty for none, else the file:PATH that names it (its content is never read). */
#define P(sec, k, field) {sec, k, K_SECRET, offsetof(settings, field), sizeof(((settings *)0)->field), 0, 0}

static const key keys[] = {
    S("redis", "host", redis_host),
    I("redis", "port", redis_port, 0, 65535),
    I("redis", "timeout_ms", redis_timeout_ms, 10, 60000),
    I("redis", "shards", redis_shards, 1, 1),
    S("redis", "prefix", redis_prefix),
    I("redis", "dedup_ttl_days", dedup_ttl_days, 1, 365),
    S("intake", "endpoint", endpoint[SVC_INTAKE]),
    S("diagnostics", "endpoint", endpoint[SVC_DIAGNOSTICS]),
    S("billing", "endpoint", endpoint[SVC_BILLING]),
    S("notification", "endpoint", endpoint[SVC_NOTIFICATION]),
    S("intake", "bind", bind[SVC_INTAKE]),
    S("diagnostics", "bind", bind[SVC_DIAGNOSTICS]),
    S("billing", "bind", bind[SVC_BILLING]),
    S("notification", "bind", bind[SVC_NOTIFICATION]),
    S("intake", "http_listen", http_listen[SVC_INTAKE]),
    S("diagnostics", "http_listen", http_listen[SVC_DIAGNOSTICS]),
    S("billing", "http_listen", http_listen[SVC_BILLING]),
    S("notification", "http_listen", http_listen[SVC_NOTIFICATION]),
    S("intake", "redis_user", redis_user[SVC_INTAKE]),
    S("diagnostics", "redis_user", redis_user[SVC_DIAGNOSTICS]),
    S("billing", "redis_user", redis_user[SVC_BILLING]),
    S("notification", "redis_user", redis_user[SVC_NOTIFICATION]),
    P("intake", "redis_password", redis_password[SVC_INTAKE]),
    P("diagnostics", "redis_password", redis_password[SVC_DIAGNOSTICS]),
    P("billing", "redis_password", redis_password[SVC_BILLING]),
    P("notification", "redis_password", redis_password[SVC_NOTIFICATION]),
    S("client", "identity", identity),
    S("security", "curve", curve),
    S("security", "keys_dir", keys_dir),
    S("security", "clients", clients_file),
    S("service", "instance", instance),
    S("service", "log_level", log_level),
    I("bus", "max_frame_bytes", max_frame_bytes, 1024, 16777216),
    I("bus", "socket_max_bytes", socket_max_bytes, 1024, 67108864),
    I("relay", "batch", relay_batch, 1, 10000),
    I("relay", "window", relay_window, 1, 100000),
    I("relay", "ack_timeout_ms", relay_ack_timeout_ms, 10, 600000),
    I("relay", "backoff_max_ms", relay_backoff_max_ms, 10, 3600000),
    I("relay", "max_attempts", relay_max_attempts, 1, 1000000),
    I("relay", "scan_ms", relay_scan_ms, 10, 600000),
    I("relay", "claim_ms", relay_claim_ms, 100, 600000),
    I("relay", "takeover_ms", relay_takeover_ms, 500, 3600000),
    I("client", "timeout_ms", request_timeout_ms, 10, 600000),
    I("client", "attempts", request_attempts, 1, 100),
    S("catalog", "path", catalog_path),
    S("notification", "templates", templates_dir),
    S("notification", "smtp_url", smtp_url),
    S("notification", "smtp_tls", smtp_tls),
    S("notification", "mail_from", mail_from),
    S("notification", "mail_from_name", mail_from_name),
    S("notification", "mail_domain", mail_domain),
    I("notification", "smtp_timeout_ms", smtp_timeout_ms, 100, 600000),
    I("notification", "mail_retry_max_ms", mail_retry_max_ms, 100, 86400000),
    I("notification", "mail_max_attempts", mail_max_attempts, 1, 1000),
    I("notification", "mail_stale_ms", mail_stale_ms, 1000, 86400000),
    S("notification", "smpp_host", smpp_host),
    I("notification", "smpp_port", smpp_port, 1, 65535),
    S("notification", "smpp_system_id", smpp_system_id),
    P("notification", "smpp_password", smpp_password),
    S("notification", "smpp_source", smpp_source),
    I("notification", "smpp_window", smpp_window, 1, 100),
    I("notification", "smpp_tps", smpp_tps, 1, 10000),
    I("notification", "smpp_enquire_ms", smpp_enquire_ms, 100, 3600000),
    I("notification", "smpp_response_ms", smpp_response_ms, 100, 600000),
    I("notification", "sms_retry_max_ms", sms_retry_max_ms, 100, 86400000),
    I("notification", "sms_max_attempts", sms_max_attempts, 1, 1000),
    I("notification", "sms_stale_ms", sms_stale_ms, 1000, 86400000),
    S("notification", "sms_quiet_hours", sms_quiet_hours),
    S("notification", "sms_urgent_events", sms_urgent_events),
    S("notification", "sms_transport", sms_transport),
    S("notification", "http_sms_url", http_sms_url),
    S("notification", "http_sms_username", http_sms_username),
    P("notification", "http_sms_password", http_sms_password),
    I("notification", "http_sms_timeout_ms", http_sms_timeout_ms, 100, 600000),
    I("notification", "http_sms_tps", http_sms_tps, 1, 10000),
    I("notification", "http_sms_turn_ms", http_sms_turn_ms, 1000, 86400000),
    S("notification", "http_callback_url", http_callback_url),
    P("notification", "http_callback_key", http_callback_key),
    I("billing", "vat_basis_points", vat_basis_points, 0, 10000),
    I("billing", "quote_validity_days", quote_validity_days, 1, 365),
    I("billing", "quote_reminder_days", quote_reminder_days, 0, 365),
    I("billing", "business_payment_days", business_payment_days, 0, 60),
    D("billing", "payment_reminder_days", payment_reminders),
    I("billing", "ecb_rate_bp", ecb_rate_bp, 0, 5000),
    I("billing", "late_penalty_points_bp", late_penalty_points_bp, 0, 5000),
    I("billing", "recovery_indemnity_cents", recovery_indemnity_cents, 0, 100000),
    I("billing", "legal_interest_bp", legal_interest_bp, 0, 5000),
    I("billing", "warranty_labour_rate_cents", warranty_labour_rate_cents, 0, 1000000),
    I("billing", "diagnostic_fee_waived", diagnostic_fee_waived, 0, 1),
    S("billing", "company_name", company_name),
    S("billing", "company_address", company_address),
    S("billing", "company_siret", company_siret),
    S("billing", "company_vat", company_vat),
    S("intake", "default_centre", default_centre),
    I("sla", "repair_days", sla_days[0], 1, 365),
    I("sla", "installation_days", sla_days[1], 1, 365),
    I("sla", "commissioning_days", sla_days[2], 1, 365),
    I("sla", "preventive_maintenance_days", sla_days[3], 1, 365),
    I("sla", "assistance_days", sla_days[4], 1, 365),
    D("intake", "pickup_reminder_days", pickup_reminders),
    I("intake", "unclaimed_days", unclaimed_days, 1, 3650),
    I("intake", "complaint_deadline_days", complaint_deadline_days, 1, 365),
    I("intake", "complaint_escalate_days", complaint_escalate_days, 0, 365),
    I("intake", "mediator_after_days", mediator_after_days, 1, 365),
    S("intake", "mediator", mediator),
    I("intake", "maintenance_lead_days", maintenance_lead_days, 0, 365),
    I("intake", "scheduler_ms", scheduler_ms, 100, 86400000),
    I("catalog", "check_ms", catalog_check_ms, 100, 3600000),
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* bind may be any tcp:// address on the port of a tcp:// endpoint (a pod's IP for its DNS name). */
static int same_tcp_port(const char *bind, const char *endpoint) {
    const char *b = strrchr(bind, ':'), *e = strrchr(endpoint, ':');
    return strncmp(bind, "tcp://", 6) == 0 && strncmp(endpoint, "tcp://", 6) == 0 && b && e && strcmp(b, e) == 0 &&
           b[1] != '\0';
}

static void check_bounds(const settings *s) {
    for (size_t i = 0; i < NKEYS; i++) {
        const key *k = &keys[i];
        const char *field = (const char *)s + k->offset;
        if (k->kind == K_INT) {
            int v = *(const int *)(const void *)field;
            FUZZ_CHECK(v >= k->min && v <= k->max);
        } else if (k->kind == K_STR || k->kind == K_SECRET) {
            const char *nul = memchr(field, 0, k->size);
            FUZZ_CHECK(nul && (nul > field || k->kind == K_SECRET));
            FUZZ_CHECK(validate_utf8(field, (size_t)(nul - field)) == 0);
            FUZZ_CHECK(k->kind == K_STR || nul == field || strncmp(field, "file:", 5) == 0);
        } else {
            const settings_days *d = (const settings_days *)(const void *)field;
            FUZZ_CHECK(d->n >= 0 && d->n <= SETTINGS_MAX_DAYS);
            for (int j = 0; j < d->n; j++) {
                FUZZ_CHECK(d->day[j] >= k->min && d->day[j] <= k->max);
                FUZZ_CHECK(j == 0 || d->day[j] > d->day[j - 1]);
            }
        }
    }
    static char all[SVC_COUNT][SETTINGS_MAX_INSTANCES][SETTINGS_STR];
    int n[SVC_COUNT];
    for (int i = 0; i < SVC_COUNT; i++) {
        n[i] = settings_endpoints(s, i, all[i]);
        FUZZ_CHECK(n[i] >= 1 && n[i] <= SETTINGS_MAX_INSTANCES);
        int bound = strcmp(s->bind[i], "first") == 0;
        for (int k = 0; k < n[i]; k++) {
            FUZZ_CHECK(strncmp(all[i][k], "tcp://", 6) == 0 || strncmp(all[i][k], "ipc://", 6) == 0);
            bound |= strcmp(s->bind[i], all[i][k]) == 0 || same_tcp_port(s->bind[i], all[i][k]);
            for (int j = 0; j < i; j++)
                for (int l = 0; l < n[j]; l++) FUZZ_CHECK(strcmp(all[i][k], all[j][l]) != 0);
        }
        FUZZ_CHECK(bound);
    }
    FUZZ_CHECK(s->relay_takeover_ms >= 2 * s->relay_claim_ms);
    FUZZ_CHECK(s->max_frame_bytes <= s->socket_max_bytes);
    FUZZ_CHECK(validate_email(s->mail_from) == 0);
    FUZZ_CHECK(strspn(s->mail_domain, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") ==
               strlen(s->mail_domain));
    FUZZ_CHECK(strlen(s->smpp_system_id) <= 15 && strlen(s->smpp_source) <= 11);
    FUZZ_CHECK(strcmp(s->smtp_tls, "none") == 0 || strcmp(s->smtp_tls, "starttls") == 0);
    int start, end;
    FUZZ_CHECK(settings_quiet_hours(s->sms_quiet_hours, &start, &end) == 0);
    FUZZ_CHECK((start == -1 && end == -1) || (start >= 0 && start < 1440 && end >= 0 && end < 1440 && start != end));
    FUZZ_CHECK(validate_token("prefix", s->redis_prefix) == 0 && validate_token("instance", s->instance) == 0);
}

/* Writes every key back as a configuration text from settings_get and loads it again. */
static void check_round_trip(const settings *s) {
    size_t cap = NKEYS * (SETTINGS_STR + 96), len = 0;
    char *text = malloc(cap), value[SETTINGS_STR * 2];
    if (!text) abort();
    for (size_t i = 0; i < NKEYS; i++) {
        FUZZ_CHECK(settings_get(s, keys[i].section, keys[i].name, value, sizeof(value)) == 0);
        len += (size_t)snprintf(text + len, cap - len, "[%s]\n%s = %s\n", keys[i].section, keys[i].name, value);
    }
    FUZZ_CHECK(len < cap);
    settings again;
    if (settings_load_text(&again, text, len, s->path) != 0) {
        fprintf(stderr, "written back, the configuration does not load: %s\n", err_get());
        abort();
    }
    /* Key by key: a key given twice leaves bytes of its first value after the NUL. */
    char before[SETTINGS_STR * 2];
    for (size_t i = 0; i < NKEYS; i++) {
        settings_get(s, keys[i].section, keys[i].name, before, sizeof(before));
        settings_get(&again, keys[i].section, keys[i].name, value, sizeof(value));
        FUZZ_CHECK(strcmp(before, value) == 0);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static settings s;
    err_set("%s", "");
    if (settings_load_text(&s, (const char *)data, size, "fuzz.conf") != 0) {
        FUZZ_CHECK(strncmp(err_get(), "unknown error", 13) != 0);
        return 0;
    }
    check_bounds(&s);
    check_round_trip(&s);
    return 0;
}
