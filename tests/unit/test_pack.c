/* Unit tests for common/sha1.c and common/pack.c: SHA-1 against the FIPS 180 vectors and lengths around a block,
 * dictionary 1 pinned by its digest (a released dictionary never changes), a payload packed and unpacked with
 * and without the dictionary, the header read without inflating, every kind of damage refused with its reason
 * (wrong magic, version, dictionary, digest, cut or lengthened stream, a payload that is not pack_collect's), the
 * sections' shapes (cjson's {} for empty tables), and the merge of live fields over packed ones. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "pack.h"
#include "sha1.h"

/* pack_collect's array for a small ticket: hashes in their own order, {} for empty sections. */
static const char payload[] =
    "[[\"id\",\"T-2026-000042\",\"state\",\"closed\",\"symptom\",\"ne chauffe plus\",\"customer_id\",\"C-000007\"],"
    "[\"{\\\"at\\\":1764543600000,\\\"actor\\\":\\\"admin\\\",\\\"state\\\":\\\"received\\\",\\\"event\\\":"
    "\\\"ticket.received\\\",\\\"detail\\\":\\\"\\\"}\"],"
    "[\"family\",\"washing_machine\"],[\"status\",\"decided\",\"basis\",\"legal_guarantee\"],{},{},{},{},"
    "[\"T-2026-000042:ticket_received:sms:1\",\"T-2026-000042:ticket_received:email:1\"],"
    "[[\"T-2026-000042:ticket_received:sms:1\",[\"id\",\"T-2026-000042:ticket_received:sms:1\",\"status\","
    "\"delivered\",\"body\",\"SAV : demande T-2026-000042 enregistr\\u00e9e\"]]]]";

static void hex_of(const char *s, size_t len, char out[SHA1_HEX_LEN]) {
    uint8_t d[SHA1_LEN];
    sha1_digest(s, len, d);
    sha1_hex(d, out);
}

