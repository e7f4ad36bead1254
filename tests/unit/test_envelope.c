/* Unit tests for common/envelope.c: pack/unpack round trip and every refusal of an untrusted frame. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "envelope.h"

#define MAX_FRAME 65536
#define ID "0123456789abcdef0123456789abcdef"
#define AT_MS 1798759800123LL

/* Packs a Ping from "savctl" in an envelope with the given ticket and source. */
static void pack_ping(const char *ticket, const char *source, envelope_buf *out) {
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "savctl";
    unit_err_clear();
    if (envelope_pack(SAV__MESSAGE_TYPE__PING, ID, ticket, source, AT_MS, &ping.base, out) != 0)
        fail_msg("envelope_pack: %s", err_get());
}

/* Packs env as it is, bypassing envelope_pack's defaults. */
static void pack_raw_envelope(const Sav__Envelope *env, envelope_buf *out) {
    out->len = sav__envelope__get_packed_size(env);
    out->data = malloc(out->len);
    assert_non_null(out->data);
    assert_int_equal(out->len, sav__envelope__pack(env, out->data));
}

/* A valid envelope around an empty Ping body, for tests to alter one field. */
static Sav__Envelope valid_envelope(void) {
    Sav__Envelope env = SAV__ENVELOPE__INIT;
    env.message_id = ID;
    env.type = SAV__MESSAGE_TYPE__PING;
    env.schema_version = ENVELOPE_SCHEMA_VERSION;
    env.created_at_ms = AT_MS;
    env.body.data = NULL;
    env.body.len = 0;
    return env;
}

/* Fails unless the frame is refused with an error containing needle. */
static void unpack_refused(const uint8_t *data, size_t len, const char *needle) {
    unit_err_clear();
    Sav__Envelope *env = envelope_unpack(data, len, MAX_FRAME);
    if (env) {
        envelope_free(env);
        fail_msg("envelope_unpack accepted a %zu-byte frame, expected \"%s\"", len, needle);
    }
    assert_err_contains(needle);
}

static void test_round_trip_keeps_every_field(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping("T-2026-000042", "intake", &buf);
    unit_err_clear();
    Sav__Envelope *env = envelope_unpack(buf.data, buf.len, MAX_FRAME);
    if (!env) fail_msg("envelope_unpack: %s", err_get());
    assert_string_equal(ID, env->message_id);
    assert_int_equal(SAV__MESSAGE_TYPE__PING, env->type);
    assert_int_equal(ENVELOPE_SCHEMA_VERSION, env->schema_version);
    assert_string_equal("T-2026-000042", env->ticket_id);
    assert_string_equal("intake", env->source);
    assert_int_equal(AT_MS, env->created_at_ms);

    Sav__Ping *ping = (Sav__Ping *)envelope_body(env, &sav__ping__descriptor);
    if (!ping) fail_msg("envelope_body: %s", err_get());
    assert_ptr_equal(&sav__ping__descriptor, ping->base.descriptor);
    assert_string_equal("savctl", ping->from);
    protobuf_c_message_free_unpacked(&ping->base, NULL);
    envelope_free(env);
    envelope_buf_free(&buf);
}

static void test_round_trip_without_ticket_and_source(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping(NULL, NULL, &buf);
    Sav__Envelope *env = envelope_unpack(buf.data, buf.len, MAX_FRAME);
    if (!env) fail_msg("envelope_unpack: %s", err_get());
    assert_null(env->ticket_id);
    assert_null(env->source);
    assert_string_equal(ID, env->message_id);
    envelope_free(env);
    envelope_buf_free(&buf);
}

static void test_pack_raw_matches_pack(void **state) {
    (void)state;
    Sav__Ping ping = SAV__PING__INIT;
    ping.from = "savctl";
    uint8_t body[64];
    size_t body_len = protobuf_c_message_pack(&ping.base, body);
    envelope_buf a = {0}, b = {0};
    pack_ping("T-2026-000042", "intake", &a);
    assert_int_equal(0, envelope_pack_raw(SAV__MESSAGE_TYPE__PING, ID, "T-2026-000042", "intake", AT_MS, body,
                                          body_len, &b));
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    envelope_buf_free(&a);
    envelope_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(0, b.len);
    envelope_buf_free(&b); /* safe on an empty buffer */
    envelope_free(NULL);
}

