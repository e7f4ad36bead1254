#include "smsc.h"
#include "clock.h"
#include "err.h"
#include "gsm.h"
#include "log.h"
#include "smpp.h"
#include "smsclink.h"
#include "smsq.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SMSC_MAX_ACTIVE 100       /* = the largest smpp_window */
#define SMSC_IDLE_CLAIM_MS 100    /* an empty queue is looked at again this often */
#define SMSC_RECONNECT_MS 1000
#define SMSC_THROTTLE_MS 1000     /* pause after the SMSC says it is throttling */
#define SMSC_TURN_MS 20           /* longest wait for the SMSC in one turn of the link */
#define SMSC_MAX_DELIVERIES 256   /* receipts read in one turn, recorded together */
#define SMSC_ESME_RSYSERR 0x08u   /* deliver_sm refused for now: Redis is down, the SMSC will offer it again */

enum { SMSC_PART_PENDING, SMSC_PART_OUT, SMSC_PART_ACCEPTED };

/* One claimed SMS and the progress of its parts. */
typedef struct smsc_sms {
    char nid[160];
    char dest[24];
    int attempts;
    gsm_message msg;
    int submitted, accepted, outstanding, part_retries;
    uint8_t part_state[GSM_MAX_PARTS]; /* SMSC_PART_* */
    uint32_t seq[GSM_MAX_PARTS];
    int64_t submitted_ms[GSM_MAX_PARTS];
    char ids[GSM_MAX_PARTS][3 * SMPP_ID_LEN + 3]; /* each part's id in every spelling, joined by ',' */
    const char *verdict;                          /* NULL while going well, else retry, failed or release */
    int refused;                                  /* the SMSC refused it: counts toward sms_max_attempts */
    int64_t confirm_after_ms;                     /* Redis did not take the outcome: offered again then */
    int recorded;                                 /* its queued outcome: 0 not answered yet, 1 taken, -1 not */
    char detail[256];
} smsc_sms;

/* A deliver_sm whose receipt is being recorded: it is answered once Redis took it (or refused for now). */
typedef struct smsc_delivery {
    uint32_t sequence;
    uint32_t status;
} smsc_delivery;

struct smsc {
    const settings *cfg;
    pthread_t thread;
    volatile sig_atomic_t stop;
    smsq q;
    int fd;
    uint32_t seq;
    uint8_t in[2 * SMPP_MAX_PDU];
    size_t in_len;
    smsc_sms active[SMSC_MAX_ACTIVE];
    int nactive;
    smsc_delivery deliveries[SMSC_MAX_DELIVERIES]; /* the receipts of one turn, recorded in one round trip */
    int ndeliveries;
    uint8_t next_ref; /* concatenation reference of the next long message */
    int64_t next_claim_ms, last_rx_ms, enquire_sent_ms, next_renew_ms;
    /* The throughput cap (smpp_tps) as a generic cell rate: a part may go when the monotonic clock has reached
     * next_submit_us less the burst tolerance, a fiftieth of a second's worth of parts (none below 50/s), so
     * that at high rates the window, not the pacing of single parts, keeps the link busy. */
    int64_t next_submit_us, interval_us, tolerance_us;
};

static uint32_t smsc_next_seq(smsc *c) {
    c->seq = c->seq >= 0x7FFFFFFFu ? 1 : c->seq + 1;
    return c->seq;
}

static void smsc_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int smsc_write(smsc *c, const uint8_t *pdu, size_t len) {
    return smsclink_write(c->fd, pdu, len);
}

