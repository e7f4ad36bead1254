/* smppload: an SMSC's own ceiling, met as sav-notification's client meets it (PDUs of common/smpp.c): one
 * transceiver bind, one-part GSM 03.38 submit_sm asking for a receipt, at most `window` unanswered, every deliver_sm
 * (a receipt) answered at once, one send() per PDU, with TCP_NODELAY. What it counts is what any ESME with that
 * window gets from this SMSC: the limit SAV's own SMS rate is read against. */
#ifndef SAV_BENCH_SMPPLOAD_H
#define SAV_BENCH_SMPPLOAD_H

#include "settings.h"

typedef struct bench_smpp_figures {
    long submitted, accepted, refused, receipts;
    double seconds;                /* from the first submit_sm to the last submit_sm_resp */
    double resp_per_s;             /* submit_sm_resp per second over those seconds */
    double rtt_p50_us, rtt_p99_us; /* from a submit_sm to its submit_sm_resp */
} bench_smpp_figures;

/* Binds to the SMSC of cfg (notification.smpp_host, smpp_port, smpp_system_id and smpp_password: cfg loaded as the
 * notification service's, which reads the password's file) and submits count messages from source to distinct
 * numbers, window at a time; then answers the receipts still due (for at most 5 s, so that the SMSC has none to
 * offer again to the next client) and unbinds. 0 or -1 with err. */
int bench_smpp_ceiling(const settings *cfg, const char *source, int window, long count, bench_smpp_figures *out);

#endif
