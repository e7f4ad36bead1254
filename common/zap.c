#include "zap.h"
#include "clock.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 8
#define ZAP_RECENT 8

/* A refused key recently logged: its next refusals are counted, not logged, until the interval is over. */
typedef struct zap_refusal {
    char key[KEYS_Z85_LEN + 1];
    int64_t logged_at;
    unsigned quiet;
} zap_refusal;

struct zap {
    void *sock;
    const auth_table *table;
    zap_refusal recent[ZAP_RECENT];
};

zap *zap_new(void *ctx, const auth_table *table) {
    zap *z = calloc(1, sizeof(*z));
    if (!z) {
        err_set("out of memory");
        return NULL;
    }
    z->table = table;
    z->sock = zmq_socket(ctx, ZMQ_REP);
    int linger = 0;
    if (!z->sock || zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        err_set("cannot bind the ZAP handler on %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        zap_free(z);
        return NULL;
    }
    return z;
}

void *zap_socket(zap *z) {
    return z->sock;
}

void zap_free(zap *z) {
    if (!z) return;
    /* An inproc endpoint is released by the close only later, in libzmq's reaper; unbinding frees it now, so
     * that a new handler can bind at once. */
    if (z->sock) {
        zmq_unbind(z->sock, ZAP_ENDPOINT);
        zmq_close(z->sock);
    }
    free(z);
}

/* Copies frame i as a NUL-terminated string into out (empty when absent or too long). */
static void zap_text(zmq_msg_t *frames, int n, int i, char *out, size_t outlen) {
    size_t len = i < n ? zmq_msg_size(&frames[i]) : 0;
    if (len >= outlen) len = 0;
    if (len) memcpy(out, zmq_msg_data(&frames[i]), len);
    out[len] = '\0';
}

/* Logs a refused key unless it was logged less than ZAP_LOG_INTERVAL_MS ago. */
static void zap_log_refusal(zap *z, const char *key, const char *address, const char *why) {
    int64_t now = clock_mono_ms();
    zap_refusal *slot = &z->recent[0];
    for (int i = 0; i < ZAP_RECENT; i++) {
        if (strcmp(z->recent[i].key, key) == 0) {
            slot = &z->recent[i];
            break;
        }
        if (z->recent[i].logged_at < slot->logged_at) slot = &z->recent[i];
    }
    if (strcmp(slot->key, key) == 0 && now - slot->logged_at < ZAP_LOG_INTERVAL_MS) {
        slot->quiet++;
        return;
    }
    if (strcmp(slot->key, key) == 0 && slot->quiet)
        log_warn(NULL, NULL, "refused a CURVE client from %s: %s (key %s; %u more refusals of this key before)",
                 address, why, key, slot->quiet);
    else
        log_warn(NULL, NULL, "refused a CURVE client from %s: %s (key %s)", address, why, key);
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    slot->logged_at = now;
    slot->quiet = 0;
}

/* Decides one request: returns the identity, or NULL with *why set. */
static const auth_identity *zap_decide(zap *z, zmq_msg_t *frames, int n, char *key, const char **why) {
    char version[8], domain[64], mechanism[16];
    zap_text(frames, n, 0, version, sizeof(version));
    zap_text(frames, n, 2, domain, sizeof(domain));
    zap_text(frames, n, 5, mechanism, sizeof(mechanism));
    key[0] = '\0';
    if (n < 7 || strcmp(version, "1.0") != 0 || strcmp(mechanism, "CURVE") != 0 ||
        zmq_msg_size(&frames[6]) != 32) {
        *why = "not a ZAP 1.0 CURVE request";
        return NULL;
    }
    if (!zmq_z85_encode(key, zmq_msg_data(&frames[6]), 32)) {
        *why = "unreadable public key";
        return NULL;
    }
    if (strcmp(domain, ZAP_DOMAIN) != 0) {
        *why = "unknown ZAP domain";
        return NULL;
    }
    const auth_identity *id = auth_find_key(z->table, key);
    if (!id) *why = "public key not in the authorised clients";
    return id;
}

static void zap_answer(zap *z, zmq_msg_t *frames, int n) {
    char key[KEYS_Z85_LEN + 1], address[64];
    const char *why = NULL;
    const auth_identity *id = zap_decide(z, frames, n, key, &why);
    zap_text(frames, n, 3, address, sizeof(address));
    if (!id) zap_log_refusal(z, key[0] ? key : "-", address[0] ? address : "?", why);
    const char *request_id = n > 1 ? zmq_msg_data(&frames[1]) : "";
    size_t request_id_len = n > 1 ? zmq_msg_size(&frames[1]) : 0;
    const void *reply[6] = {"1.0", request_id, id ? "200" : "400", id ? "OK" : why, id ? id->name : "", ""};
    size_t lens[6] = {3, request_id_len, 3, strlen(reply[3]), strlen(reply[4]), 0};
    for (int i = 0; i < 6; i++)
        if (zmq_send(z->sock, reply[i], lens[i], i < 5 ? ZMQ_SNDMORE : 0) < 0) {
            log_error(NULL, NULL, "ZAP reply not sent: %s", zmq_strerror(errno));
            return;
        }
}

void zap_on_readable(zap *z) {
    for (;;) {
        zmq_msg_t frames[ZAP_MAX_FRAMES + 1];
        int n = 0, more = 1, rc = 0, e = 0;
        /* Frames beyond ZAP_MAX_FRAMES are received into the spare slot and dropped. */
        while (more && rc == 0) {
            zmq_msg_t *part = &frames[n < ZAP_MAX_FRAMES ? n : ZAP_MAX_FRAMES];
            zmq_msg_init(part);
            rc = zmq_msg_recv(part, z->sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0 ? -1 : 0;
            if (rc != 0) e = errno;
            more = rc == 0 && zmq_msg_more(part);
            if (rc == 0 && n < ZAP_MAX_FRAMES)
                n++;
            else
                zmq_msg_close(part);
        }
        if (rc == 0) zap_answer(z, frames, n);
        for (int i = 0; i < n; i++) zmq_msg_close(&frames[i]);
        if (rc != 0) {
            if (e != EAGAIN) log_error(NULL, NULL, "ZAP request not received: %s", zmq_strerror(e));
            return;
        }
    }
}
