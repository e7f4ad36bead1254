/* Unit tests of common/gsm: coding choice, extension characters, segmentation limits, UDH, pairs never split. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "err.h"
#include "gsm.h"

static char text[4096];

/* Fills text with n times unit then tail; returns its length. */
static size_t repeat(const char *unit, int n, const char *tail) {
    text[0] = '\0';
    for (int i = 0; i < n; i++) strcat(text, unit);
    strcat(text, tail);
    return strlen(text);
}

static void plain_text_is_gsm7_in_one_part_up_to_160(void **state) {
    (void)state;
    gsm_message m;
    assert_int_equal(gsm_encode(text, repeat("a", 160, ""), 7, &m), 0);
    assert_int_equal(m.coding, GSM_CODING_GSM7);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(m.parts[0].len, 160);
    assert_int_equal(m.parts[0].udh_len, 0);
    assert_int_equal(m.parts[0].data[0], 0x61);
}

static void gsm7_beyond_160_is_cut_at_153_with_udh(void **state) {
    (void)state;
    gsm_message m;
    assert_int_equal(gsm_encode(text, repeat("a", 161, ""), 0x42, &m), 0);
    assert_int_equal(m.nparts, 2);
    assert_int_equal(m.parts[0].len, 6 + 153);
    assert_int_equal(m.parts[1].len, 6 + 8);
    const uint8_t udh[] = {0x05, 0x00, 0x03, 0x42, 0x02, 0x02};
    assert_memory_equal(m.parts[1].data, udh, 6);
    assert_int_equal(m.parts[0].data[5], 1);
}

static void euro_counts_as_two_septets_and_is_never_split(void **state) {
    (void)state;
    gsm_message m;
    assert_int_equal(gsm_encode(text, repeat("a", 158, "€"), 1, &m), 0);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(m.parts[0].len, 160);
    assert_int_equal(m.parts[0].data[158], 0x1B);
    assert_int_equal(m.parts[0].data[159], 0x65);
    assert_int_equal(gsm_encode(text, repeat("a", 159, "€"), 1, &m), 0);
    assert_int_equal(m.nparts, 2);
    /* 152 + the escape pair would be 154 > 153: the pair moves to the next part whole. */
    assert_int_equal(gsm_encode(text, repeat("a", 152, "€bbbbbbbbbb"), 1, &m), 0);
    assert_int_equal(m.parts[0].len, 6 + 152);
    assert_int_equal(m.parts[1].data[6], 0x1B);
    assert_int_equal(m.parts[1].data[7], 0x65);
}

static void french_letters_outside_gsm7_switch_to_ucs2(void **state) {
    (void)state;
    assert_true(gsm_is_gsm7("é è à ù É ç", strlen("é è à ù É")));
    const char *outside[] = {"ç", "â", "ê", "î", "ô", "û", "ë", "ï", "œ", "À", "È", "Ê", "«", "»", "’", "…", "–", "°",
                             "\u00a0", "\u202f"};
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++)
        if (gsm_is_gsm7(outside[i], strlen(outside[i]))) fail_msg("\"%s\" must not be GSM-7", outside[i]);
    gsm_message m;
    assert_int_equal(gsm_encode("Reçu", strlen("Reçu"), 1, &m), 0);
    assert_int_equal(m.coding, GSM_CODING_UCS2);
    const uint8_t ucs2[] = {0x00, 'R', 0x00, 'e', 0x00, 0xE7, 0x00, 'u'};
    assert_int_equal(m.parts[0].len, 8);
    assert_memory_equal(m.parts[0].data, ucs2, 8);
    assert_int_equal(gsm_encode("Ç", strlen("Ç"), 1, &m), 0);
    assert_int_equal(m.coding, GSM_CODING_GSM7);
    assert_int_equal(m.parts[0].data[0], 0x09); /* capital C cedilla is 0x09; lowercase never is */
}

static void ucs2_limits_are_70_then_67(void **state) {
    (void)state;
    gsm_message m;
    assert_int_equal(gsm_encode(text, repeat("â", 70, ""), 1, &m), 0);
    assert_int_equal(m.nparts, 1);
    assert_int_equal(m.parts[0].len, 140);
    assert_int_equal(gsm_encode(text, repeat("â", 71, ""), 1, &m), 0);
    assert_int_equal(m.nparts, 2);
    assert_int_equal(m.parts[0].len, 6 + 134);
    assert_int_equal(m.parts[1].len, 6 + 8);
}

static void surrogate_pairs_are_never_split(void **state) {
    (void)state;
    gsm_message m;
    /* 66 characters + an emoji (two UTF-16 units) = 68 units > 67: the pair goes to the next part. */
    assert_int_equal(gsm_encode(text, repeat("â", 66, "😀âââ"), 1, &m), 0);
    assert_int_equal(m.nparts, 2);
    assert_int_equal(m.parts[0].len, 6 + 132);
    const uint8_t pair[] = {0xD8, 0x3D, 0xDE, 0x00};
    assert_memory_equal(m.parts[1].data + 6, pair, 4);
}

static void bad_or_endless_texts_are_refused(void **state) {
    (void)state;
    gsm_message m;
    assert_int_equal(gsm_encode("\xc3(", 2, 1, &m), -1);
    assert_int_equal(gsm_encode(text, repeat("a", 153 * 16 + 1, ""), 1, &m), -1);
    assert_non_null(strstr(err_get(), "SMS parts"));
    assert_int_equal(gsm_encode(text, repeat("a", 153 * 16, ""), 1, &m), 0);
    assert_int_equal(m.nparts, 16);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_text_is_gsm7_in_one_part_up_to_160),
        cmocka_unit_test(gsm7_beyond_160_is_cut_at_153_with_udh),
        cmocka_unit_test(euro_counts_as_two_septets_and_is_never_split),
        cmocka_unit_test(french_letters_outside_gsm7_switch_to_ucs2),
        cmocka_unit_test(ucs2_limits_are_70_then_67),
        cmocka_unit_test(surrogate_pairs_are_never_split),
        cmocka_unit_test(bad_or_endless_texts_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
