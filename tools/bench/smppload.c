#include "smppload.h"
#include "err.h"
#include "load.h"
#include "smpp.h"
#include "smsclink.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BENCH_SMPP_SILENCE_MS 10000 /* an SMSC silent this long with answers due is stuck */
#define BENCH_SMPP_RECEIPTS_MS 5000
#define BENCH_SMPP_FIRST_SEQ 2      /* 1 is the bind's */

typedef struct bench_smpp {
    int fd;
    uint8_t in[4 * SMPP_MAX_PDU];
    size_t in_len;
    long count, outstanding;
    int64_t *sent_us; /* per submit_sm, by sequence */
    int64_t *rtt_us;  /* per answered submit_sm */
    bench_smpp_figures *fig;
} bench_smpp;

static int bench_smpp_write(bench_smpp *s, const uint8_t *pdu, size_t len) {
    return smsclink_write(s->fd, pdu, len);
}

/* Answers what needs an answer and counts what was answered; 1 when p is the bind's answer. */
static int bench_smpp_on_pdu(bench_smpp *s, const smpp_pdu *p) {
    uint8_t resp[32];
    switch (p->command_id) {
    case SMPP_BIND_TRANSCEIVER_RESP:
        if (p->status != 0) {
            err_set("SMSC refused the bind: command status 0x%08x", p->status);
            return -1;
        }
        return 1;
    case SMPP_SUBMIT_SM_RESP:
    case SMPP_GENERIC_NACK: {
        long k = (long)p->sequence - BENCH_SMPP_FIRST_SEQ;
        if (k < 0 || k >= s->count || !s->sent_us[k]) return 0;
        s->rtt_us[s->fig->accepted + s->fig->refused] = bench_now_us() - s->sent_us[k];
        s->sent_us[k] = 0;
        s->outstanding--;
        if (p->command_id == SMPP_SUBMIT_SM_RESP && p->status == 0)
            s->fig->accepted++;
        else
            s->fig->refused++;
        return 0;
    }
    case SMPP_DELIVER_SM:
        s->fig->receipts++;
        return bench_smpp_write(s, resp, smpp_encode_deliver_resp(resp, 0, p->sequence));
    case SMPP_ENQUIRE_LINK:
        return bench_smpp_write(s, resp, smpp_encode_header(resp, SMPP_ENQUIRE_LINK_RESP, 0, p->sequence));
    default:
        return 0;
    }
}

/* Reads what comes within wait_ms and handles every complete PDU; 1 if the bind's answer was among them, 0, or -1
 * with err. */
