/* envelope: the frame every message travels in. Packing adds the id, type,
 * schema version and time; unpacking bounds the size, decodes, and refuses
 * anything the protobuf-c decoder lets through but we must not trust:
 * unknown types, bad schema versions, non-UTF-8 or control characters in
 * strings, embedded NULs (detected because the message no longer re-encodes
 * to the same length). */
#ifndef SAV_ENVELOPE_H
#define SAV_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "sav.pb-c.h"

#define ENVELOPE_SCHEMA_VERSION 1
#define ENVELOPE_ID_LEN 64

/* A packed frame; free with envelope_buf_free. */
typedef struct envelope_buf {
    uint8_t *data;
    size_t len;
} envelope_buf;

/* Writes a fresh random message id (32 hex digits) into out. */
void envelope_new_id(char out[ENVELOPE_ID_LEN]);

/* Packs body into an envelope frame; ticket and source may be NULL. 0, or -1 with err. Caller frees out. */
int envelope_pack(Sav__MessageType type, const char *message_id, const char *ticket_id, const char *source,
                  int64_t created_at_ms, const ProtobufCMessage *body, envelope_buf *out);

/* Packs an envelope around an already packed body (what outboxes store). Caller frees out. */
int envelope_pack_raw(Sav__MessageType type, const char *message_id, const char *ticket_id, const char *source,
                      int64_t created_at_ms, const uint8_t *body, size_t body_len, envelope_buf *out);

/* Frees a packed frame's buffer (safe on an empty one). */
void envelope_buf_free(envelope_buf *b);

/* Decodes and validates a frame of at most max_len bytes. Returns NULL with err set; free with envelope_free. */
Sav__Envelope *envelope_unpack(const uint8_t *data, size_t len, size_t max_len);

/* Frees what envelope_unpack returned (NULL is fine). */
void envelope_free(Sav__Envelope *env);

/* Decodes and validates the body as the given message type. NULL with err; free with protobuf_c_message_free_unpacked. */
ProtobufCMessage *envelope_body(const Sav__Envelope *env, const ProtobufCMessageDescriptor *desc);

/* Validates every string of a decoded message (UTF-8, no control characters), nested messages included. */
int envelope_check_strings(const ProtobufCMessage *msg);

/* Returns the name of a message type ("ticket.open") or NULL when the value is not a known type. */
const char *envelope_type_name(int type);

#endif