static void test_new_id_is_32_random_hex_digits(void **state) {
    (void)state;
    char a[ENVELOPE_ID_LEN], b[ENVELOPE_ID_LEN];
    envelope_new_id(a);
    envelope_new_id(b);
    assert_int_equal(32, strlen(a));
    assert_int_equal(32, strspn(a, "0123456789abcdef"));
    assert_int_equal(32, strlen(b));
    assert_string_not_equal(a, b);
}

static void test_oversized_frame_refused(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping(NULL, NULL, &buf);
    unit_err_clear();
    assert_null(envelope_unpack(buf.data, buf.len, buf.len - 1));
    char expected[96];
    snprintf(expected, sizeof(expected), "frame too large: %zu bytes, limit %zu", buf.len, buf.len - 1);
    assert_err_equal(expected);
    /* Exactly at the limit is fine. */
    Sav__Envelope *env = envelope_unpack(buf.data, buf.len, buf.len);
    assert_non_null(env);
    envelope_free(env);
    envelope_buf_free(&buf);
}

static void test_garbage_refused(void **state) {
    (void)state;
    static const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    unpack_refused(ff, sizeof(ff), "malformed envelope: not a valid protobuf Envelope (6 bytes)");
    static const uint8_t text[] = "GET / HTTP/1.1\r\n\r\n";
    unpack_refused(text, sizeof(text) - 1, "malformed envelope");
    unpack_refused(NULL, 0, "malformed envelope: not a valid protobuf Envelope (0 bytes)");
    /* A well-formed protobuf that lacks the required fields. */
    static const uint8_t only_id[] = {0x0a, 0x01, 'a'};
    unpack_refused(only_id, sizeof(only_id), "malformed envelope");
}

static void test_truncated_frame_refused(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping("T-2026-000042", "intake", &buf);
    for (size_t cut = 0; cut < buf.len; cut++) {
        unit_err_clear();
        Sav__Envelope *env = envelope_unpack(buf.data, cut, MAX_FRAME);
        if (env) {
            envelope_free(env);
            envelope_buf_free(&buf);
            fail_msg("a frame cut to %zu bytes was accepted", cut);
        }
        assert_err_contains("malformed envelope");
    }
    envelope_buf_free(&buf);
}

static void test_unknown_message_type_refused(void **state) {
    (void)state;
    Sav__Envelope env = valid_envelope();
    envelope_buf buf = {0};
    env.type = (Sav__MessageType)77;
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "unknown message type 77");
    envelope_buf_free(&buf);
    env.type = SAV__MESSAGE_TYPE__MT_UNSPECIFIED;
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "unknown message type 0");
    envelope_buf_free(&buf);
}

static void test_wrong_schema_version_refused(void **state) {
    (void)state;
    Sav__Envelope env = valid_envelope();
    envelope_buf buf = {0};
    env.schema_version = 2;
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "unsupported schema version 2 (this build speaks 1)");
    envelope_buf_free(&buf);
    env.schema_version = 0;
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "unsupported schema version 0");
    envelope_buf_free(&buf);
}

static void test_invalid_utf8_string_refused(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping(NULL, "int\xC3\x28ke", &buf);
    unpack_refused(buf.data, buf.len, "field source: invalid UTF-8 continuation at offset 4");
    envelope_buf_free(&buf);

    Sav__Envelope env = valid_envelope();
    env.message_id = "id-\xED\xA0\x80";
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "field message_id: invalid UTF-8 code point U+D800");
    envelope_buf_free(&buf);
}

static void test_control_character_in_string_refused(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping(NULL, "int\x1bke", &buf);
    unpack_refused(buf.data, buf.len, "field source contains control character 0x1b");
    envelope_buf_free(&buf);
}

static void test_embedded_nul_refused_as_not_canonical(void **state) {
    (void)state;
    /* message_id "ab\0cd", type PING, schema 1, created_at 0, empty body. */
    static const uint8_t frame[] = {0x0a, 0x05, 'a', 'b', 0x00, 'c', 'd', 0x10, 0x01,
                                    0x18, 0x01, 0x28, 0x00, 0x3a, 0x00};
    unpack_refused(frame, sizeof(frame), "envelope is not canonical (15 bytes decode to 12)");
    /* The same frame with "abxcd" is accepted: the refusal is about the NUL. */
    uint8_t fixed[sizeof(frame)];
    memcpy(fixed, frame, sizeof(frame));
    fixed[4] = 'x';
    Sav__Envelope *env = envelope_unpack(fixed, sizeof(fixed), MAX_FRAME);
    if (!env) fail_msg("envelope_unpack: %s", err_get());
    assert_string_equal("abxcd", env->message_id);
    envelope_free(env);
}

