#include "smpp.h"
#include "err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void smpp_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t smpp_get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

long smpp_frame(const uint8_t *buf, size_t len) {
    if (len < 4) return 0;
    uint32_t n = smpp_get32(buf);
    if (n < SMPP_HEADER || n > SMPP_MAX_PDU) {
        err_set("SMPP PDU of impossible length %u", n);
        return -1;
    }
    return len >= n ? (long)n : 0;
}

/* A cursor over a PDU body. */
typedef struct smpp_reader {
    const uint8_t *p, *end;
    int failed;
} smpp_reader;

static void smpp_cstring(smpp_reader *r, char *out, size_t cap) {
    const uint8_t *nul = r->failed ? NULL : memchr(r->p, 0, (size_t)(r->end - r->p));
    if (!nul || (size_t)(nul - r->p) >= cap) {
        r->failed = 1;
        if (cap) out[0] = '\0';
        return;
    }
    memcpy(out, r->p, (size_t)(nul - r->p) + 1);
    r->p = nul + 1;
}

static uint8_t smpp_byte(smpp_reader *r) {
    if (r->failed || r->p >= r->end) {
        r->failed = 1;
        return 0;
    }
    return *r->p++;
}

/* The TLVs after a deliver_sm body: the two a receipt carries. */
static void smpp_tlvs(smpp_reader *r, smpp_pdu *out) {
    while (!r->failed && r->end - r->p >= 4) {
        unsigned tag = (unsigned)r->p[0] << 8 | r->p[1], len = (unsigned)r->p[2] << 8 | r->p[3];
        if ((size_t)(r->end - r->p) < 4 + len) {
            r->failed = 1;
            return;
        }
        const uint8_t *v = r->p + 4;
        if (tag == 0x001E && len > 0 && len < SMPP_ID_LEN) {
            memcpy(out->receipted_id, v, len);
            out->receipted_id[len] = '\0';
        } else if (tag == 0x0427 && len == 1) {
            out->message_state = v[0];
        }
        r->p += 4 + len;
    }
}

static void smpp_deliver(smpp_reader *r, smpp_pdu *out) {
    char skip[66];
    smpp_cstring(r, skip, 7);                                 /* service_type */
    smpp_byte(r), smpp_byte(r);                               /* source ton, npi */
    smpp_cstring(r, out->source_addr, sizeof(out->source_addr));
    smpp_byte(r), smpp_byte(r);                               /* dest ton, npi */
    smpp_cstring(r, skip, 22);                                /* destination_addr */
    out->esm_class = smpp_byte(r);
    smpp_byte(r), smpp_byte(r);                               /* protocol_id, priority */
    smpp_cstring(r, skip, 18), smpp_cstring(r, skip, 18);     /* schedule, validity */
    smpp_byte(r), smpp_byte(r);                               /* registered_delivery, replace */
    out->data_coding = smpp_byte(r);
    smpp_byte(r);                                             /* sm_default_msg_id */
    out->sm_length = smpp_byte(r);
    if (r->failed || (size_t)(r->end - r->p) < out->sm_length) {
        r->failed = 1;
        return;
    }
    memcpy(out->short_message, r->p, out->sm_length);
    r->p += out->sm_length;
    smpp_tlvs(r, out);
}

int smpp_decode(const uint8_t *buf, size_t len, smpp_pdu *out) {
    memset(out, 0, sizeof(*out));
    out->message_state = -1;
    if (len < SMPP_HEADER || smpp_get32(buf) != len) {
        err_set("SMPP PDU length mismatch");
        return -1;
    }
    out->command_id = smpp_get32(buf + 4), out->status = smpp_get32(buf + 8), out->sequence = smpp_get32(buf + 12);
    smpp_reader r = {buf + SMPP_HEADER, buf + len, 0};
    if (r.p == r.end) return 0; /* header-only (also a failed submit_sm_resp) */
    if (out->command_id == SMPP_SUBMIT_SM_RESP) smpp_cstring(&r, out->message_id, sizeof(out->message_id));
    else if (out->command_id == SMPP_BIND_TRANSCEIVER_RESP) smpp_cstring(&r, out->system_id, sizeof(out->system_id));
    else if (out->command_id == SMPP_DELIVER_SM) smpp_deliver(&r, out);
    if (r.failed) {
        err_set("malformed SMPP PDU 0x%08x", out->command_id);
        return -1;
    }
    return 0;
}

size_t smpp_encode_header(uint8_t out[SMPP_HEADER], uint32_t command_id, uint32_t status, uint32_t sequence) {
    smpp_put32(out, SMPP_HEADER), smpp_put32(out + 4, command_id), smpp_put32(out + 8, status);
    smpp_put32(out + 12, sequence);
    return SMPP_HEADER;
}

size_t smpp_encode_deliver_resp(uint8_t out[32], uint32_t status, uint32_t sequence) {
    smpp_encode_header(out, SMPP_DELIVER_SM_RESP, status, sequence);
    out[SMPP_HEADER] = 0;
    smpp_put32(out, SMPP_HEADER + 1);
    return SMPP_HEADER + 1;
}

/* A cursor for encoding; sets failed when the buffer or a field limit is exceeded. */
typedef struct smpp_writer {
    uint8_t *p, *end;
    int failed;
} smpp_writer;

static void smpp_wbyte(smpp_writer *w, uint8_t b) {
    if (w->p >= w->end) w->failed = 1;
    else *w->p++ = b;
}

