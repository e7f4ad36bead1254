#include "smsgw.h"
#include "clock.h"
#include "err.h"
#include "gsm.h"
#include "httpd.h"
#include "log.h"
#include "service.h"
#include "smsq.h"
#include "store.h"
#include "validate.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SMSGW_BATCH 10
#define SMSGW_IDLE_MS 100
#define SMSGW_URL_MAX 16384
#define SMSGW_ANSWER_MAX 200
#define SMSGW_DLR_MASK "27" /* 1 delivered + 2 not delivered + 8 accepted + 16 refused by the SMSC */

struct smsgw {
    const settings *cfg;
    pthread_t thread;
    volatile sig_atomic_t stop;
    smsq q;       /* the sender thread's */
    smsq cb;      /* the listener thread's (the service's HTTP listener serves /sms/dlr and /sms/mo) */
    CURL *curl;
    char callback_base[SETTINGS_STR + 8];
    int64_t next_send_ms, next_renew_ms;
    char answer[SMSGW_ANSWER_MAX + 1]; /* the first line of the gateway's last answer */
    size_t answer_len;
    int answer_done;
};

static void smsgw_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Keeps the first line of the gateway's answer, printable, for the notification's last_answer. */
static size_t smsgw_collect(char *data, size_t size, size_t n, void *arg) {
    smsgw *g = arg;
    for (size_t i = 0; i < size * n && !g->answer_done; i++) {
        unsigned char ch = (unsigned char)data[i];
        if (ch == '\r' || ch == '\n') {
            g->answer_done = g->answer_len > 0;
            continue;
        }
        g->answer[g->answer_len++] = ch < 0x20 || ch == 0x7F ? ' ' : (char)ch;
        g->answer_done = g->answer_len == SMSGW_ANSWER_MAX;
    }
    g->answer[g->answer_len] = '\0';
    return size * n;
}

/* Appends to the URL being built; 0, or -1 when it would be too long. */
static int smsgw_append(char *url, size_t *len, const char *s, size_t n) {
    if (*len + n >= SMSGW_URL_MAX) {
        err_set("the gateway URL would be longer than %d bytes", SMSGW_URL_MAX);
        return -1;
    }
    memcpy(url + *len, s, n);
    *len += n;
    url[*len] = '\0';
    return 0;
}

/* The values of the URL template's placeholders for one SMS (settings_check_sms_url knows the same names). */
typedef struct smsgw_values {
    const char *name[9], *value[9];
} smsgw_values;

/* Fills the URL template with the URL-escaped values; 0 or -1 with err. */
static int smsgw_url(smsgw *g, const smsgw_values *v, char *url) {
    size_t len = 0;
    url[0] = '\0';
    for (const char *p = g->cfg->http_sms_url; *p;) {
        const char *open = strchr(p, '{');
        if (!open) return smsgw_append(url, &len, p, strlen(p));
        if (smsgw_append(url, &len, p, (size_t)(open - p)) != 0) return -1;
        const char *close = strchr(open, '}');
        size_t n = (size_t)(close - open - 1);
        for (int i = 0; i < 9; i++) {
            if (strlen(v->name[i]) != n || strncmp(open + 1, v->name[i], n) != 0) continue;
            char *escaped = curl_easy_escape(g->curl, v->value[i], 0);
            int rc = escaped ? smsgw_append(url, &len, escaped, strlen(escaped)) : -1;
            if (!escaped) err_set("out of memory escaping the gateway URL");
            curl_free(escaped);
            if (rc != 0) return -1;
        }
        p = close + 1;
    }
    return 0;
}

/* Gives the claimed SMS its token for this attempt; 1 go, 0 the SMS is settled already, -1 Redis is down. */
static int smsgw_handover(smsgw *g, const char *nid, char token[33]) {
    uint8_t raw[16];
    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        err_set("no random bytes for the report token");
        return -1;
    }
    for (int i = 0; i < 16; i++) snprintf(token + 2 * i, 3, "%02x", raw[i]);
    char key[STORE_KEY_LEN], name[200];
    snprintf(name, sizeof(name), "notif:%s", nid);
    store_key(g->q.st, 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "sms_handover"), store_args_add(&a, "1");
    store_args_add(&a, key), store_args_add(&a, token);
    redisReply *r = store_args_call(g->q.st, &a);
    int rc = !r || r->type != REDIS_REPLY_STRING ? -1 : strcmp(r->str, "ok") == 0 ? 1 : 0;
    if (rc < 0) err_set("%s", r ? (r->str ? r->str : "unexpected reply") : err_get());
    if (rc == 0) log_info(NULL, nid, "SMS not handed over: it is %s already", r->str);
    if (r) freeReplyObject(r);
    return rc;
}