static void test_sha1_vectors(void **state) {
    (void)state;
    char hex[SHA1_HEX_LEN];
    hex_of("", 0, hex);
    assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    hex_of("abc", 3, hex);
    assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    assert_string_equal(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    hex_of(million, 1000000, hex);
    assert_string_equal(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
    /* 55, 56 and 64 bytes: the length goes in the same block, in a second one, after a whole block. */
    char block[64];
    memset(block, 'x', sizeof(block));
    hex_of(block, 55, hex);
    assert_string_equal(hex, "cef734ba81a024479e09eb5a75b6ddae62e6abf1");
    hex_of(block, 56, hex);
    assert_string_equal(hex, "901305367c259952f4e7af8323f480d59f81335b");
    hex_of(block, 64, hex);
    assert_string_equal(hex, "bb2fa3ee7afb9f54c6dfb5d021f14b1ffe40c163");
}

static void test_dictionary_is_pinned(void **state) {
    (void)state;
    size_t len;
    const char *d = pack_dictionary(1, &len);
    assert_non_null(d);
    char hex[SHA1_HEX_LEN];
    hex_of(d, len, hex);
    /* Values packed with dictionary 1 are read with these very bytes: a new text takes a new id. */
    assert_string_equal(hex, "94022899c834b31d355748bf0a80613f07333b47");
    assert_true(len <= 32768);
    unit_err_clear();
    assert_null(pack_dictionary(2, &len));
    assert_err_contains("unknown dictionary 2");
}

/* Packs the payload with dict; returns the value (caller frees). */
static unsigned char *packed_with(int dict, size_t *len) {
    char digest[SHA1_HEX_LEN];
    hex_of(payload, strlen(payload), digest);
    unsigned char *v = pack_encode(payload, strlen(payload), digest, 1796081400000LL, dict, len);
    assert_non_null(v);
    return v;
}

static void test_round_trip(void **state) {
    (void)state;
    size_t plain_len, dict_len, out_len;
    unsigned char *plain = packed_with(PACK_DICT_NONE, &plain_len), *dict = packed_with(1, &dict_len);
    assert_true(dict_len < plain_len);
    assert_true(plain_len < strlen(payload));
    pack_info info;
    for (int i = 0; i < 2; i++) {
        char *out = pack_decode(i ? dict : plain, i ? dict_len : plain_len, &info, &out_len);
        assert_non_null(out);
        assert_int_equal(out_len, strlen(payload));
        assert_string_equal(out, payload);
        assert_int_equal(info.dict, i);
        assert_int_equal(info.last_change, 1796081400000LL);
        free(out);
    }
    char digest[SHA1_HEX_LEN];
    hex_of(payload, strlen(payload), digest);
    assert_int_equal(0, pack_header(dict, dict_len, &info));
    assert_string_equal(info.digest, digest);
    assert_int_equal(info.payload_len, strlen(payload));
    free(plain);
    free(dict);
}

static void test_encode_checks_the_digest(void **state) {
    (void)state;
    size_t len;
    unit_err_clear();
    assert_null(pack_encode(payload, strlen(payload), "0123456789abcdef0123456789abcdef01234567", 0, 1, &len));
    assert_err_contains("SHA-1");
    assert_null(pack_encode(payload, strlen(payload), NULL, 0, 1, &len));
    assert_null(pack_encode(payload, strlen(payload), "x", 0, 9, &len));
    assert_err_contains("unknown dictionary 9");
}

/* Decodes a damaged copy of value and checks the reason. */
static void refused(const unsigned char *value, size_t len, const char *why) {
    pack_info info;
    size_t out_len;
    unit_err_clear();
    char *out = pack_decode(value, len, &info, &out_len);
    if (out) fail_msg("a damaged value decoded (want \"%s\")", why);
    assert_err_contains(why);
}

static void test_damage_is_refused(void **state) {
    (void)state;
    size_t len;
    unsigned char *v = packed_with(1, &len), *copy = malloc(len + 8);
    assert_non_null(copy);
    refused(v, 10, "not a packed value");
    refused(NULL, 0, "not a packed value");
    memcpy(copy, v, len), copy[0] = 'X';
    refused(copy, len, "not a packed value");
    memcpy(copy, v, len), copy[4] = 2;
    refused(copy, len, "format version 2");
    memcpy(copy, v, len), copy[5] = 7;
    refused(copy, len, "unknown dictionary 7");
    memcpy(copy, v, len), copy[5] = 0;
    refused(copy, len, "corrupt");
    memcpy(copy, v, len), copy[10] ^= 1;
    refused(copy, len, "SHA-1");
    memcpy(copy, v, len);
    refused(copy, len - 3, "corrupt");
    memcpy(copy, v, len), memcpy(copy + len, "garbage!", 8);
    refused(copy, len + 8, "bytes after its end");
    memcpy(copy, v, len), copy[29] ^= 1;
    refused(copy, len, "corrupt");
    memcpy(copy, v, len), copy[26] = 0x7f;
    refused(copy, len, "more than");
    memcpy(copy, v, len), copy[PACK_HEADER_LEN + 5] ^= 0x55;
    refused(copy, len, "packed value");
    free(v);
    free(copy);
}

static void test_parts(void **state) {
    (void)state;
    json_t *p = pack_parts(payload, strlen(payload));
    assert_non_null(p);
    assert_int_equal(json_array_size(p), PACK_PARTS);
    assert_true(json_is_array(json_array_get(p, PACK_VERDICT)));
    assert_int_equal(json_array_size(json_array_get(p, PACK_QUOTES)), 0);
    assert_int_equal(json_array_size(json_array_get(p, PACK_ORDER)), 2);
    assert_int_equal(json_array_size(json_array_get(p, PACK_NOTIFICATIONS)), 1);
    assert_string_equal(pack_pairs_get(json_array_get(p, PACK_TICKET), "customer_id"), "C-000007");
    assert_null(pack_pairs_get(json_array_get(p, PACK_TICKET), "outcome"));
    json_decref(p);
    static const char *const bad[] = {
        "", "{}", "[]", "[1,2,3,4,5,6,7,8,9,10]", "[[\"odd\"],[],[],[],[],[],[],[],[],[]]",
        "[[],[],[],[],[],[],[],[],[],[[\"id\",[\"odd\"]]]]", "[[],[1],[],[],[],[],[],[],[],[]]",
        "[[],[],[],[],[],[],[],[],[],[[1,[]]]]", "[[],[],[],[],[],[],[],[],[],[],[]]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        json_t *b = pack_parts(bad[i], strlen(bad[i]));
        if (b) fail_msg("\"%s\" parsed as a payload", bad[i]);
        assert_err_contains("packed payload");
    }
}

static void test_merge(void **state) {
    (void)state;
    json_t *packed = json_pack("[s,s,s,s,s,s]", "id", "T-1", "symptom", "bruit", "state", "closed");
    json_t *live = json_pack("[s,s,s,s,s,s]", "state", "closed", "id", "T-1", "unclaimed", "0");
    json_t *m = pack_merge_pairs(packed, live);
    json_t *want = json_pack("[s,s,s,s,s,s,s,s]", "id", "T-1", "symptom", "bruit", "state", "closed", "unclaimed", "0");
    assert_true(json_equal(m, want));
    json_decref(m), json_decref(want);
    json_array_set_new(live, 1, json_string("cancelled"));
    m = pack_merge_pairs(packed, live);
    assert_string_equal(pack_pairs_get(m, "state"), "cancelled");
    assert_string_equal(json_string_value(json_array_get(m, 4)), "state");
    json_decref(m);
    m = pack_merge_pairs(packed, NULL);
    assert_true(json_equal(m, packed));
    json_decref(m);
    json_decref(packed), json_decref(live);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_vectors),       cmocka_unit_test(test_dictionary_is_pinned),
        cmocka_unit_test(test_round_trip),         cmocka_unit_test(test_encode_checks_the_digest),
        cmocka_unit_test(test_damage_is_refused),  cmocka_unit_test(test_parts),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