static void test_repeated_field_refused_as_not_canonical(void **state) {
    (void)state;
    /* message_id sent twice: the decoder keeps the last one and the re-encoding is shorter. */
    static const uint8_t frame[] = {0x0a, 0x01, 'a', 0x0a, 0x01, 'b', 0x10, 0x01, 0x18, 0x01, 0x28, 0x00, 0x3a, 0x00};
    unpack_refused(frame, sizeof(frame), "envelope is not canonical");
}

static void test_unknown_field_accepted_for_forward_compatibility(void **state) {
    (void)state;
    /* A valid envelope followed by field 15 (varint 1), as a newer sender might add. */
    static const uint8_t frame[] = {0x0a, 0x01, 'a', 0x10, 0x01, 0x18, 0x01, 0x28, 0x00, 0x3a, 0x00, 0x78, 0x01};
    Sav__Envelope *env = envelope_unpack(frame, sizeof(frame), MAX_FRAME);
    if (!env) fail_msg("envelope_unpack: %s", err_get());
    assert_string_equal("a", env->message_id);
    envelope_free(env);
}

static void test_bad_message_id_refused(void **state) {
    (void)state;
    Sav__Envelope env = valid_envelope();
    envelope_buf buf = {0};
    env.message_id = "";
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "message id must have 1 to 63 characters");
    envelope_buf_free(&buf);
    char id[ENVELOPE_ID_LEN + 1];
    memset(id, 'a', ENVELOPE_ID_LEN);
    id[ENVELOPE_ID_LEN] = '\0';
    env.message_id = id;
    pack_raw_envelope(&env, &buf);
    unpack_refused(buf.data, buf.len, "message id must have 1 to 63 characters");
    envelope_buf_free(&buf);
    id[ENVELOPE_ID_LEN - 1] = '\0'; /* 63 characters: accepted */
    pack_raw_envelope(&env, &buf);
    Sav__Envelope *ok = envelope_unpack(buf.data, buf.len, MAX_FRAME);
    assert_non_null(ok);
    envelope_free(ok);
    envelope_buf_free(&buf);
}

static void test_bad_ticket_id_refused(void **state) {
    (void)state;
    envelope_buf buf = {0};
    pack_ping("T-26-1", NULL, &buf);
    unpack_refused(buf.data, buf.len, "\"T-26-1\" is not a ticket id (expected T-YYYY-NNNNNN)");
    envelope_buf_free(&buf);
    pack_ping("", NULL, &buf);
    unpack_refused(buf.data, buf.len, "\"\" is not a ticket id");
    envelope_buf_free(&buf);
}

/* Fails unless envelope_body refuses env's body as desc with an error containing needle. */
static void body_refused(const uint8_t *body, size_t len, const ProtobufCMessageDescriptor *desc, const char *needle) {
    Sav__Envelope env = valid_envelope();
    env.body.data = (uint8_t *)body;
    env.body.len = len;
    unit_err_clear();
    ProtobufCMessage *m = envelope_body(&env, desc);
    if (m) {
        protobuf_c_message_free_unpacked(m, NULL);
        fail_msg("envelope_body accepted a %zu-byte %s", len, desc->short_name);
    }
    assert_err_contains(needle);
}

static void test_body_refusals(void **state) {
    (void)state;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    body_refused(garbage, sizeof(garbage), &sav__ping__descriptor, "malformed Ping body (3 bytes)");
    /* Pong has required fields: an empty body is not a Pong. */
    body_refused(NULL, 0, &sav__pong__descriptor, "malformed Pong body (0 bytes)");
    static const uint8_t nul[] = {0x0a, 0x03, 'a', 0x00, 'b'};
    body_refused(nul, sizeof(nul), &sav__ping__descriptor, "Ping is not canonical (5 bytes decode to 3)");
    static const uint8_t bad_utf8[] = {0x0a, 0x02, 0xc3, 0x28};
    body_refused(bad_utf8, sizeof(bad_utf8), &sav__ping__descriptor, "field from: invalid UTF-8 continuation");
    static const uint8_t ctrl[] = {0x0a, 0x02, 'a', 0x07};
    body_refused(ctrl, sizeof(ctrl), &sav__ping__descriptor, "field from contains control character 0x07");
}

