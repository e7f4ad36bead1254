/* smsgw: sends the queued SMS through an HTTP gateway (Kannel's sendsms interface, or any gateway with the same
 * contract), the second SMS transport (notification.sms_transport = http). A thread of the notification service
 * claims each SMS, gives it a fresh random token, and asks the gateway to send it: one GET built from the URL
 * template notification.http_sms_url, every value URL-escaped, coding 0 (GSM 03.38) or 2 (UCS-2) chosen as for
 * SMPP, the gateway cutting long texts into concatenated parts. A 2xx answer means the gateway took the SMS
 * (sent); the gateway then calls back, on the listener notification.http_listen, /sms/dlr with the token: the
 * SMSC accepted (8) or refused (16) it, it reached the phone (1) or not (2). A recipient's next SMS waits until
 * the SMSC accepted or refused the one before (at most notification.http_sms_turn_ms), so that the gateway's
 * own retries never reorder them. /sms/mo takes customers' replies (a STOP leaves marketing messages), with the
 * key notification.http_callback_key.
 * Answers: 401 or 403 (the gateway refuses our credentials) and no answer at all are outages: the SMS waits,
 * attempts not used up; another 4xx fails the SMS with the gateway's answer; a 5xx is a temporary refusal,
 * retried with backoff up to sms_max_attempts.
 * The duplicate window: the gateway took the SMS but the process died (or the answer was lost) before the
 * outcome was recorded; the claim goes stale and the SMS is handed over again (counted in resent_after_crash),
 * unless the gateway's report on the first hand-over arrives first, which settles it. */
#ifndef SAV_SMSGW_H
#define SAV_SMSGW_H

#include "service.h"

typedef struct smsgw smsgw;

/* Starts the sender when SMS go through an HTTP gateway (else *out = NULL), its callbacks on the service's HTTP
 * listener (notification.http_listen); 0 or -1 with err. */
int smsgw_start(service *svc, smsgw **out);

/* Stops the sender (NULL is fine): the claims it has not tried go back to the queue; frees it. */
void smsgw_stop(smsgw *g);

#endif