/* Asks the gateway to send one SMS and classifies its answer into o. */
static void smsgw_send(smsgw *g, const char *url, smsq_outcome *o, char *detail, size_t detail_len) {
    int64_t wait = g->next_send_ms - clock_now_ms();
    if (wait > 0) smsgw_sleep_ms((long)wait);
    g->next_send_ms = clock_now_ms() + 1000 / g->cfg->http_sms_tps;
    g->answer_len = 0;
    g->answer_done = 0;
    g->answer[0] = '\0';
    curl_easy_setopt(g->curl, CURLOPT_URL, url);
    CURLcode rc = curl_easy_perform(g->curl);
    long code = 0;
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &code);
    o->refused = 0;
    if (rc != CURLE_OK || code == 0) {
        /* No answer: an outage (or an answer lost after the gateway took it: the duplicate window). */
        o->verdict = "retry";
        snprintf(detail, detail_len, "gateway unreachable: %s", curl_easy_strerror(rc));
    } else if (code >= 200 && code < 300) {
        o->verdict = "accepted";
        snprintf(detail, detail_len, "gateway %ld: %s", code, g->answer);
    } else if (code == 401 || code == 403) {
        o->verdict = "retry";
        snprintf(detail, detail_len, "gateway refused our credentials (%ld: %s)", code, g->answer);
        log_error(NULL, NULL, "the SMS gateway refuses notification.http_sms_username/password: %ld %s", code,
                  g->answer);
    } else {
        o->verdict = code >= 500 ? "retry" : "failed";
        o->refused = 1;
        snprintf(detail, detail_len, "gateway %ld: %s", code, g->answer);
    }
}

/* Hands one claimed SMS to the gateway and records the outcome. */
static void smsgw_one(smsgw *g, const char *nid, const redisReply *n) {
    const char *to = store_field(n, "recipient"), *body = store_field(n, "body");
    char detail[320], token[33], dlr[SETTINGS_STR + 400], url[SMSGW_URL_MAX];
    smsq_outcome o = {"failed", 1, atoi(store_field(n, "attempts")), detail, NULL, 0};
    /* The id goes unescaped into the report URL, where the gateway expands its own %-escapes. */
    if (validate_token("notification id", nid) != 0) {
        snprintf(detail, sizeof(detail), "notification id not fit for a report URL: %s", err_get());
    } else {
        int go;
        while ((go = smsgw_handover(g, nid, token)) < 0 && !g->stop) {
            log_warn(NULL, nid, "SMS not handed over yet: %s", err_get());
            smsgw_sleep_ms(1000);
        }
        if (go <= 0) return;
        snprintf(dlr, sizeof(dlr), "%s/sms/dlr?id=%s&t=%s&type=%%d&answer=%%A", g->callback_base, nid, token);
        smsgw_values v = {{"username", "password", "from", "to", "text", "coding", "charset", "dlr_mask", "dlr_url"},
                          {g->cfg->http_sms_username, g->cfg->http_sms_password, g->cfg->smpp_source, to, body,
                           gsm_is_gsm7(body, strlen(body)) ? "0" : "2", "UTF-8", SMSGW_DLR_MASK, dlr}};
        if (smsgw_url(g, &v, url) != 0)
            snprintf(detail, sizeof(detail), "%s", err_get());
        else
            smsgw_send(g, url, &o, detail, sizeof(detail));
    }
    /* Unrecorded, the claim would go stale and the SMS be handed over twice: insist while the service runs. */
    while (smsq_done(&g->q, nid, &o) != 0 && !g->stop) smsgw_sleep_ms(1000);
}