static void test_check_strings_walks_nested_and_repeated_fields(void **state) {
    (void)state;
    Sav__Contact contact = SAV__CONTACT__INIT;
    contact.name = "Jean Dupont";
    contact.lang = "fr";
    char *codes[] = {"E21", "F05"};
    Sav__TicketOpen open = SAV__TICKET_OPEN__INIT;
    open.request_id = "req-1";
    open.customer = &contact;
    open.serial = "SN1";
    open.model = "WM-7";
    open.kind = "repair";
    open.channel = "drop_off";
    open.symptom = "Ne vidange plus.\nBruit au d\xC3\xA9marrage.";
    open.n_fault_codes = 2;
    open.fault_codes = codes;
    assert_int_equal(0, envelope_check_strings(&open.base));

    contact.name = "Jean \xC3";
    unit_err_clear();
    assert_int_equal(-1, envelope_check_strings(&open.base));
    assert_err_equal("field name: truncated UTF-8 sequence at offset 5");
    contact.name = "Jean Dupont";

    codes[1] = "F\x01" "05";
    unit_err_clear();
    assert_int_equal(-1, envelope_check_strings(&open.base));
    assert_err_equal("field fault_codes contains control character 0x01");
}

static void test_type_names(void **state) {
    (void)state;
    assert_string_equal("ping", envelope_type_name(SAV__MESSAGE_TYPE__PING));
    assert_string_equal("pong", envelope_type_name(SAV__MESSAGE_TYPE__PONG));
    assert_string_equal("error", envelope_type_name(SAV__MESSAGE_TYPE__ERROR_REPLY));
    assert_string_equal("ticket.open", envelope_type_name(SAV__MESSAGE_TYPE__TICKET_OPEN));
    assert_string_equal("ticket.opened", envelope_type_name(SAV__MESSAGE_TYPE__TICKET_OPENED));
    assert_string_equal("ticket.show", envelope_type_name(SAV__MESSAGE_TYPE__TICKET_SHOW));
    assert_string_equal("ticket.view", envelope_type_name(SAV__MESSAGE_TYPE__TICKET_VIEW));
    assert_string_equal("event.ack", envelope_type_name(SAV__MESSAGE_TYPE__EVENT_ACK));
    assert_string_equal("ticket.received", envelope_type_name(SAV__MESSAGE_TYPE__TICKET_RECEIVED));
    assert_string_equal("prediagnosis.done", envelope_type_name(SAV__MESSAGE_TYPE__PREDIAGNOSIS_DONE));
    assert_string_equal("coverage.estimated", envelope_type_name(SAV__MESSAGE_TYPE__COVERAGE_ESTIMATED));
    assert_null(envelope_type_name(SAV__MESSAGE_TYPE__MT_UNSPECIFIED));
    assert_null(envelope_type_name(77));
    assert_null(envelope_type_name(-1));
}

static void test_every_schema_type_has_a_name(void **state) {
    (void)state;
    /* A type added to sav.proto without a name here would be refused by every receiver. */
    const ProtobufCEnumDescriptor *d = &sav__message_type__descriptor;
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        if (v == SAV__MESSAGE_TYPE__MT_UNSPECIFIED) continue;
        if (!envelope_type_name(v)) fail_msg("message type %s (%d) has no name", d->values[i].name, v);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_field),
        cmocka_unit_test(test_round_trip_without_ticket_and_source),
        cmocka_unit_test(test_pack_raw_matches_pack),
        cmocka_unit_test(test_new_id_is_32_random_hex_digits),
        cmocka_unit_test(test_oversized_frame_refused),
        cmocka_unit_test(test_garbage_refused),
        cmocka_unit_test(test_truncated_frame_refused),
        cmocka_unit_test(test_unknown_message_type_refused),
        cmocka_unit_test(test_wrong_schema_version_refused),
        cmocka_unit_test(test_invalid_utf8_string_refused),
        cmocka_unit_test(test_control_character_in_string_refused),
        cmocka_unit_test(test_embedded_nul_refused_as_not_canonical),
        cmocka_unit_test(test_repeated_field_refused_as_not_canonical),
        cmocka_unit_test(test_unknown_field_accepted_for_forward_compatibility),
        cmocka_unit_test(test_bad_message_id_refused),
        cmocka_unit_test(test_bad_ticket_id_refused),
        cmocka_unit_test(test_body_refusals),
        cmocka_unit_test(test_check_strings_walks_nested_and_repeated_fields),
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_every_schema_type_has_a_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