/* Reads what the socket has (waiting at most wait_ms); 0, or -1 when the link is gone. */
static int smsc_read(smsc *c, int wait_ms) {
    struct pollfd p = {c->fd, POLLIN, 0};
    int r = poll(&p, 1, wait_ms);
    if (r <= 0) return r < 0 && errno != EINTR ? -1 : 0;
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
    if (n <= 0) {
        err_set("SMSC closed the link%s%s", n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        return -1;
    }
    c->in_len += (size_t)n;
    c->last_rx_ms = clock_now_ms();
    return 0;
}

/* Takes the next complete PDU out of the input buffer: 1 decoded, 0 none yet, -1 the stream is corrupt. */
static int smsc_next_pdu(smsc *c, smpp_pdu *p) {
    long len = smpp_frame(c->in, c->in_len);
    if (len <= 0) return (int)len;
    int rc = smpp_decode(c->in, (size_t)len, p);
    uint32_t seq = (uint32_t)c->in[12] << 24 | (uint32_t)c->in[13] << 16 | (uint32_t)c->in[14] << 8 | c->in[15];
    memmove(c->in, c->in + len, c->in_len - (size_t)len);
    c->in_len -= (size_t)len;
    if (rc != 0) {
        /* One undecodable PDU is answered with generic_nack and skipped; the framing is still sound. */
        uint8_t nack[SMPP_HEADER];
        log_warn(NULL, NULL, "SMSC sent an undecodable PDU: %s", err_get());
        return smsc_write(c, nack, smpp_encode_header(nack, SMPP_GENERIC_NACK, 0x01, seq)) == 0 ? 0 : -1;
    }
    return 1;
}

/* Connects and binds as a transceiver; 0, or -1 with err (the link is then closed). */
static int smsc_bind(smsc *c) {
    if ((c->fd = smsclink_connect(c->cfg)) < 0) return -1;
    c->in_len = 0;
    uint8_t pdu[128];
    uint32_t seq = smsc_next_seq(c);
    size_t n = smpp_encode_bind(pdu, sizeof(pdu), seq, c->cfg->smpp_system_id, c->cfg->smpp_password);
    int64_t deadline = clock_now_ms() + c->cfg->smpp_response_ms;
    if (n == 0 || smsc_write(c, pdu, n) != 0) goto fail;
    while (clock_now_ms() < deadline && !c->stop) {
        if (smsc_read(c, 50) != 0) goto fail;
        smpp_pdu p;
        int got = smsc_next_pdu(c, &p);
        if (got < 0) goto fail;
        if (got == 0 || p.command_id != SMPP_BIND_TRANSCEIVER_RESP) continue;
        if (p.status == 0) {
            c->enquire_sent_ms = 0;
            return 0;
        }
        err_set("SMSC refused the bind as %s: command status 0x%08x", c->cfg->smpp_system_id, p.status);
        goto fail;
    }
    if (!c->stop) err_set("SMSC did not answer the bind within %d ms", c->cfg->smpp_response_ms);
fail:
    close(c->fd);
    c->fd = -1;
    return -1;
}

static void smsc_finish(smsc *c);

/* The outcome of a finished SMS (ids: room for its parts' message ids, which o points to). */
static smsq_outcome smsc_outcome(smsc_sms *m, const char *ids[GSM_MAX_PARTS]) {
    if (!m->verdict) snprintf(m->detail, sizeof(m->detail), "accepted in %d part%s", m->msg.nparts, m->msg.nparts > 1 ? "s" : "");
    for (int p = 0; p < m->msg.nparts; p++) ids[p] = m->ids[p];
    return (smsq_outcome){m->verdict ? m->verdict : "sent", m->refused, m->attempts, m->detail, ids, m->msg.nparts};
}

/* Records the outcome of a finished SMS and forgets it. When Redis does not take it, the SMS is kept and its
 * outcome offered again a second later (sms_done ignores a repeat), unless forget: then its claim goes stale
 * and the SMS is sent again. */
static void smsc_done(smsc *c, int i, int forget) {
    smsc_sms *m = &c->active[i];
    const char *ids[GSM_MAX_PARTS];
    smsq_outcome o = smsc_outcome(m, ids);
    if (smsq_done(&c->q, m->nid, &o) != 0 && !forget) {
        m->confirm_after_ms = clock_now_ms() + 1000;
        return;
    }
    c->active[i] = c->active[--c->nactive];
}

static int smsc_on_pdu(smsc *c, const smpp_pdu *p);
static int smsc_answer_deliveries(smsc *c);

/* Takes what the SMSC sent before the link broke, still in our buffers (a failed write stops the reading): an
 * acceptance there is one, and lost its part would go twice. It cannot be answered any more; a receipt comes
 * again. */
static void smsc_drain(smsc *c) {
    smpp_pdu p;
    size_t before;
    do {
        while (smsc_next_pdu(c, &p) == 1) smsc_on_pdu(c, &p);
        before = c->in_len;
    } while (smsc_read(c, 0) == 0 && c->in_len > before);
    smsc_answer_deliveries(c);
}

/* Closes a lost link. Kept, the SMS in hand wait for the next bind and only their unanswered parts go again
 * (a part accepted twice would reach the phone as a fragment that never completes); not kept, those not yet
 * confirmed are queued again. */
static void smsc_drop(smsc *c, const char *why, int keep) {
    if (c->fd >= 0) log_warn(NULL, NULL, "SMSC link dropped: %s", why);
    if (c->fd >= 0) smsc_drain(c);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->enquire_sent_ms = 0;
    for (int i = 0; keep && i < c->nactive; i++) {
        smsc_sms *m = &c->active[i];
        for (int k = 0; k < m->msg.nparts; k++)
            if (m->part_state[k] == SMSC_PART_OUT) m->part_state[k] = SMSC_PART_PENDING;
        m->outstanding = 0;
    }
    smsc_finish(c);
    while (!keep && c->nactive > 0) {
        smsc_sms *m = &c->active[c->nactive - 1];
        /* An SMS not yet submitted goes back at once; one with parts out may have reached the SMSC. */
        if (!m->verdict) {
            m->verdict = m->submitted == 0 ? "release" : "retry";
            snprintf(m->detail, sizeof(m->detail), "SMSC link lost: %s", why);
        }
        smsc_done(c, c->nactive - 1, 1);
    }
}

/* Prepares a claimed SMS; one that cannot be encoded is failed at once. */
static void smsc_take(smsc *c, const char *nid, const redisReply *n) {
    for (int i = 0; i < c->nactive; i++)
        if (strcmp(c->active[i].nid, nid) == 0) return; /* its claim went stale while in hand: it is already here */
    smsc_sms *m = &c->active[c->nactive++];
    memset(m, 0, sizeof(*m));
    snprintf(m->nid, sizeof(m->nid), "%s", nid);
    const char *to = store_field(n, "recipient"), *body = store_field(n, "body");
    snprintf(m->dest, sizeof(m->dest), "%s", to[0] == '+' ? to + 1 : to);
    m->attempts = atoi(store_field(n, "attempts"));
    /* The concatenation reference must differ between a recipient's recent long messages: counted, 256 long
     * messages go between two that share one (read off the clock, two messages 256 ms apart would). */
    if (gsm_encode(body, strlen(body), c->next_ref, &m->msg) != 0) {
        m->verdict = "failed";
        snprintf(m->detail, sizeof(m->detail), "%s", err_get());
    } else if (m->msg.nparts > 1) {
        c->next_ref++;
    }
}

/* Claims SMS while the window has room. */
static void smsc_claim(smsc *c) {
    int64_t now = clock_now_ms();
    int room = c->cfg->smpp_window - c->nactive;
    if (room <= 0 || now < c->next_claim_ms) return;
    redisReply *r = smsq_claim(&c->q, room, 0, 0);
    if (!r) {
        c->next_claim_ms = now + SMSC_IDLE_CLAIM_MS;
        return;
    }
    for (size_t i = 0; i < r->elements; i++) smsc_take(c, r->element[i]->element[0]->str, r->element[i]->element[1]);
    freeReplyObject(r);
}

/* Submits the next part of an SMS; 0 or -1 when the link broke. */
static int smsc_submit_part(smsc *c, smsc_sms *m, int k) {
    const gsm_part *part = &m->msg.parts[k];
    uint8_t pdu[512];
    uint32_t seq = smsc_next_seq(c);
    size_t n = smpp_encode_submit(pdu, sizeof(pdu), seq, c->cfg->smpp_source, m->dest, part->udh_len ? 0x40 : 0,
                                  (uint8_t)m->msg.coding, part->data, part->len);
    if (n == 0) {
        m->verdict = "failed";
        snprintf(m->detail, sizeof(m->detail), "%s", err_get());
        return 0;
    }
    if (smsc_write(c, pdu, n) != 0) return -1;
    m->seq[k] = seq;
    m->submitted_ms[k] = clock_now_ms();
    m->part_state[k] = SMSC_PART_OUT;
    m->submitted++;
    m->outstanding++;
    /* In microseconds: a whole-millisecond interval would let 500/s through a cap of 400, and anything above
     * 1000/s through uncapped. */
    int64_t now_us = clock_mono_us();
    c->next_submit_us = (c->next_submit_us > now_us ? c->next_submit_us : now_us) + c->interval_us;
    return 0;
}

static int smsc_may_submit(const smsc *c) {
    return clock_mono_us() >= c->next_submit_us - c->tolerance_us;
}

/* The SMSC asks us to slow down: nothing goes for SMSC_THROTTLE_MS, whatever the burst allowance. */
static void smsc_pause(smsc *c) {
    c->next_submit_us = clock_mono_us() + SMSC_THROTTLE_MS * 1000 + c->tolerance_us;
}

static int smsc_outstanding(const smsc *c) {
    int n = 0;
    for (int i = 0; i < c->nactive; i++) n += c->active[i].outstanding;
    return n;
}

/* Submits parts in claim order while the window and the rate allow; 0 or -1 when the link broke. */
static int smsc_submit(smsc *c) {
    int window = c->cfg->smpp_window - smsc_outstanding(c);
    for (int i = 0; i < c->nactive && window > 0; i++) {
        smsc_sms *m = &c->active[i];
        for (int k = 0; k < m->msg.nparts && !m->verdict && window > 0 && smsc_may_submit(c); k++) {
            if (m->part_state[k] != SMSC_PART_PENDING) continue;
            if (smsc_submit_part(c, m, k) != 0) return -1;
            window--;
        }
    }
    return 0;
}

/* A submit_sm_resp (or generic_nack) for one part. */
static void smsc_on_submit_resp(smsc *c, const smpp_pdu *p) {
    for (int i = 0; i < c->nactive; i++) {
        smsc_sms *m = &c->active[i];
        for (int k = 0; k < m->msg.nparts; k++) {
            if (m->seq[k] != p->sequence || m->part_state[k] != SMSC_PART_OUT) continue;
            m->part_state[k] = SMSC_PART_PENDING;
            m->outstanding--;
            int temporary = p->command_id == SMPP_GENERIC_NACK || smpp_status_temporary(p->status);
            if (p->status == 0x58) smsc_pause(c);
            if (p->command_id == SMPP_SUBMIT_SM_RESP && p->status == 0) {
                m->part_state[k] = SMSC_PART_ACCEPTED;
                char v[3][SMPP_ID_LEN];
                int nv = smpp_id_variants(p->message_id, v);
                snprintf(m->ids[k], sizeof(m->ids[k]), "%s%s%s%s%s", v[0], nv > 1 ? "," : "", nv > 1 ? v[1] : "",
                         nv > 2 ? "," : "", nv > 2 ? v[2] : "");
                m->accepted++;
            } else if (temporary && (m->accepted > 0 || m->outstanding > 0) &&
                       ++m->part_retries < c->cfg->sms_max_attempts) {
                /* Parts already accepted must not go twice: only this one is offered again, after a pause. */
                smsc_pause(c);
            } else if (!m->verdict) {
                m->verdict = temporary ? "retry" : "failed";
                m->refused = 1;
                snprintf(m->detail, sizeof(m->detail), "SMSC error 0x%08x, part %d/%d", p->status, k + 1,
                         m->msg.nparts);
            }
            return;
        }
    }
    log_warn(NULL, NULL, "SMSC answered sequence %u, which is not awaited", p->sequence);
}

/* Returns 1 if a customer's SMS says STOP (GSM or UCS-2). */
static int smsc_is_stop(const smpp_pdu *p) {
    char text[16];
    size_t n = 0, step = p->data_coding == 8 ? 2 : 1;
    for (size_t i = step - 1; i < p->sm_length && n < sizeof(text); i += step) {
        if (step == 2 && p->short_message[i - 1] != 0) return 0;
        text[n++] = (char)p->short_message[i];
    }
    return smsq_is_stop(text, n);
}

/* A deliver_sm: a delivery receipt or a STOP is recorded before it is acknowledged, so that none is lost. */
static void smsc_receipt_recorded(void *ctx, int rc) {
    smsc_delivery *d = ctx;
    if (rc != 0) {
        log_error(NULL, NULL, "a receipt not recorded (the SMSC will offer it again): %s", err_get());
        d->status = SMSC_ESME_RSYSERR;
    }
}

/* Answers the deliver_sm of the turn, once their receipts are recorded (one round trip for all): a receipt is
 * acknowledged only when Redis has it. 0, or -1 when the link broke. */
static int smsc_answer_deliveries(smsc *c) {
    smsq_flush(&c->q);
    int rc = 0;
    for (int i = 0; i < c->ndeliveries && rc == 0 && c->fd >= 0; i++) {
        uint8_t resp[32];
        rc = smsc_write(c, resp, smpp_encode_deliver_resp(resp, c->deliveries[i].status, c->deliveries[i].sequence));
    }
    c->ndeliveries = 0;
    return rc;
}

static int smsc_on_deliver(smsc *c, const smpp_pdu *p) {
    if (c->ndeliveries == SMSC_MAX_DELIVERIES && smsc_answer_deliveries(c) != 0) return -1;
    smsc_delivery *d = &c->deliveries[c->ndeliveries++];
    *d = (smsc_delivery){p->sequence, 0};
    char id[SMPP_ID_LEN], state[16];
    if (smpp_receipt(p, id, state) != 0) {
        if (!smsc_is_stop(p))
            log_info(NULL, NULL, "an SMS from a customer ignored: only STOP is understood");
        else if (smsq_stop(&c->q, p->source_addr) < 0)
            d->status = SMSC_ESME_RSYSERR;
    } else if (smpp_state_outcome(state) >= 0) {
        char v[3][SMPP_ID_LEN];
        const char *spellings[3];
        int nv = smpp_id_variants(id, v);
        for (int i = 0; i < nv; i++) spellings[i] = v[i];
        if (smsq_receipt_later(&c->q, spellings, nv, state, smsc_receipt_recorded, d) != 0)
            d->status = SMSC_ESME_RSYSERR;
    }
    return 0;
}

/* Handles one PDU from the SMSC; 0, or -1 when the link must be dropped. */
static int smsc_on_pdu(smsc *c, const smpp_pdu *p) {
    uint8_t resp[SMPP_HEADER];
    switch (p->command_id) {
    case SMPP_SUBMIT_SM_RESP:
    case SMPP_GENERIC_NACK:
        smsc_on_submit_resp(c, p);
        return 0;
    case SMPP_DELIVER_SM:
        return smsc_on_deliver(c, p);
    case SMPP_ENQUIRE_LINK:
        return smsc_write(c, resp, smpp_encode_header(resp, SMPP_ENQUIRE_LINK_RESP, 0, p->sequence));
    case SMPP_ENQUIRE_LINK_RESP:
        c->enquire_sent_ms = 0;
        return 0;
    case SMPP_UNBIND:
        smsc_write(c, resp, smpp_encode_header(resp, SMPP_UNBIND_RESP, 0, p->sequence));
        err_set("the SMSC unbound");
        return -1;
    default:
        return smsc_write(c, resp, smpp_encode_header(resp, SMPP_GENERIC_NACK, 0x03, p->sequence));
    }
}

/* Finishes the SMS whose parts are all answered. */
static void smsc_outcome_recorded(void *ctx, int rc) {
    ((smsc_sms *)ctx)->recorded = rc == 0 ? 1 : -1;
}

/* Records the outcomes of the SMS finished (one round trip for all) and forgets those Redis took; the others are
 * kept and their outcome offered again a second later (sms_done ignores a repeat). */
static void smsc_finish(smsc *c) {
    int queued = 0;
    for (int i = 0; i < c->nactive; i++) {
        smsc_sms *m = &c->active[i];
        m->recorded = 0;
        if (m->outstanding > 0 || (!m->verdict && m->accepted < m->msg.nparts) || clock_now_ms() < m->confirm_after_ms)
            continue;
        const char *ids[GSM_MAX_PARTS];
        smsq_outcome o = smsc_outcome(m, ids);
        if (smsq_done_later(&c->q, m->nid, &o, smsc_outcome_recorded, m) == 0) queued++;
        else m->recorded = -1;
    }
    if (queued) smsq_flush(&c->q);
    for (int i = c->nactive - 1; i >= 0; i--) {
        if (c->active[i].recorded > 0) c->active[i] = c->active[--c->nactive];
        else if (c->active[i].recorded < 0) c->active[i].confirm_after_ms = clock_now_ms() + 1000;
    }
}

/* Returns 0, or -1 when an answer is overdue: a link that does not answer is dead. */
static int smsc_check_link(smsc *c) {
    int64_t now = clock_now_ms(), limit = c->cfg->smpp_response_ms;
    for (int i = 0; i < c->nactive; i++)
        for (int k = 0; k < c->active[i].msg.nparts; k++)
            if (c->active[i].part_state[k] == SMSC_PART_OUT && now - c->active[i].submitted_ms[k] > limit) {
                err_set("no submit_sm_resp within %lld ms", (long long)limit);
                return -1;
            }
    if (c->enquire_sent_ms && now - c->enquire_sent_ms > limit) {
        err_set("no enquire_link_resp within %lld ms", (long long)limit);
        return -1;
    }
    if (!c->enquire_sent_ms && now - c->last_rx_ms > c->cfg->smpp_enquire_ms) {
        uint8_t pdu[SMPP_HEADER];
        c->enquire_sent_ms = now;
        return smsc_write(c, pdu, smpp_encode_header(pdu, SMPP_ENQUIRE_LINK, 0, smsc_next_seq(c)));
    }
    return 0;
}

/* Renews the claims of the SMS in hand, so that a slow send (a low smpp_tps, an SMSC slow to answer) is never
 * taken for one its sender died holding. */
static void smsc_renew_claims(smsc *c) {
    int64_t now = clock_now_ms();
    if (c->nactive == 0 || now < c->next_renew_ms) return;
    const char *nids[SMSC_MAX_ACTIVE];
    for (int i = 0; i < c->nactive; i++) nids[i] = c->active[i].nid;
    c->next_renew_ms = now + (smsq_renew(&c->q, nids, c->nactive) == 0 ? c->cfg->sms_stale_ms / 4 : 1000);
}

/* How long a turn may wait for the SMSC: until the next part may go, when one waits and the window has room. */
static int smsc_wait_ms(const smsc *c) {
    if (smsc_outstanding(c) >= c->cfg->smpp_window) return SMSC_TURN_MS;
    for (int i = 0; i < c->nactive; i++)
        for (int k = 0; !c->active[i].verdict && k < c->active[i].msg.nparts; k++)
            if (c->active[i].part_state[k] == SMSC_PART_PENDING) {
                int64_t left = (c->next_submit_us - c->tolerance_us - clock_mono_us() + 999) / 1000;
                return left <= 0 ? 0 : left < SMSC_TURN_MS ? (int)left : SMSC_TURN_MS;
            }
    return SMSC_TURN_MS;
}

/* One turn of the bound link: claim, submit, read, answer, finish. 0, or -1 with err when the link is lost. */
static int smsc_turn(smsc *c) {
    smsc_renew_claims(c);
    smsc_claim(c);
    if (smsc_submit(c) != 0 || smsc_read(c, smsc_wait_ms(c)) != 0) return -1;
    smpp_pdu p;
    int got;
    while ((got = smsc_next_pdu(c, &p)) == 1)
        if (smsc_on_pdu(c, &p) != 0) return -1;
    if (got < 0 || smsc_answer_deliveries(c) != 0) return -1;
    smsc_finish(c);
    return smsc_check_link(c);
}

static void *smsc_run(void *arg) {
    smsc *c = arg;
    while (!c->stop) {
        if (c->fd < 0) {
            if (smsc_bind(c) != 0) {
                /* The SMSC stays away: the SMS in hand wait for it, their claims renewed. Queued again, they would
                 * go whole, and a part it had already accepted would reach the phone twice. */
                smsc_drop(c, err_get(), 1);
                log_warn(NULL, NULL, "SMSC unavailable, trying again in %d ms: %s", SMSC_RECONNECT_MS, err_get());
                for (int t = 0; t < SMSC_RECONNECT_MS / 100 && !c->stop; t++) {
                    smsc_renew_claims(c);
                    smsc_sleep_ms(100);
                }
                continue;
            }
            c->last_rx_ms = clock_now_ms();
            log_info(NULL, NULL, "bound to the SMSC %s:%d as %s", c->cfg->smpp_host, c->cfg->smpp_port,
                     c->cfg->smpp_system_id);
        }
        if (smsc_turn(c) != 0) smsc_drop(c, err_get(), 1);
    }
    if (c->fd >= 0) {
        uint8_t pdu[SMPP_HEADER];
        smsc_write(c, pdu, smpp_encode_header(pdu, SMPP_UNBIND, 0, smsc_next_seq(c)));
    }
    smsc_drop(c, "the service is stopping", 0);
    return NULL;
}

int smsc_start(const settings *s, smsc **out) {
    *out = NULL;
    if (strcmp(s->sms_transport, "smpp") != 0 || strcmp(s->smpp_host, "off") == 0) return 0;
    smsc *c = calloc(1, sizeof(*c));
    if (!c) {
        err_set("out of memory starting the SMS sender");
        return -1;
    }
    c->cfg = s;
    c->fd = -1;
    c->interval_us = 1000000 / s->smpp_tps;
    int burst = s->smpp_tps / 50 > 1 ? s->smpp_tps / 50 : 1;
    c->tolerance_us = (int64_t)(burst - 1) * c->interval_us;
    c->next_ref = (uint8_t)(clock_now_ms() & 0xFF); /* a restarted sender does not start again where it did */
    if (smsq_open(&c->q, s) != 0) {
        free(c);
        return -1;
    }
    if (pthread_create(&c->thread, NULL, smsc_run, c) != 0) {
        err_set("cannot start the SMS sender thread");
        smsq_close(&c->q);
        free(c);
        return -1;
    }
    *out = c;
    log_info(NULL, NULL, "sending SMS through the SMSC %s:%d", s->smpp_host, s->smpp_port);
    return 0;
}

void smsc_stop(smsc *c) {
    if (!c) return;
    c->stop = 1;
    pthread_join(c->thread, NULL);
    smsq_close(&c->q);
    free(c);
}
