/* mailer: sends the queued e-mails over SMTP (libcurl), in a thread of the
 * notification service with its own Redis connection. Each e-mail is
 * claimed (status sending) before the SMTP transaction and confirmed after
 * (sent, queued again after a temporary failure, or failed with the
 * server's answer). If the process dies between the server's acceptance and
 * the confirmation, the send is claimed again after notification.mail_stale_ms
 * and the customer may receive it twice, with the same Message-ID: that is
 * one duplicate window, counted in the notification (resent_after_crash). The other: a transaction cut
 * after the whole message went out but before the server's final answer (the link broke, or
 * notification.smtp_timeout_ms ran out while the server scanned the message) is retried, and the server
 * may have kept the first copy; a long enough smtp_timeout_ms keeps this rare. */
#ifndef SAV_MAILER_H
#define SAV_MAILER_H

#include "settings.h"

typedef struct mailer mailer;

/* Starts the sender when notification.smtp_url is set (else *out = NULL); 0 or -1 with err. */
int mailer_start(const settings *s, mailer **out);

/* Stops the sender after the e-mail in hand (NULL is fine) and frees it. */
void mailer_stop(mailer *m);

#endif
