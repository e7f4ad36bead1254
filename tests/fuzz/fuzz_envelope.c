/* Envelope decoding and validation (envelope_unpack), then the body as the message its type names
 * (envelope_body), as every service reads a frame off its socket. An accepted envelope has a known type,
 * schema version 1, a message id of 1 to 63 bytes, a valid ticket id if any, clean strings; packed again
 * with envelope_pack_raw it has the input's length (unless it had unknown fields) and decodes to the same
 * envelope, whose encoding is stable. An accepted body passes the checks of fuzz_proto.h. */
#include "fuzz_proto.h"

#include "validate.h"

static const ProtobufCMessageDescriptor *body_of(int type) {
    switch (type) {
    case SAV__MESSAGE_TYPE__PING: return &sav__ping__descriptor;
    case SAV__MESSAGE_TYPE__PONG: return &sav__pong__descriptor;
    case SAV__MESSAGE_TYPE__ERROR_REPLY: return &sav__error_reply__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_OPEN: return &sav__ticket_open__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_OPENED: return &sav__ticket_opened__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_SHOW: return &sav__ticket_show__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_VIEW: return &sav__ticket_view__descriptor;
    case SAV__MESSAGE_TYPE__COMMAND: return &sav__command__descriptor;
    case SAV__MESSAGE_TYPE__COMMAND_RESULT: return &sav__command_result__descriptor;
    case SAV__MESSAGE_TYPE__EVENT_ACK: return &sav__ack__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_RECEIVED: return &sav__ticket_received__descriptor;
    case SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE: return &sav__prediagnosis_done__descriptor;
    case SAV__MESSAGE_TYPE__COVERAGE_ESTIMATED: return &sav__coverage_estimated__descriptor;
    case SAV__MESSAGE_TYPE__CUSTOMER_NOTICE: return &sav__customer_notice__descriptor;
    case SAV__MESSAGE_TYPE__VERDICT_RECORDED: return &sav__verdict_recorded__descriptor;
    case SAV__MESSAGE_TYPE__TICKET_READY: return &sav__ticket_ready__descriptor;
    default: return NULL;
    }
}

static int same_string(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 0) FUZZ_CHECK(envelope_unpack(data, size, size - 1) == NULL); /* bus.max_frame_bytes */
    Sav__Envelope *env = envelope_unpack(data, size, 65536);
    if (!env) return 0;
    FUZZ_CHECK(envelope_type_name(env->type) != NULL && body_of(env->type) != NULL);
    FUZZ_CHECK(env->schema_version == ENVELOPE_SCHEMA_VERSION);
    FUZZ_CHECK(env->message_id && env->message_id[0] && strlen(env->message_id) < ENVELOPE_ID_LEN);
    FUZZ_CHECK(!env->ticket_id || validate_ticket_id(env->ticket_id) == 0);
    fuzz_proto_strings(&env->base, 0);

    envelope_buf again, third;
    FUZZ_CHECK(envelope_pack_raw(env->type, env->message_id, env->ticket_id, env->source, env->created_at_ms,
                                 env->body.data, env->body.len, &again) == 0);
    /* Unknown fields (a newer sender's) are accepted and not packed again. */
    FUZZ_CHECK(env->base.n_unknown_fields > 0 || again.len == size);
    Sav__Envelope *env2 = envelope_unpack(again.data, again.len, 65536);
    FUZZ_CHECK(env2 != NULL);
    FUZZ_CHECK(env2->type == env->type && env2->created_at_ms == env->created_at_ms);
    FUZZ_CHECK(strcmp(env2->message_id, env->message_id) == 0 && same_string(env2->ticket_id, env->ticket_id));
    FUZZ_CHECK(same_string(env2->source, env->source));
    FUZZ_CHECK(env2->body.len == env->body.len &&
               (!env->body.len || memcmp(env2->body.data, env->body.data, env->body.len) == 0));
    FUZZ_CHECK(envelope_pack_raw(env2->type, env2->message_id, env2->ticket_id, env2->source, env2->created_at_ms,
                                 env2->body.data, env2->body.len, &third) == 0);
    FUZZ_CHECK(third.len == again.len && memcmp(third.data, again.data, again.len) == 0);
    envelope_buf_free(&again), envelope_buf_free(&third);
    envelope_free(env2);

    ProtobufCMessage *body = envelope_body(env, body_of(env->type));
    if (body) {
        fuzz_proto_check(body, env->body.len);
        protobuf_c_message_free_unpacked(body, NULL);
    }
    envelope_free(env);
    return 0;
}
