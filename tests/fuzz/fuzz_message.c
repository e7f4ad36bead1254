/* Every message of proto/sav.proto decoded and validated as a body (envelope_body): the first byte of the
 * input chooses the message, the rest is its encoding. An accepted body passes the checks of fuzz_proto.h;
 * for a Command, the argument readers of common/command agree with the arguments decoded. */
#include "fuzz_proto.h"

#include "command.h"

static const ProtobufCMessageDescriptor *const messages[] = {
    &sav__error_reply__descriptor, &sav__ping__descriptor, &sav__pong__descriptor,
    &sav__contact__descriptor, &sav__ticket_open__descriptor, &sav__ticket_opened__descriptor,
    &sav__ticket_show__descriptor, &sav__field__descriptor, &sav__timeline_entry__descriptor,
    &sav__notification_view__descriptor, &sav__ticket_view__descriptor, &sav__section__descriptor,
    &sav__command__descriptor, &sav__command_result__descriptor, &sav__ack__descriptor,
    &sav__part_line__descriptor, &sav__ticket_received__descriptor, &sav__prediagnosis_done__descriptor,
    &sav__customer_notice__descriptor, &sav__verdict_recorded__descriptor, &sav__ticket_ready__descriptor,
    &sav__coverage_estimated__descriptor, &sav__envelope__descriptor};
#define NMESSAGES (sizeof(messages) / sizeof(messages[0]))

static void check_command(const Sav__Command *c) {
    static const char *const none[] = {NULL};
    FUZZ_CHECK(command_check_names(c, none) == (c->n_args ? -1 : 0));
    for (size_t i = 0; i < c->n_args; i++) {
        const char *name = c->args[i]->name;
        const char *first = command_arg(c, name), *values[4];
        FUZZ_CHECK(first != NULL && command_flag(c, name));
        size_t n = command_args(c, name, values, 4), count = 0;
        for (size_t j = 0; j < c->n_args; j++) count += strcmp(c->args[j]->name, name) == 0;
        FUZZ_CHECK(n == count && values[0] == first);
        long v;
        if (command_int(c, name, -1000, 1000, 7, &v) == 0) FUZZ_CHECK(v >= -1000 && v <= 1000);
        const char *allowed[] = {name, NULL};
        if (count == c->n_args) FUZZ_CHECK(command_check_names(c, allowed) == 0);
    }
    long v;
    FUZZ_CHECK(command_int(c, "\x01 absent", 0, 10, 7, &v) == 0 && v == 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const ProtobufCMessageDescriptor *d = messages[data[0] % NMESSAGES];
    Sav__Envelope env = SAV__ENVELOPE__INIT;
    uint8_t *body = malloc(size);
    if (!body) abort();
    memcpy(body, data + 1, size - 1);
    env.body.data = body, env.body.len = size - 1;
    ProtobufCMessage *m = envelope_body(&env, d);
    if (m) {
        fuzz_proto_check(m, size - 1);
        if (d == &sav__command__descriptor) check_command((const Sav__Command *)m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    free(body);
    return 0;
}
