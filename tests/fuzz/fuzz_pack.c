/* Packed tickets: a value read from packed:<T> (pack_decode), and a payload (pack_parts, pack_merge_pairs), both
 * from the input (first byte: which). A value that decodes has a header that reads alone with the same facts, a
 * payload of the length and SHA-1 its header names, and packed again with its own dictionary it decodes to the
 * same payload; a payload that parses has PACK_PARTS sections of the shapes the view code relies on (name/value
 * lists of even length, strings everywhere), and merging a hash with itself, or with nothing, gives it back. */
#include "fuzz.h"

#include "pack.h"
#include "sha1.h"

static void check_payload(const char *payload, size_t len) {
    json_t *parts = pack_parts(payload, len);
    if (!parts) return;
    FUZZ_CHECK(json_array_size(parts) == PACK_PARTS);
    for (size_t i = 0; i < PACK_PARTS; i++) {
        json_t *part = json_array_get(parts, i), *e;
        size_t j;
        FUZZ_CHECK(json_is_array(part));
        if (i == PACK_NOTIFICATIONS) {
            json_array_foreach(part, j, e) {
                FUZZ_CHECK(json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)));
                FUZZ_CHECK(json_array_size(json_array_get(e, 1)) % 2 == 0);
            }
            continue;
        }
        json_array_foreach(part, j, e) FUZZ_CHECK(json_is_string(e));
    }
    json_t *ticket = json_array_get(parts, PACK_TICKET);
    json_t *same = pack_merge_pairs(ticket, ticket), *alone = pack_merge_pairs(ticket, NULL);
    FUZZ_CHECK(json_array_size(same) == json_array_size(ticket) && json_array_size(alone) == json_array_size(ticket));
    for (size_t j = 0; j + 1 < json_array_size(ticket); j += 2) {
        const char *name = json_string_value(json_array_get(ticket, j));
        FUZZ_CHECK(strcmp(json_string_value(json_array_get(alone, j)), name) == 0);
        FUZZ_CHECK(pack_pairs_get(same, name) != NULL);
    }
    json_decref(same), json_decref(alone), json_decref(parts);
}

static void check_value(const uint8_t *value, size_t size) {
    pack_info info, head;
    size_t len;
    char *payload = pack_decode(value, size, &info, &len);
    if (!payload) return;
    FUZZ_CHECK(pack_header(value, size, &head) == 0 && head.dict == info.dict && head.payload_len == len &&
               head.last_change == info.last_change && strcmp(head.digest, info.digest) == 0);
    FUZZ_CHECK(payload[len] == '\0');
    uint8_t raw[SHA1_LEN];
    char hex[SHA1_HEX_LEN];
    sha1_digest(payload, len, raw);
    sha1_hex(raw, hex);
    FUZZ_CHECK(strcmp(hex, info.digest) == 0);
    size_t again_len, back_len;
    unsigned char *again = pack_encode(payload, len, info.digest, info.last_change, info.dict, &again_len);
    FUZZ_CHECK(again != NULL);
    char *back = pack_decode(again, again_len, &head, &back_len);
    FUZZ_CHECK(back && back_len == len && memcmp(back, payload, len) == 0);
    check_payload(payload, len);
    free(back), free(again), free(payload);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1) {
        check_value(data + 1, size - 1);
    } else {
        char *payload = fuzz_strndup(data + 1, size - 1);
        check_payload(payload, size - 1);
        free(payload);
    }
    return 0;
}
