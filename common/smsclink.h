/* smsclink: the TCP connection to an SMSC, as sav-notification's SMPP client and the benchmark's load generator
 * open it: notification.smpp_host and smpp_port, Nagle off (each PDU is one write, and one written while the
 * previous is unanswered would otherwise wait for the SMSC's delayed ACK), and writes bounded by
 * notification.smpp_response_ms. */
#ifndef SAV_SMSCLINK_H
#define SAV_SMSCLINK_H

#include <stddef.h>
#include <stdint.h>

#include "settings.h"

/* Connects to the configured SMSC; returns the socket (the caller closes it), or -1 with err. */
int smsclink_connect(const settings *s);

/* Writes a whole PDU (retrying interrupted and partial writes); 0, or -1 with err when the link is gone. */
int smsclink_write(int fd, const uint8_t *pdu, size_t len);

#endif