/* Keeps the claims of a batch alive while its SMS wait for their turn at the gateway. */
static void smsgw_renew(smsgw *g, const redisReply *batch, size_t from) {
    if (clock_now_ms() < g->next_renew_ms) return;
    const char *nids[SMSGW_BATCH];
    int n = 0;
    for (size_t i = from; i < batch->elements && n < SMSGW_BATCH; i++) nids[n++] = batch->element[i]->element[0]->str;
    g->next_renew_ms = clock_now_ms() + (smsq_renew(&g->q, nids, n) == 0 ? g->cfg->sms_stale_ms / 4 : 1000);
}

static void *smsgw_run(void *arg) {
    smsgw *g = arg;
    while (!g->stop) {
        redisReply *r = smsq_claim(&g->q, SMSGW_BATCH, g->cfg->http_sms_turn_ms, 1);
        if (!r) {
            smsgw_sleep_ms(SMSGW_IDLE_MS);
            continue;
        }
        g->next_renew_ms = clock_now_ms() + g->cfg->sms_stale_ms / 4;
        size_t i = 0;
        for (; i < r->elements && !g->stop; i++) {
            smsgw_renew(g, r, i);
            smsgw_one(g, r->element[i]->element[0]->str, r->element[i]->element[1]);
        }
        /* Claims the stop left untried go back to the queue now, not after the stale delay. */
        for (; i < r->elements; i++) {
            smsq_outcome release = {"release", 0, 1, "not tried: the service stopped", NULL, 0};
            smsq_done(&g->q, r->element[i]->element[0]->str, &release);
        }
        freeReplyObject(r);
    }
    return NULL;
}

/* Copies a gateway's free text for the record: at most SMSGW_ANSWER_MAX bytes, control characters as spaces. */
static void smsgw_clean(const char *in, char *out) {
    size_t n = 0;
    for (; in && in[n] && n < SMSGW_ANSWER_MAX; n++) {
        unsigned char ch = (unsigned char)in[n];
        out[n] = ch < 0x20 || ch == 0x7F ? ' ' : (char)ch;
    }
    while (n > 0 && validate_utf8(out, n) != 0) n--; /* a cut multi-byte character */
    out[n] = '\0';
}

/* GET /sms/dlr?id=&t=&type=&answer=: the gateway's report on one SMS. */
static int smsgw_on_report(void *ctx, const httpd_request *req, httpd_reply *reply) {
    smsgw *g = ctx;
    const char *id = httpd_arg(req, "id"), *token = httpd_arg(req, "t"), *type = httpd_arg(req, "type");
    char answer[SMSGW_ANSWER_MAX + 1];
    smsgw_clean(httpd_arg(req, "answer"), answer);
    if (!id || !token || !type || validate_token("id", id) != 0 ||
        (strcmp(type, "1") && strcmp(type, "2") && strcmp(type, "4") && strcmp(type, "8") && strcmp(type, "16"))) {
        httpd_printf(reply, "a report needs id, t and type (1, 2, 4, 8 or 16)\n");
        return 400;
    }
    char key[STORE_KEY_LEN], name[200];
    snprintf(name, sizeof(name), "notif:%s", id);
    store_key(g->cb.st, 0, name, key);
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "sms_report"), store_args_add(&a, "4");
    store_args_add(&a, key), store_args_add(&a, g->cb.queue), store_args_add(&a, g->cb.sending);
    store_args_add(&a, g->cb.busy), store_args_add(&a, id), store_args_addf(&a, "%lld", (long long)clock_now_ms());
    store_args_add(&a, token), store_args_add(&a, type), store_args_add(&a, answer);
    redisReply *r = store_args_call(g->cb.st, &a);
    int status = !r ? 503 : r->type != REDIS_REPLY_ERROR ? 200 : strncmp(r->str, "NOTFOUND", 8) == 0 ? 404
               : strncmp(r->str, "REFUSED", 7) == 0 ? 403 : 500;
    const char *what = !r ? err_get() : r->str ? r->str : "";
    httpd_printf(reply, "%s\n", what);
    if (status == 200) log_info(NULL, id, "gateway report %s (%s): %s", type, answer, what);
    if (status == 200 && (strcmp(type, "1") == 0 || strcmp(type, "2") == 0 || strcmp(type, "16") == 0)) smsq_count(what);
    else log_warn(NULL, id, "gateway report %s refused with %d: %s", type, status, what);
    if (r) freeReplyObject(r);
    return status;
}

