/* smsq: the SMS queue in Redis as both SMS senders see it (the SMPP client, smsc, and the HTTP gateway client,
 * smsgw): claiming the SMS whose turn it is, recording each outcome, renewing the claims in hand, the quiet
 * hours, and customers' STOP replies. One smsq per thread: it owns a Redis connection. */
#ifndef SAV_SMSQ_H
#define SAV_SMSQ_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "settings.h"
#include "store.h"

typedef struct smsq {
    const settings *cfg;
    store *st;
    int quiet_start, quiet_end; /* Europe/Paris minutes of the day, -1 when there are no quiet hours */
    char queue[STORE_KEY_LEN], sending[STORE_KEY_LEN], busy[STORE_KEY_LEN], prefix[STORE_KEY_LEN];
} smsq;

/* The outcome of one SMS, as a sender saw it. */
typedef struct smsq_outcome {
    const char *verdict; /* sent, accepted (sent, the recipient's turn held until the gateway's report), retry,
                          * failed, or release (claimed but never tried: queued again at once, not counted) */
    int refused;         /* the peer refused it (a retry then counts toward sms_max_attempts); 0 for an outage */
    int attempts;        /* attempts so far, this one included */
    const char *detail;  /* the peer's answer or the reason */
    const char *const *ids; /* sent: each part's message id spellings joined by ',' */
    int nids;
} smsq_outcome;

/* Counts an SMS's new status in the metrics (sav_sms_total{outcome}). */
void smsq_count(const char *status);

/* Connects (Redis may be down: calls then fail until it is back); 0 or -1 with err. */
int smsq_open(smsq *q, const settings *s);

/* Closes the connection. */
void smsq_close(smsq *q);

/* Claims at most room SMS whose turn it is (sms_claim). turn_ms: a recipient's SMS that was handed to a gateway
 * longer ago than this no longer holds their turn (0: the turn is only released by the outcome). handover: the
 * claims stay marked untried until sms_handover, so that a crash before it is not counted as a possible
 * duplicate. Returns the array reply {{id, flat hash}...} (free with freeReplyObject) or NULL (Redis down, or
 * nothing claimed). */
redisReply *smsq_claim(smsq *q, int room, int turn_ms, int handover);

/* Records the outcome of one claimed SMS (sms_done): 0, or -1 with err when Redis did not take it. */
int smsq_done(smsq *q, const char *nid, const smsq_outcome *o);

/* Records an SMSC delivery receipt for the part whose message id is one of the spellings (sms_receipt): 0, or -1
 * with err when Redis did not take it. */
int smsq_receipt(smsq *q, const char *const *spellings, int n, const char *state);

#define SMSQ_ID_LEN 128

/* Told, once its queued call was sent, whether Redis took it (0) or not (-1, err set). */
typedef void (*smsq_result_fn)(void *ctx, int rc);

/* smsq_done and smsq_receipt queued for smsq_flush, which sends every queued call in one round trip (the outcomes
 * of SMS without WAIT, as smsq_done); fn hears each one's result. 0, or -1 with err (nothing queued). */
int smsq_done_later(smsq *q, const char *nid, const smsq_outcome *o, smsq_result_fn fn, void *ctx);
int smsq_receipt_later(smsq *q, const char *const *spellings, int n, const char *state, smsq_result_fn fn,
                       void *ctx);

/* Sends the queued calls; returns how many, or -1 when Redis was unreachable (each fn then heard -1). */
int smsq_flush(smsq *q);

/* Renews the claims of the SMS in hand, so that a slow send is never taken for one whose sender died. */
int smsq_renew(smsq *q, const char *const *nids, int n);

/* Returns 1 inside the quiet hours (Europe/Paris), when only urgent SMS go. */
int smsq_quiet(const smsq *q, int64_t now_ms);

/* Returns the delay before the next attempt of a temporary failure: doubling from 1 s, capped. */
int64_t smsq_backoff(const settings *s, int attempts);

/* Returns 1 if a customer's SMS text (UTF-8 or ASCII, len bytes) says STOP: any case, surrounding blanks. */
int smsq_is_stop(const char *text, size_t len);

/* Records a STOP from a number (E.164, digits with or without '+', or French national form): every customer at
 * that number leaves marketing messages. Returns how many customers it concerned (0 for a sender that is no phone
 * number), or -1 with err when Redis did not take it (the peer should offer it again). */
long smsq_stop(smsq *q, const char *from);

#endif
