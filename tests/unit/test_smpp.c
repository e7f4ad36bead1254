/* Unit tests of common/smpp: framing, encoding, decoding, receipts in TLV and text forms, id spellings, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "smpp.h"

static size_t hexbytes(const char *hex, uint8_t *out) {
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void frames_are_found_and_impossible_lengths_refused(void **state) {
    (void)state;
    uint8_t b[64] = {0};
    assert_int_equal(smpp_frame(b, 0), 0);
    size_t n = smpp_encode_header(b, SMPP_ENQUIRE_LINK, 0, 7);
    assert_int_equal(smpp_frame(b, n - 1), 0);
    assert_int_equal(smpp_frame(b, n), 16);
    b[0] = 0x7F;
    assert_int_equal(smpp_frame(b, n), -1);
    uint8_t small[4] = {0, 0, 0, 8};
    assert_int_equal(smpp_frame(small, 4), -1);
}

static void bind_and_submit_are_encoded_to_the_byte(void **state) {
    (void)state;
    uint8_t b[512], want[512];
    size_t n = smpp_encode_bind(b, sizeof(b), 1, "sav", "secret");
    size_t w = hexbytes("00000020000000090000000000000001" "73617600" "73656372657400" "00" "34" "00" "00" "00", want);
    assert_int_equal(n, w);
    assert_memory_equal(b, want, w);
    const uint8_t text[] = {'H', 'i'};
    n = smpp_encode_submit(b, sizeof(b), 2, "SAV", "33612345678", 0, 0, text, 2);
    w = hexbytes("00000031000000040000000000000002" "00" "0500" "53415600" "0101" "333336313233343536373800"
                 "000000" "00" "00" "01" "00" "00" "00" "02" "4869", want);
    assert_int_equal(n, w);
    assert_memory_equal(b, want, w);
    assert_int_equal(smpp_encode_bind(b, sizeof(b), 1, "a-system-id-that-is-far-too-long", "x"), 0);
}

static void submit_resp_and_deliver_are_decoded(void **state) {
    (void)state;
    uint8_t b[512];
    size_t n = hexbytes("00000015800000040000000000000002" "314100", b); /* message id "1A"... */
    b[3] = (uint8_t)n;
    smpp_pdu p;
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_int_equal(p.command_id, SMPP_SUBMIT_SM_RESP);
    assert_string_equal(p.message_id, "1A");
    n = hexbytes("00000010800000040000005800000003", b); /* throttled: no body */
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_int_equal(p.status, 0x58);
    assert_true(smpp_status_temporary(p.status));
    assert_false(smpp_status_temporary(0x0B));
    /* A truncated string is refused. */
    n = hexbytes("00000014800000040000000000000002" "31413141", b);
    assert_int_equal(smpp_decode(b, n, &p), -1);
}

static size_t deliver(uint8_t *b, uint8_t esm, const char *text, const char *tlvs) {
    char hex[1024] = "00000000000000050000000000000009" "00" "0101" "333336313233343536373800" "0500" "53415600";
    size_t len = strlen(hex);
    len += (size_t)snprintf(hex + len, sizeof(hex) - len, "%02x" "00" "00" "00" "00" "00" "00" "00" "00" "%02x", esm,
                            (unsigned)strlen(text));
    for (const char *t = text; *t; t++) len += (size_t)snprintf(hex + len, sizeof(hex) - len, "%02x", (unsigned char)*t);
    snprintf(hex + len, sizeof(hex) - len, "%s", tlvs);
    size_t n = hexbytes(hex, b);
    b[3] = (uint8_t)n;
    return n;
}

static void receipts_from_tlvs_or_text(void **state) {
    (void)state;
    uint8_t b[512];
    smpp_pdu p;
    char id[SMPP_ID_LEN], st[16];
    size_t n = deliver(b, 0x04, "id:0000006699 sub:001 dlvrd:001 submit date:2611301200 done date:2611301200 stat:DELIVRD err:000 text:", "");
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_string_equal(p.source_addr, "33612345678");
    assert_int_equal(smpp_receipt(&p, id, st), 0);
    assert_string_equal(id, "0000006699");
    assert_string_equal(st, "DELIVRD");
    assert_int_equal(smpp_state_outcome(st), 1);
    n = deliver(b, 0x04, "id:X stat:UNDELIV", "001e0005314132420004270001" "05");
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_int_equal(smpp_receipt(&p, id, st), 0);
    assert_string_equal(id, "1A2B");       /* the TLV wins over the text */
    assert_string_equal(st, "UNDELIV");
    assert_int_equal(smpp_state_outcome(st), 0);
    assert_int_equal(smpp_state_outcome("ENROUTE"), -1);
    n = deliver(b, 0x04, "", "001e0005314132420004270001" "00"); /* state 0: SMPP 5.0's SCHEDULED, not final */
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_int_equal(smpp_receipt(&p, id, st), 0);
    assert_string_equal(st, "SCHEDLD");
    assert_int_equal(smpp_state_outcome(st), -1);
    n = deliver(b, 0x00, "STOP", "");
    assert_int_equal(smpp_decode(b, n, &p), 0);
    assert_int_equal(smpp_receipt(&p, id, st), -1); /* a mobile-originated message, not a receipt */
    assert_int_equal(p.sm_length, 4);
    assert_memory_equal(p.short_message, "STOP", 4);
}

static void ids_match_across_spellings(void **state) {
    (void)state;
    char v[3][SMPP_ID_LEN];
    assert_int_equal(smpp_id_variants("1a2b", v), 2);
    assert_string_equal(v[0], "1A2B");
    assert_string_equal(v[1], "6699");
    assert_int_equal(smpp_id_variants("0010", v), 3);
    assert_string_equal(v[0], "10");
    assert_string_equal(v[1], "16");
    assert_string_equal(v[2], "A");
    char norm[SMPP_ID_LEN];
    smpp_id_normal("0000006699", norm);
    assert_string_equal(norm, "6699");
    assert_int_equal(smpp_id_variants("msg-xyz", v), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_are_found_and_impossible_lengths_refused),
        cmocka_unit_test(bind_and_submit_are_encoded_to_the_byte),
        cmocka_unit_test(submit_resp_and_deliver_are_decoded),
        cmocka_unit_test(receipts_from_tlvs_or_text),
        cmocka_unit_test(ids_match_across_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
