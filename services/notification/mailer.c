#include "mailer.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "mail.h"
#include "metrics.h"
#include "store.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAILER_BATCH "20"
#define MAILER_IDLE_MS 100

struct mailer {
    const settings *cfg;
    pthread_t thread;
    volatile sig_atomic_t stop;
    store *st;
    CURL *curl;
    char queue[STORE_KEY_LEN], sending[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
    char refusal[256]; /* the server's last 4xx or 5xx line in the current transaction */
};

/* The message being uploaded to libcurl. */
typedef struct mailer_upload {
    const char *data;
    size_t len, pos;
} mailer_upload;

static size_t mailer_read(char *buf, size_t size, size_t n, void *arg) {
    mailer_upload *u = arg;
    size_t room = size * n, left = u->len - u->pos;
    size_t take = left < room ? left : room;
    memcpy(buf, u->data + u->pos, take);
    u->pos += take;
    return take;
}

/* The outcome of one SMTP transaction. */
typedef struct mailer_outcome {
    const char *verdict; /* sent, retry, failed, or release (claimed but not tried: the service is stopping) */
    int answered;        /* the server answered: an outage does not use up the attempts */
    int unconfirmed;     /* the whole message went out, no final answer came: the server may have kept it */
    char detail[256];
} mailer_outcome;

/* Keeps the server's refusal line: libcurl's own error text names its step, not what the server said. */
static int mailer_trace(CURL *c, curl_infotype type, char *text, size_t size, void *arg) {
    (void)c;
    mailer *m = arg;
    if (type == CURLINFO_HEADER_IN && size > 0 && (text[0] == '4' || text[0] == '5')) {
        while (size > 0 && (text[size - 1] == '\r' || text[size - 1] == '\n')) size--;
        snprintf(m->refusal, sizeof(m->refusal), "%.*s", (int)size, text);
    }
    return 0;
}

/* Runs the SMTP transaction; a 4xx answer or a network error is temporary, a 5xx or a refused message final. */
static void mailer_send(mailer *m, const char *to, const char *message, size_t len, mailer_outcome *out) {
    char from[SETTINGS_STR + 2], rcpt[300];
    snprintf(from, sizeof(from), "<%s>", m->cfg->mail_from);
    snprintf(rcpt, sizeof(rcpt), "<%s>", to);
    struct curl_slist *rcpts = curl_slist_append(NULL, rcpt);
    mailer_upload up = {message, len, 0};
    CURL *c = m->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, m->cfg->smtp_url);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, mailer_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE, (long)len);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)m->cfg->smtp_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, mailer_trace);
    curl_easy_setopt(c, CURLOPT_DEBUGDATA, m);
    curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
    m->refusal[0] = '\0';
    /* STARTTLS when configured is required, never "try": a downgrade must fail, not send in clear. */
    if (strcmp(m->cfg->smtp_tls, "starttls") == 0) curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpts);
    if (rc == CURLE_OK) {
        out->verdict = "sent";
        snprintf(out->detail, sizeof(out->detail), "%ld", code);
        return;
    }
    out->verdict = code >= 500 || rc == CURLE_LOGIN_DENIED || rc == CURLE_USE_SSL_FAILED ? "failed" : "retry";
    out->answered = code != 0;
    out->unconfirmed = strcmp(out->verdict, "retry") == 0 && !m->refusal[0] && up.pos == up.len;
    if (m->refusal[0])
        snprintf(out->detail, sizeof(out->detail), "%s", m->refusal);
    else
        snprintf(out->detail, sizeof(out->detail), "%s (SMTP %ld)", curl_easy_strerror(rc), code);
}

