/* fuzz_proto: the checks fuzz_envelope and fuzz_message share on a message that decoding accepted. Its
 * strings are UTF-8 without control characters (checked with fuzz.h's own decoder), it re-encodes to the
 * length it was read from (what refuses embedded NULs and duplicated fields), and its encoding decodes again,
 * through the same validating path, to a message that encodes to the same bytes. */
#ifndef SAV_FUZZ_PROTO_H
#define SAV_FUZZ_PROTO_H

#include "fuzz.h"

#include "envelope.h"

static void fuzz_proto_string(const char *s) {
    FUZZ_CHECK(s != NULL);
    size_t len = strlen(s);
    FUZZ_CHECK(fuzz_utf8_ok((const unsigned char *)s, len));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        FUZZ_CHECK(!((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F));
    }
}

static void fuzz_proto_strings(const ProtobufCMessage *m, int depth) {
    FUZZ_CHECK(depth <= 4);
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        const char *member = (const char *)m + f->offset;
        size_t n = 1;
        void *const *values = (void *const *)(const void *)member;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
            values = *(void *const *const *)(const void *)member;
        }
        for (size_t k = 0; k < n; k++) {
            if (!values[k]) {
                FUZZ_CHECK(f->label == PROTOBUF_C_LABEL_OPTIONAL);
                continue;
            }
            if (f->type == PROTOBUF_C_TYPE_STRING) fuzz_proto_string(values[k]);
            else fuzz_proto_strings(values[k], depth + 1);
        }
    }
}

/* m was decoded by envelope_body from wire_len bytes. */
static void fuzz_proto_check(const ProtobufCMessage *m, size_t wire_len) {
    fuzz_proto_strings(m, 0);
    size_t len = protobuf_c_message_get_packed_size(m);
    FUZZ_CHECK(len == wire_len);
    uint8_t *buf = malloc(len + 1), *again = malloc(len + 1);
    if (!buf || !again) abort();
    FUZZ_CHECK(protobuf_c_message_pack(m, buf) == len);
    Sav__Envelope env = SAV__ENVELOPE__INIT;
    env.body.data = buf, env.body.len = len;
    ProtobufCMessage *m2 = envelope_body(&env, m->descriptor);
    FUZZ_CHECK(m2 != NULL);
    FUZZ_CHECK(protobuf_c_message_get_packed_size(m2) == len && protobuf_c_message_pack(m2, again) == len);
    FUZZ_CHECK(memcmp(buf, again, len) == 0);
    protobuf_c_message_free_unpacked(m2, NULL);
    free(buf), free(again);
}

#endif
