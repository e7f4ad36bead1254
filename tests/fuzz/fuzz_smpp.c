/* SMPP framing and PDU decoding on any bytes, as they come off the SMSC's socket. smpp_frame announces
 * only a length it was given in full, or refuses an impossible one; smpp_decode reads only inside the PDU
 * (AddressSanitizer watches the exact-size buffer), leaves every string NUL-terminated inside its field,
 * copies short_message from the PDU itself, and a header-only PDU re-encodes to the same 16 bytes. */
#include "fuzz.h"

#include "smpp.h"

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_pdu(const smpp_pdu *p, const uint8_t *buf, size_t len) {
    FUZZ_CHECK(p->command_id == get32(buf + 4) && p->status == get32(buf + 8) && p->sequence == get32(buf + 12));
    FUZZ_CHECK(memchr(p->message_id, 0, sizeof(p->message_id)) && memchr(p->system_id, 0, sizeof(p->system_id)));
    FUZZ_CHECK(memchr(p->source_addr, 0, sizeof(p->source_addr)));
    FUZZ_CHECK(memchr(p->receipted_id, 0, sizeof(p->receipted_id)));
    FUZZ_CHECK(p->sm_length <= sizeof(p->short_message) && p->sm_length <= len - SMPP_HEADER);
    FUZZ_CHECK(p->message_state >= -1 && p->message_state <= 255);
    if (p->sm_length) FUZZ_CHECK(memmem(buf + SMPP_HEADER, len - SMPP_HEADER, p->short_message, p->sm_length));
    if (p->message_id[0])
        FUZZ_CHECK(memmem(buf + SMPP_HEADER, len - SMPP_HEADER, p->message_id, strlen(p->message_id) + 1));
    if (p->source_addr[0])
        FUZZ_CHECK(memmem(buf + SMPP_HEADER, len - SMPP_HEADER, p->source_addr, strlen(p->source_addr) + 1));
    if (len == SMPP_HEADER) {
        uint8_t again[SMPP_HEADER];
        FUZZ_CHECK(smpp_encode_header(again, p->command_id, p->status, p->sequence) == SMPP_HEADER);
        FUZZ_CHECK(memcmp(again, buf, SMPP_HEADER) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* As read from the socket: the frame announced must be there in full. */
    long n = smpp_frame(data, size);
    if (size < 4) {
        FUZZ_CHECK(n == 0);
    } else {
        uint32_t announced = get32(data);
        if (announced < SMPP_HEADER || announced > SMPP_MAX_PDU) FUZZ_CHECK(n == -1);
        else FUZZ_CHECK(n == (size >= announced ? (long)announced : 0));
    }
    smpp_pdu p;
    if (n > 0) {
        uint8_t *frame = malloc((size_t)n);
        if (!frame) abort();
        memcpy(frame, data, (size_t)n);
        if (smpp_decode(frame, (size_t)n, &p) == 0) check_pdu(&p, frame, (size_t)n);
        free(frame);
    }
    /* The whole input as one PDU, its length field made to match, so that every body reaches the decoder. */
    if (size >= SMPP_HEADER && size <= SMPP_MAX_PDU) {
        uint8_t *pdu = malloc(size);
        if (!pdu) abort();
        memcpy(pdu, data, size);
        pdu[0] = (uint8_t)(size >> 24), pdu[1] = (uint8_t)(size >> 16), pdu[2] = (uint8_t)(size >> 8);
        pdu[3] = (uint8_t)size;
        FUZZ_CHECK(smpp_frame(pdu, size) == (long)size);
        if (smpp_decode(pdu, size, &p) == 0) check_pdu(&p, pdu, size);
        free(pdu);
    }
    if (size > 0 && size < SMPP_HEADER) FUZZ_CHECK(smpp_decode(data, size, &p) == -1);
    return 0;
}
