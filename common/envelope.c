#include "envelope.h"
#include "err.h"
#include "validate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Deeper nesting than this is refused; our schemas nest at most 2 levels. */
#define ENVELOPE_MAX_DEPTH 4

void envelope_new_id(char out[ENVELOPE_ID_LEN]) {
    unsigned char raw[16];
    size_t got = 0;
    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n > 0) got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(raw); i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

int envelope_pack_raw(Sav__MessageType type, const char *message_id, const char *ticket_id, const char *source,
                      int64_t created_at_ms, const uint8_t *body, size_t body_len, envelope_buf *out) {
    Sav__Envelope env = SAV__ENVELOPE__INIT;
    env.message_id = (char *)message_id;
    env.type = type;
    env.schema_version = ENVELOPE_SCHEMA_VERSION;
    env.ticket_id = (char *)ticket_id;
    env.created_at_ms = created_at_ms;
    env.source = (char *)source;
    env.body.data = (uint8_t *)body;
    env.body.len = body_len;
    out->len = sav__envelope__get_packed_size(&env);
    out->data = malloc(out->len ? out->len : 1);
    if (!out->data) {
        err_set("out of memory packing a %zu-byte envelope", out->len);
        return -1;
    }
    sav__envelope__pack(&env, out->data);
    return 0;
}

int envelope_pack(Sav__MessageType type, const char *message_id, const char *ticket_id, const char *source,
                  int64_t created_at_ms, const ProtobufCMessage *body, envelope_buf *out) {
    size_t len = protobuf_c_message_get_packed_size(body);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        err_set("out of memory packing a %zu-byte message", len);
        return -1;
    }
    protobuf_c_message_pack(body, buf);
    int rc = envelope_pack_raw(type, message_id, ticket_id, source, created_at_ms, buf, len, out);
    free(buf);
    return rc;
}

void envelope_buf_free(envelope_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

static int envelope_check_string(const char *field, const char *s) {
    if (!s) return 0;
    size_t len = strlen(s);
    if (validate_utf8(s, len) != 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", err_get());
        err_set("field %s: %s", field, why);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) {
            err_set("field %s contains control character 0x%02x", field, c);
            return -1;
        }
    }
    return 0;
}

static int envelope_check_depth(const ProtobufCMessage *msg, int depth);

/* Checks the value(s) of one field, whatever its label. */
static int envelope_check_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, int depth) {
    const char *base = (const char *)msg + f->offset;
    if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
    size_t count = 1;
    const void *const *values = (const void *const *)base;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        count = *(const size_t *)((const char *)msg + f->quantifier_offset);
        values = *(const void *const *const *)base;
    }
    for (size_t i = 0; i < count; i++) {
        const void *v = values[i];
        if (f->type == PROTOBUF_C_TYPE_STRING) {
            if (envelope_check_string(f->name, v) != 0) return -1;
        } else if (v && envelope_check_depth(v, depth + 1) != 0) {
            return -1;
        }
    }
    return 0;
}

static int envelope_check_depth(const ProtobufCMessage *msg, int depth) {
    if (depth > ENVELOPE_MAX_DEPTH) {
        err_set("message nests deeper than %d levels", ENVELOPE_MAX_DEPTH);
        return -1;
    }
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++)
        if (envelope_check_field(msg, &d->fields[i], depth) != 0) return -1;
    return 0;
}

int envelope_check_strings(const ProtobufCMessage *msg) {
    return envelope_check_depth(msg, 0);
}

/* protobuf-c keeps unknown fields and re-encodes canonical input to the same
 * length; a string cut at an embedded NUL or a duplicated field does not. */
static int envelope_check_canonical(const ProtobufCMessage *msg, size_t wire_len, const char *what) {
    size_t again = protobuf_c_message_get_packed_size(msg);
    if (again != wire_len) {
        err_set("%s is not canonical (%zu bytes decode to %zu): embedded NUL or repeated field", what, wire_len,
                again);
        return -1;
    }
    return 0;
}

Sav__Envelope *envelope_unpack(const uint8_t *data, size_t len, size_t max_len) {
    if (len > max_len) {
        err_set("frame too large: %zu bytes, limit %zu", len, max_len);
        return NULL;
    }
    Sav__Envelope *env = sav__envelope__unpack(NULL, len, data);
    if (!env) {
        err_set("malformed envelope: not a valid protobuf Envelope (%zu bytes)", len);
        return NULL;
    }
    if (envelope_check_canonical(&env->base, len, "envelope") != 0 || envelope_check_strings(&env->base) != 0)
        goto bad;
    if (!envelope_type_name(env->type)) {
        err_set("unknown message type %d", (int)env->type);
        goto bad;
    }
    if (env->schema_version != ENVELOPE_SCHEMA_VERSION) {
        err_set("unsupported schema version %u (this build speaks %d)", env->schema_version, ENVELOPE_SCHEMA_VERSION);
        goto bad;
    }
    if (env->message_id[0] == '\0' || strlen(env->message_id) >= ENVELOPE_ID_LEN) {
        err_set("message id must have 1 to %d characters", ENVELOPE_ID_LEN - 1);
        goto bad;
    }
    if (env->ticket_id && validate_ticket_id(env->ticket_id) != 0) goto bad;
    return env;
bad:
    sav__envelope__free_unpacked(env, NULL);
    return NULL;
}

void envelope_free(Sav__Envelope *env) {
    if (env) sav__envelope__free_unpacked(env, NULL);
}

ProtobufCMessage *envelope_body(const Sav__Envelope *env, const ProtobufCMessageDescriptor *desc) {
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, env->body.len, env->body.data);
    if (!m) {
        err_set("malformed %s body (%zu bytes)", desc->short_name, env->body.len);
        return NULL;
    }
    if (envelope_check_canonical(m, env->body.len, desc->short_name) != 0 || envelope_check_strings(m) != 0) {
        protobuf_c_message_free_unpacked(m, NULL);
        return NULL;
    }
    return m;
}

const char *envelope_type_name(int type) {
    switch (type) {
    case SAV__MESSAGE_TYPE__PING: return "ping";
    case SAV__MESSAGE_TYPE__PONG: return "pong";
    case SAV__MESSAGE_TYPE__ERROR_REPLY: return "error";
    case SAV__MESSAGE_TYPE__TICKET_OPEN: return "ticket.open";
    case SAV__MESSAGE_TYPE__TICKET_OPENED: return "ticket.opened";
    case SAV__MESSAGE_TYPE__TICKET_SHOW: return "ticket.show";
    case SAV__MESSAGE_TYPE__TICKET_VIEW: return "ticket.view";
    case SAV__MESSAGE_TYPE__EVENT_ACK: return "event.ack";
    case SAV__MESSAGE_TYPE__TICKET_RECEIVED: return "ticket.received";
    case SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE: return "prediagnosis.done";
    case SAV__MESSAGE_TYPE__COVERAGE_ESTIMATED: return "coverage.estimated";
    case SAV__MESSAGE_TYPE__CUSTOMER_NOTICE: return "customer.notice";
    case SAV__MESSAGE_TYPE__VERDICT_RECORDED: return "verdict.recorded";
    case SAV__MESSAGE_TYPE__TICKET_READY: return "ticket.ready";
    case SAV__MESSAGE_TYPE__COMMAND: return "command";
    case SAV__MESSAGE_TYPE__COMMAND_RESULT: return "command.result";
    default: return NULL;
    }
}