/* Compares secrets in a time that does not depend on where they differ. */
static int smsgw_same_key(const char *given, const char *key) {
    size_t n = strlen(key), m = strlen(given);
    unsigned diff = (unsigned)(n ^ m);
    for (size_t i = 0; i < n; i++) diff |= (unsigned)(key[i] ^ given[i < m ? i : 0]);
    return diff == 0;
}

/* GET /sms/mo?key=&from=&text=: a customer's SMS, as the gateway received it. */
static int smsgw_on_reply(void *ctx, const httpd_request *req, httpd_reply *reply) {
    smsgw *g = ctx;
    const char *key = httpd_arg(req, "key"), *from = httpd_arg(req, "from"), *text = httpd_arg(req, "text");
    if (!key || !smsgw_same_key(key, g->cfg->http_callback_key)) {
        log_warn(NULL, NULL, "a customer's reply refused: wrong or missing key");
        httpd_printf(reply, "wrong or missing key\n");
        return 403;
    }
    if (!from || !text) {
        httpd_printf(reply, "a reply needs from and text\n");
        return 400;
    }
    if (!smsq_is_stop(text, strlen(text))) {
        log_info(NULL, NULL, "an SMS from a customer ignored: only STOP is understood");
        httpd_printf(reply, "ignored: only STOP is understood\n");
        return 200;
    }
    long n = smsq_stop(&g->cb, from);
    if (n < 0) {
        httpd_printf(reply, "not recorded, try again: %s\n", err_get());
        return 503;
    }
    httpd_printf(reply, "STOP recorded for %ld customer(s)\n", n);
    return 200;
}

static void smsgw_free(smsgw *g) {
    if (g->curl) curl_easy_cleanup(g->curl);
    if (g->q.st) smsq_close(&g->q);
    if (g->cb.st) smsq_close(&g->cb);
    curl_global_cleanup();
    free(g);
}

int smsgw_start(service *svc, smsgw **out) {
    const settings *s = service_settings(svc);
    *out = NULL;
    if (strcmp(s->sms_transport, "http") != 0 || strcmp(s->http_sms_url, "off") == 0) return 0;
    smsgw *g = calloc(1, sizeof(*g));
    if (!g || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(g);
        err_set("cannot start the SMS gateway sender (libcurl)");
        return -1;
    }
    g->cfg = s;
    if (strcmp(s->http_callback_url, "off") == 0)
        snprintf(g->callback_base, sizeof(g->callback_base), "http://%s", s->http_listen[SVC_NOTIFICATION]);
    else
        snprintf(g->callback_base, sizeof(g->callback_base), "%s", s->http_callback_url);
    size_t n = strlen(g->callback_base);
    if (n > 0 && g->callback_base[n - 1] == '/') g->callback_base[n - 1] = '\0';
    if (!(g->curl = curl_easy_init()) || smsq_open(&g->q, s) != 0 || smsq_open(&g->cb, s) != 0 ||
        service_http_route(svc, "/sms/dlr", smsgw_on_report, g) != 0 ||
        service_http_route(svc, "/sms/mo", smsgw_on_reply, g) != 0) {
        if (!g->curl) err_set("cannot start the SMS gateway sender (libcurl)");
        smsgw_free(g);
        return -1;
    }
    curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, smsgw_collect);
    curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, g);
    curl_easy_setopt(g->curl, CURLOPT_TIMEOUT_MS, (long)s->http_sms_timeout_ms);
    curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(g->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    if (pthread_create(&g->thread, NULL, smsgw_run, g) != 0) {
        err_set("cannot start the SMS gateway sender thread");
        smsgw_free(g);
        return -1;
    }
    *out = g;
    log_info(NULL, NULL, "sending SMS through an HTTP gateway; its reports come to %s/sms/dlr", g->callback_base);
    return 0;
}

void smsgw_stop(smsgw *g) {
    if (!g) return;
    g->stop = 1;
    pthread_join(g->thread, NULL);
    smsgw_free(g);
}