static void smpp_wstring(smpp_writer *w, const char *s, size_t max) {
    size_t n = strlen(s);
    if (n >= max || (size_t)(w->end - w->p) < n + 1) {
        w->failed = 1;
        return;
    }
    memcpy(w->p, s, n + 1);
    w->p += n + 1;
}

static size_t smpp_finish(smpp_writer *w, uint8_t *out, uint32_t command_id, uint32_t sequence, const char *what) {
    if (w->failed) {
        err_set("SMPP %s: a field is too long", what);
        return 0;
    }
    size_t len = (size_t)(w->p - out);
    smpp_put32(out, (uint32_t)len), smpp_put32(out + 4, command_id), smpp_put32(out + 8, 0), smpp_put32(out + 12, sequence);
    return len;
}

size_t smpp_encode_bind(uint8_t *out, size_t cap, uint32_t sequence, const char *system_id, const char *password) {
    smpp_writer w = {out + SMPP_HEADER, out + cap, cap < SMPP_HEADER};
    smpp_wstring(&w, system_id, 16), smpp_wstring(&w, password, 9), smpp_wstring(&w, "", 13);
    smpp_wbyte(&w, 0x34), smpp_wbyte(&w, 0), smpp_wbyte(&w, 0), smpp_wstring(&w, "", 41);
    return smpp_finish(&w, out, SMPP_BIND_TRANSCEIVER, sequence, "bind_transceiver");
}

size_t smpp_encode_submit(uint8_t *out, size_t cap, uint32_t sequence, const char *source, const char *dest,
                          uint8_t esm_class, uint8_t data_coding, const uint8_t *sm, size_t sm_len) {
    smpp_writer w = {out + SMPP_HEADER, out + cap, cap < SMPP_HEADER || sm_len > 254};
    smpp_wstring(&w, "", 6);
    smpp_wbyte(&w, 5), smpp_wbyte(&w, 0), smpp_wstring(&w, source, 21); /* alphanumeric sender */
    smpp_wbyte(&w, 1), smpp_wbyte(&w, 1), smpp_wstring(&w, dest, 21);   /* international, E.164 */
    smpp_wbyte(&w, esm_class), smpp_wbyte(&w, 0), smpp_wbyte(&w, 0);
    smpp_wstring(&w, "", 17), smpp_wstring(&w, "", 17);
    smpp_wbyte(&w, 1);                                                  /* a receipt for every part */
    smpp_wbyte(&w, 0), smpp_wbyte(&w, data_coding), smpp_wbyte(&w, 0), smpp_wbyte(&w, (uint8_t)sm_len);
    if (!w.failed && (size_t)(w.end - w.p) >= sm_len) {
        memcpy(w.p, sm, sm_len);
        w.p += sm_len;
    } else {
        w.failed = 1;
    }
    return smpp_finish(&w, out, SMPP_SUBMIT_SM, sequence, "submit_sm");
}

/* Finds "key:" in a receipt text and copies the value up to the next space. */
static void smpp_text_field(const char *text, const char *key, char *out, size_t cap) {
    const char *p = strstr(text, key);
    out[0] = '\0';
    if (!p) return;
    p += strlen(key);
    size_t n = strcspn(p, " ");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

int smpp_receipt(const smpp_pdu *p, char id[SMPP_ID_LEN], char state[16]) {
    /* 0 is not an SMPP 3.4 state; SMPP 5.0 uses it for SCHEDULED, which is not final. */
    static const char *const states[] = {"SCHEDLD", "ENROUTE", "DELIVRD", "EXPIRED", "DELETED",
                                         "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"};
    if (p->command_id != SMPP_DELIVER_SM || !(p->esm_class & 0x04)) return -1;
    char text[256];
    memcpy(text, p->short_message, p->sm_length);
    text[p->sm_length] = '\0';
    snprintf(id, SMPP_ID_LEN, "%s", p->receipted_id);
    if (!id[0]) smpp_text_field(text, "id:", id, SMPP_ID_LEN);
    if (p->message_state >= 0 && p->message_state <= 8)
        snprintf(state, 16, "%s", states[p->message_state]);
    else
        smpp_text_field(text, "stat:", state, 16);
    if (!state[0]) snprintf(state, 16, "UNKNOWN");
    return id[0] ? 0 : -1;
}

int smpp_state_outcome(const char *state) {
    if (strcmp(state, "DELIVRD") == 0) return 1;
    if (strcmp(state, "ACCEPTD") == 0 || strcmp(state, "ENROUTE") == 0 || strcmp(state, "BUFFRED") == 0 ||
        strcmp(state, "SCHEDLD") == 0)
        return -1;
    return 0;
}

void smpp_id_normal(const char *id, char out[SMPP_ID_LEN]) {
    while (*id == '0' && id[1]) id++;
    size_t i = 0;
    for (; id[i] && i + 1 < SMPP_ID_LEN; i++) out[i] = (char)toupper((unsigned char)id[i]);
    out[i] = '\0';
}

int smpp_id_variants(const char *id, char out[3][SMPP_ID_LEN]) {
    smpp_id_normal(id, out[0]);
    size_t n = strlen(out[0]);
    int count = 1;
    if (n == 0 || n > 15) return count;
    if (strspn(out[0], "0123456789ABCDEF") == n) snprintf(out[count++], SMPP_ID_LEN, "%llu", strtoull(out[0], NULL, 16));
    if (strspn(out[0], "0123456789") == n) snprintf(out[count++], SMPP_ID_LEN, "%llX", strtoull(out[0], NULL, 10));
    return count;
}

int smpp_status_temporary(uint32_t status) {
    return status == 0x14 || status == 0x58 || status == 0x08 || status == 0x64;
}