static int bench_smpp_read(bench_smpp *s, int wait_ms) {
    struct pollfd pfd = {s->fd, POLLIN, 0};
    int r = poll(&pfd, 1, wait_ms);
    if (r < 0 && errno != EINTR) {
        err_set("poll: %s", strerror(errno));
        return -1;
    }
    if (r <= 0) return 0;
    ssize_t n = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
    if (n <= 0) {
        if (n < 0 && errno == EINTR) return 0;
        err_set("SMSC closed the link%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        return -1;
    }
    s->in_len += (size_t)n;
    int bound = 0;
    long len;
    while ((len = smpp_frame(s->in, s->in_len)) > 0) {
        smpp_pdu p;
        int rc = smpp_decode(s->in, (size_t)len, &p) == 0 ? bench_smpp_on_pdu(s, &p) : -1;
        if (rc < 0) return -1;
        bound |= rc;
        memmove(s->in, s->in + len, s->in_len - (size_t)len);
        s->in_len -= (size_t)len;
    }
    return len < 0 ? -1 : bound;
}

static int bench_smpp_bind(bench_smpp *s, const settings *cfg) {
    uint8_t pdu[128];
    size_t n = smpp_encode_bind(pdu, sizeof(pdu), 1, cfg->smpp_system_id, cfg->smpp_password);
    if (n == 0 || bench_smpp_write(s, pdu, n) != 0) return -1;
    int64_t deadline = bench_now_us() + (int64_t)cfg->smpp_response_ms * 1000;
    while (bench_now_us() < deadline) {
        int rc = bench_smpp_read(s, 50);
        if (rc != 0) return rc > 0 ? 0 : -1;
    }
    err_set("SMSC did not answer the bind within %d ms", cfg->smpp_response_ms);
    return -1;
}

/* Submits message k (sequence k + BENCH_SMPP_FIRST_SEQ) to a number of its own. */
static int bench_smpp_submit(bench_smpp *s, const char *source, long k) {
    char dest[24], text[161];
    int len = snprintf(text, sizeof(text), "SAV bench %08ld: votre appareil est pret, a retirer au centre de service "
                                           "aux heures d'ouverture. Merci de votre confiance.", k);
    snprintf(dest, sizeof(dest), "3369%07ld", k % 10000000);
    uint8_t pdu[512];
    size_t n = smpp_encode_submit(pdu, sizeof(pdu), (uint32_t)(k + BENCH_SMPP_FIRST_SEQ), source, dest, 0, 0,
                                  (const uint8_t *)text, (size_t)len);
    if (n == 0) return -1;
    s->sent_us[k] = bench_now_us();
    s->outstanding++;
    s->fig->submitted++;
    return bench_smpp_write(s, pdu, n);
}

/* Submits every message, window at a time, until each is answered; 0 or -1 with err. */
static int bench_smpp_pump(bench_smpp *s, const char *source, int window) {
    int64_t start = bench_now_us(), heard = start;
    while (s->fig->accepted + s->fig->refused < s->count) {
        while (s->outstanding < window && s->fig->submitted < s->count)
            if (bench_smpp_submit(s, source, s->fig->submitted) != 0) return -1;
        long before = s->fig->accepted + s->fig->refused + s->fig->receipts;
        if (bench_smpp_read(s, 100) < 0) return -1;
        int64_t now = bench_now_us();
        if (s->fig->accepted + s->fig->refused + s->fig->receipts != before) {
            heard = now;
        } else if (now - heard > (int64_t)BENCH_SMPP_SILENCE_MS * 1000) {
            err_set("SMSC silent for %d ms with %ld submit_sm unanswered", BENCH_SMPP_SILENCE_MS, s->outstanding);
            return -1;
        }
    }
    s->fig->seconds = (double)(bench_now_us() - start) / 1e6;
    return 0;
}

static int bench_cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int bench_smpp_ceiling(const settings *cfg, const char *source, int window, long count, bench_smpp_figures *out) {
    memset(out, 0, sizeof(*out));
    bench_smpp *s = calloc(1, sizeof(*s));
    if (!s) {
        err_set("out of memory");
        return -1;
    }
    s->fd = -1, s->count = count, s->fig = out;
    s->sent_us = calloc((size_t)count, sizeof(int64_t));
    s->rtt_us = calloc((size_t)count, sizeof(int64_t));
    int rc = s->sent_us && s->rtt_us ? 0 : -1;
    if (rc != 0) err_set("out of memory for %ld submits", count);
    if (rc == 0) rc = (s->fd = smsclink_connect(cfg)) >= 0 && bench_smpp_bind(s, cfg) == 0 ? 0 : -1;
    if (rc == 0) rc = bench_smpp_pump(s, source, window);
    for (int64_t until = bench_now_us() + BENCH_SMPP_RECEIPTS_MS * 1000LL;
         rc == 0 && out->receipts < out->accepted && bench_now_us() < until;)
        if (bench_smpp_read(s, 100) < 0) rc = -1;
    if (rc == 0) {
        uint8_t pdu[SMPP_HEADER];
        bench_smpp_write(s, pdu, smpp_encode_header(pdu, SMPP_UNBIND, 0, (uint32_t)(count + BENCH_SMPP_FIRST_SEQ)));
        long answered = out->accepted + out->refused;
        qsort(s->rtt_us, (size_t)answered, sizeof(int64_t), bench_cmp_i64);
        out->rtt_p50_us = (double)s->rtt_us[answered / 2];
        out->rtt_p99_us = (double)s->rtt_us[answered * 99 / 100];
        out->resp_per_s = out->seconds > 0 ? (double)answered / out->seconds : 0;
    }
    if (s->fd >= 0) close(s->fd);
    free(s->sent_us);
    free(s->rtt_us);
    free(s);
    return rc;
}
