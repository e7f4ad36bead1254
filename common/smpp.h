/* smpp: SMPP 3.4 PDUs, as sav-notification's SMSC client uses them. Pure:
 * encoding and decoding only. Big-endian header (length, command id,
 * status, sequence); C-octet strings; TLVs after the mandatory body.
 * data_coding 0 carries GSM 03.38 septets unpacked, one per octet (SMSCs
 * pack them for the air); data_coding 8 carries UCS-2 big-endian. A UDH
 * (esm_class 0x40) precedes the text in short_message. */
#ifndef SAV_SMPP_H
#define SAV_SMPP_H

#include <stddef.h>
#include <stdint.h>

enum smpp_command {
    SMPP_GENERIC_NACK = 0x80000000u,
    SMPP_BIND_TRANSCEIVER = 0x00000009u,
    SMPP_BIND_TRANSCEIVER_RESP = 0x80000009u,
    SMPP_SUBMIT_SM = 0x00000004u,
    SMPP_SUBMIT_SM_RESP = 0x80000004u,
    SMPP_DELIVER_SM = 0x00000005u,
    SMPP_DELIVER_SM_RESP = 0x80000005u,
    SMPP_UNBIND = 0x00000006u,
    SMPP_UNBIND_RESP = 0x80000006u,
    SMPP_ENQUIRE_LINK = 0x00000015u,
    SMPP_ENQUIRE_LINK_RESP = 0x80000015u,
};

#define SMPP_HEADER 16
#define SMPP_MAX_PDU 4096 /* bigger frames are refused: our PDUs are a few hundred bytes */
#define SMPP_ID_LEN 66

/* A decoded PDU (the fields of the commands we read). */
typedef struct smpp_pdu {
    uint32_t command_id, status, sequence;
    char message_id[SMPP_ID_LEN];   /* submit_sm_resp */
    char system_id[17];             /* bind_transceiver_resp */
    char source_addr[22];           /* deliver_sm */
    uint8_t esm_class, data_coding;
    uint8_t short_message[255];
    size_t sm_length;
    char receipted_id[SMPP_ID_LEN]; /* TLV 0x001E, "" if absent */
    int message_state;              /* TLV 0x0427, -1 if absent */
} smpp_pdu;

/* Returns the length of the complete PDU at the start of buf (0: need more bytes), or -1 with err when the
 * announced length is impossible (below 16 or above SMPP_MAX_PDU: the connection must be dropped). */
long smpp_frame(const uint8_t *buf, size_t len);

/* Decodes one complete PDU of len bytes; 0 or -1 with err (truncated field, missing NUL). */
int smpp_decode(const uint8_t *buf, size_t len, smpp_pdu *out);

/* Encodes a header-only PDU (enquire_link and its resp, unbind and its resp, generic_nack); returns its length. */
size_t smpp_encode_header(uint8_t out[SMPP_HEADER], uint32_t command_id, uint32_t status, uint32_t sequence);

/* Encodes a deliver_sm_resp (empty message id); returns its length (17). */
size_t smpp_encode_deliver_resp(uint8_t out[32], uint32_t status, uint32_t sequence);

/* Encodes bind_transceiver; returns its length, or 0 with err when a field is too long. */
size_t smpp_encode_bind(uint8_t *out, size_t cap, uint32_t sequence, const char *system_id, const char *password);

/* Encodes a submit_sm from an alphanumeric sender to an international number (digits, no '+'), asking for a
 * delivery receipt; returns its length, or 0 with err. */
size_t smpp_encode_submit(uint8_t *out, size_t cap, uint32_t sequence, const char *source, const char *dest,
                          uint8_t esm_class, uint8_t data_coding, const uint8_t *sm, size_t sm_len);

/* Reads a delivery receipt: the receipted message id and its final state, from the TLVs when present, else
 * from the text "id:... stat:...". *state is DELIVRD, UNDELIV, REJECTD, EXPIRED, DELETED, ACCEPTD, ENROUTE,
 * BUFFRED, SCHEDLD (state 0 of SMPP 5.0) or UNKNOWN. 0, or -1 when the PDU is not a receipt. */
int smpp_receipt(const smpp_pdu *p, char id[SMPP_ID_LEN], char state[16]);

/* Returns 1 for a final state that means delivered, 0 for a final failure, -1 for a state that is not final. */
int smpp_state_outcome(const char *state);

/* Writes the canonical form of a message id (upper case, no leading zeros) into out. */
void smpp_id_normal(const char *id, char out[SMPP_ID_LEN]);

/* Writes the spellings a receipt may use for a submit_sm_resp's message id, canonical: the id itself, and
 * when it reads as hexadecimal its decimal value, when it reads as decimal its hexadecimal value (an all-digit
 * id is both). Returns how many (1 to 3). */
int smpp_id_variants(const char *id, char out[3][SMPP_ID_LEN]);

/* Returns 1 if a command status is temporary (retry later: 0x14, 0x58, 0x08, 0x64), 0 if final. */
int smpp_status_temporary(uint32_t status);

#endif
