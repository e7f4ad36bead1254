/* smsc: sends the queued SMS to an SMSC over SMPP 3.4 (bind_transceiver), in
 * a thread of the notification service with its own Redis connection. Each
 * SMS is claimed (status sending) before its parts are submitted, at most
 * notification.smpp_window submit_sm awaiting their response and
 * notification.smpp_tps per second. When the SMSC has accepted every part
 * the SMS is sent, and its message ids are kept to match the delivery
 * receipts (delivered, or undelivered with the receipt's state); a receipt
 * may arrive before the submit response and is kept until then. A temporary
 * refusal (throttling, queue full, system error) or a lost link queues the
 * SMS again with backoff; a final refusal fails it. A recipient's messages go
 * out in order. The one duplicate window: parts the SMSC accepted before the
 * process died or the link broke, before the acceptance was recorded, go
 * again (counted in resent_after_crash for a crash). */
#ifndef SAV_SMSC_H
#define SAV_SMSC_H

#include "settings.h"

typedef struct smsc smsc;

/* Starts the sender when SMS go over SMPP and notification.smpp_host is set (else *out = NULL); 0 or -1 with err. */
int smsc_start(const settings *s, smsc **out);

/* Stops the sender (NULL is fine): unbinds, and frees it. SMS in flight are queued again by their stale delay. */
void smsc_stop(smsc *c);

#endif
