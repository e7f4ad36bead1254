/* request: the requests sav-bench sends (operator Commands, TicketOpen, TicketShow) packed as savctl packs them, and
 * what their replies carry. */
#ifndef SAV_BENCH_REQUEST_H
#define SAV_BENCH_REQUEST_H

#include <jansson.h>
#include <stddef.h>

#include "envelope.h"
#include "workload.h"

/* Packs the Command name with request_id (NULL for a command that changes nothing) and npairs named arguments
 * (kv[2i] its name, kv[2i+1] its value) into frame, message id mid; 0 or -1 with err. Caller frees frame. */
int bench_request_command(const char *name, const char *request_id, const char *const *kv, size_t npairs,
                          const char *mid, envelope_buf *frame);

/* Packs the TicketOpen of a workload ticket (a drop-off repair) for its registered customer; 0 or -1 with err.
 * Caller frees frame. */
int bench_request_open(const bench_ticket *t, const char *customer_id, const char *request_id, const char *mid,
                       envelope_buf *frame);

/* Packs a TicketShow of ticket_id; 0 or -1 with err. Caller frees frame. */
int bench_request_show(const char *ticket_id, const char *mid, envelope_buf *frame);

/* Returns the JSON document of a CommandResult reply, NULL for any other reply. Caller json_decref's it. */
json_t *bench_reply_json(const Sav__Envelope *reply);

/* Returns the ErrorCode of an ErrorReply and copies its sentence into msg (cap bytes); 0 for any other reply. */
int bench_reply_error(const Sav__Envelope *reply, char *msg, size_t cap);

#endif
