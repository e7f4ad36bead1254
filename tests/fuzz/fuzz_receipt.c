/* Delivery receipts: a deliver_sm body from the SMSC, decoded then read by smpp_receipt, and receipt fields
 * filled directly (text without a NUL, any message_state). The id and state are NUL-terminated and bounded,
 * the state is one word, a TLV state maps to its name, a receipt is recognised only with esm_class 0x04 and
 * an id; the id's spellings (smpp_id_variants) are canonical, start with smpp_id_normal, and each spelling
 * that is short enough to have spellings of its own leads back to the id. */
#include "fuzz.h"

#include "smpp.h"

static void check_variants(const char *id) {
    char v[3][SMPP_ID_LEN], normal[SMPP_ID_LEN], again[SMPP_ID_LEN];
    memset(v, 0x55, sizeof(v));
    smpp_id_normal(id, normal);
    FUZZ_CHECK(memchr(normal, 0, sizeof(normal)));
    smpp_id_normal(normal, again);
    FUZZ_CHECK(strcmp(normal, again) == 0);
    int n = smpp_id_variants(id, v);
    FUZZ_CHECK(n >= 1 && n <= 3);
    FUZZ_CHECK(strcmp(v[0], normal) == 0);
    for (int i = 1; i < n; i++) {
        FUZZ_CHECK(memchr(v[i], 0, SMPP_ID_LEN) && v[i][0]);
        smpp_id_normal(v[i], again);
        FUZZ_CHECK(strcmp(again, v[i]) == 0);
        if (strlen(v[i]) > 15) continue;
        char back[3][SMPP_ID_LEN];
        int m = smpp_id_variants(v[i], back), found = 0;
        for (int j = 0; j < m; j++) found |= strcmp(back[j], normal) == 0;
        FUZZ_CHECK(found);
    }
}

static void check_receipt(const smpp_pdu *p) {
    static const char *const names[] = {"SCHEDLD", "ENROUTE", "DELIVRD", "EXPIRED", "DELETED",
                                        "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"};
    char id[SMPP_ID_LEN], state[16];
    memset(id, 0x55, sizeof(id)), memset(state, 0x55, sizeof(state));
    int rc = smpp_receipt(p, id, state);
    if (p->command_id != SMPP_DELIVER_SM || !(p->esm_class & 0x04)) {
        FUZZ_CHECK(rc == -1);
        return;
    }
    FUZZ_CHECK(memchr(id, 0, sizeof(id)) && memchr(state, 0, sizeof(state)));
    FUZZ_CHECK((rc == 0) == (id[0] != '\0'));
    FUZZ_CHECK(state[0] && !strchr(state, ' '));
    if (p->message_state >= 0 && p->message_state <= 8) FUZZ_CHECK(strcmp(state, names[p->message_state]) == 0);
    if (p->receipted_id[0]) FUZZ_CHECK(strcmp(id, p->receipted_id) == 0);
    else if (rc == 0) FUZZ_CHECK(memmem(p->short_message, p->sm_length, id, strlen(id)) && !strchr(id, ' '));
    int outcome = smpp_state_outcome(state);
    FUZZ_CHECK(outcome >= -1 && outcome <= 1);
    if (rc == 0) check_variants(id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* As the SMSC sends it: the input is a deliver_sm body. */
    if (size <= SMPP_MAX_PDU - SMPP_HEADER) {
        size_t len = SMPP_HEADER + size;
        uint8_t *pdu = malloc(len);
        if (!pdu) abort();
        smpp_encode_header(pdu, SMPP_DELIVER_SM, 0, 1);
        pdu[0] = (uint8_t)(len >> 24), pdu[1] = (uint8_t)(len >> 16), pdu[2] = (uint8_t)(len >> 8), pdu[3] = (uint8_t)len;
        memcpy(pdu + SMPP_HEADER, data, size);
        smpp_pdu p;
        if (smpp_decode(pdu, len, &p) == 0) check_receipt(&p);
        free(pdu);
    }
    /* The fields directly: esm_class, message_state, a receipted id, then the text (any bytes, no NUL needed). */
    if (size < 2) return 0;
    smpp_pdu p;
    memset(&p, 0, sizeof(p));
    p.command_id = SMPP_DELIVER_SM;
    p.esm_class = data[0];
    p.message_state = data[1] == 0xFF ? -1 : data[1];
    const uint8_t *rest = data + 2, *nul = memchr(rest, 0, size - 2);
    size_t idlen = nul ? (size_t)(nul - rest) : 0;
    if (idlen >= SMPP_ID_LEN) idlen = SMPP_ID_LEN - 1;
    memcpy(p.receipted_id, rest, idlen);
    const uint8_t *text = nul ? nul + 1 : rest;
    size_t tlen = (size_t)(data + size - text);
    p.sm_length = tlen < sizeof(p.short_message) ? tlen : sizeof(p.short_message);
    memcpy(p.short_message, text, p.sm_length);
    check_receipt(&p);
    return 0;
}