static void mailer_done(mailer *m, const char *nid, const mailer_outcome *o, int attempts) {
    char key[STORE_KEY_LEN], name[128];
    snprintf(name, sizeof(name), "notif:%s", nid);
    store_key(m->st, 0, name, key);
    int64_t backoff = 1000LL << (attempts < 20 ? attempts - 1 : 19);
    if (backoff > m->cfg->mail_retry_max_ms) backoff = m->cfg->mail_retry_max_ms;
    const char *verdict = strcmp(o->verdict, "retry") == 0 && o->answered && attempts >= m->cfg->mail_max_attempts
                              ? "failed"
                              : o->verdict;
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "mail_done"), store_args_add(&a, "3");
    a.no_wait = 1; /* waiting would let the claim go stale on the master: see store_args */
    store_args_add(&a, key), store_args_add(&a, m->queue), store_args_add(&a, m->sending);
    store_args_add(&a, nid), store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, verdict);
    store_args_add(&a, o->detail), store_args_addf(&a, "%lld", (long long)(clock_now_ms() + backoff));
    store_args_add(&a, o->unconfirmed ? "1" : "0");
    redisReply *r = store_args_call(m->st, &a);
    /* Unconfirmed, the claim would go stale and the e-mail be sent again: insist while the service runs. */
    while (!r && !m->stop) {
        log_error(NULL, nid, "e-mail %s not confirmed yet (trying again): %s", verdict, err_get());
        for (int t = 0; t < 10 && !m->stop; t++) {
            struct timespec ts = {0, MAILER_IDLE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
        r = store_args_call(m->st, &a);
    }
    if (!r || r->type == REDIS_REPLY_ERROR)
        log_error(NULL, nid, "e-mail %s not confirmed (it will be tried again): %s", verdict, r ? r->str : err_get());
    else
        log_info(NULL, nid, "e-mail %s: %s", verdict, o->detail);
    if (r && r->type != REDIS_REPLY_ERROR)
        metrics_add(metrics_counter_new("sav_email_total", "E-mail outcomes recorded (retry: to try again)", "outcome",
                                        verdict), 1);
    if (r) freeReplyObject(r);
}

/* Builds and sends one claimed e-mail, then confirms it. */
static void mailer_one(mailer *m, const char *nid, const redisReply *n) {
    char message_id[256];
    int len = snprintf(message_id, sizeof(message_id), "%s@%s", nid, m->cfg->mail_domain);
    for (int i = 0; i < len; i++)
        if (message_id[i] == ':') message_id[i] = '.';
    mail_input in = {m->cfg->mail_from, m->cfg->mail_from_name, store_field(n, "recipient"), store_field(n, "subject"),
                     store_field(n, "body"), message_id, atoll(store_field(n, "at"))};
    char *msg;
    size_t msg_len;
    mailer_outcome o = {"failed", 1, 0, ""};
    if (mail_build(&in, &msg, &msg_len) != 0) {
        snprintf(o.detail, sizeof(o.detail), "%s", err_get());
    } else {
        mailer_send(m, in.to, msg, msg_len, &o);
        free(msg);
    }
    mailer_done(m, nid, &o, atoi(store_field(n, "attempts")));
}

/* Claims a batch; returns how many were sent (0 when idle or Redis is down). */
static int mailer_batch(mailer *m) {
    store_args a;
    store_args_init(&a);
    store_args_add(&a, "FCALL"), store_args_add(&a, "mail_claim"), store_args_add(&a, "2");
    /* Sends claimed by this process and left unconfirmed by a crash come back after mail_stale_ms. */
    store_args_add(&a, m->queue), store_args_add(&a, m->sending), store_args_add(&a, m->prefix);
    store_args_addf(&a, "%lld", (long long)clock_now_ms()), store_args_add(&a, MAILER_BATCH);
    store_args_addf(&a, "%d", m->cfg->mail_stale_ms);
    redisReply *r = store_args_call(m->st, &a);
    int n = 0;
    if (r && r->type == REDIS_REPLY_ARRAY) {
        size_t i = 0;
        for (; i < r->elements && !m->stop; i++) mailer_one(m, r->element[i]->element[0]->str, r->element[i]->element[1]);
        /* Claims the stop left untried go back to the queue now, not after the stale delay. */
        mailer_outcome release = {"release", 0, 0, "not tried: the service stopped"};
        for (; i < r->elements; i++) mailer_done(m, r->element[i]->element[0]->str, &release, 1);
        n = (int)r->elements;
    }
    if (r) freeReplyObject(r);
    return n;
}

static void *mailer_run(void *arg) {
    mailer *m = arg;
    while (!m->stop) {
        if (mailer_batch(m) == 0) {
            struct timespec ts = {0, MAILER_IDLE_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

int mailer_start(const settings *s, mailer **out) {
    *out = NULL;
    if (strcmp(s->smtp_url, "off") == 0) return 0;
    mailer *m = calloc(1, sizeof(*m));
    if (!m || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(m->curl = curl_easy_init())) {
        err_set("cannot start the e-mail sender (libcurl)");
        free(m);
        return -1;
    }
    m->cfg = s;
    if (!(m->st = store_open(s))) {
        curl_easy_cleanup(m->curl);
        free(m);
        return -1;
    }
    store_key(m->st, 0, "mail:queue", m->queue);
    store_key(m->st, 0, "mail:sending", m->sending);
    store_shard_prefix(m->st, 0, m->prefix);
    if (pthread_create(&m->thread, NULL, mailer_run, m) != 0) {
        err_set("cannot start the e-mail sender thread");
        store_close(m->st);
        curl_easy_cleanup(m->curl);
        free(m);
        return -1;
    }
    *out = m;
    log_info(NULL, NULL, "sending e-mails through %s", s->smtp_url);
    return 0;
}

void mailer_stop(mailer *m) {
    if (!m) return;
    m->stop = 1;
    pthread_join(m->thread, NULL);
    store_close(m->st);
    curl_easy_cleanup(m->curl);
    curl_global_cleanup();
    free(m);
}
