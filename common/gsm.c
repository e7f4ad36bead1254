#include "gsm.h"
#include "err.h"
#include "validate.h"

#include <string.h>

/* The GSM 03.38 default alphabet, by septet value (0x00-0x7F), as Unicode code points. 0x1B is the escape. */
static const uint16_t gsm_basic[128] = {
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC, 0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D,
    0x00C5, 0x00E5, 0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8, 0x03A3, 0x0398, 0x039E, 0x001B,
    0x00C6, 0x00E6, 0x00DF, 0x00C9, 0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027, 0x0028, 0x0029,
    0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F, 0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
    0x0038, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, 0x00A1, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045,
    0x0046, 0x0047, 0x0048, 0x0049, 0x004A, 0x004B, 0x004C, 0x004D, 0x004E, 0x004F, 0x0050, 0x0051, 0x0052, 0x0053,
    0x0054, 0x0055, 0x0056, 0x0057, 0x0058, 0x0059, 0x005A, 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7, 0x00BF, 0x0061,
    0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067, 0x0068, 0x0069, 0x006A, 0x006B, 0x006C, 0x006D, 0x006E, 0x006F,
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077, 0x0078, 0x0079, 0x007A, 0x00E4, 0x00F6, 0x00F1,
    0x00FC, 0x00E0};

/* The extension table: escape (0x1B) then this septet. */
static const struct {
    uint8_t septet;
    uint16_t code;
} gsm_ext[] = {{0x0A, 0x000C}, {0x14, 0x005E}, {0x28, 0x007B}, {0x29, 0x007D}, {0x2F, 0x005C},
               {0x3C, 0x005B}, {0x3D, 0x007E}, {0x3E, 0x005D}, {0x40, 0x007C}, {0x65, 0x20AC}};

/* Decodes one UTF-8 character (the text is valid); returns its length. */
static size_t gsm_utf8(const unsigned char *p, uint32_t *cp) {
    if (p[0] < 0x80) return *cp = p[0], 1;
    if ((p[0] & 0xE0) == 0xC0) return *cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F), 2;
    if ((p[0] & 0xF0) == 0xE0) return *cp = ((uint32_t)(p[0] & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F), 3;
    *cp = ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    return 4;
}

/* The septets of one code point: 1 or 2 (escape + extension), or 0 if it is not in the alphabet. */
static int gsm_septets(uint32_t cp, uint8_t out[2]) {
    /* 0x1B is the escape itself and never a character of the text. */
    for (int i = 0; i < 128 && cp != 0x1B; i++)
        if (gsm_basic[i] == cp) return out[0] = (uint8_t)i, 1;
    for (size_t i = 0; i < sizeof(gsm_ext) / sizeof(gsm_ext[0]); i++)
        if (gsm_ext[i].code == cp) return out[0] = 0x1B, out[1] = gsm_ext[i].septet, 2;
    return 0;
}

int gsm_is_gsm7(const char *utf8, size_t len) {
    const unsigned char *p = (const unsigned char *)utf8, *end = p + len;
    while (p < end) {
        uint32_t cp;
        uint8_t s[2];
        p += gsm_utf8(p, &cp);
        if (!gsm_septets(cp, s)) return 0;
    }
    return 1;
}

/* Starts a new part with room for the UDH when the message has several. */
static gsm_part *gsm_new_part(gsm_message *m, int multipart) {
    if (m->nparts == GSM_MAX_PARTS) {
        err_set("message too long: more than %d SMS parts", GSM_MAX_PARTS);
        return NULL;
    }
    gsm_part *p = &m->parts[m->nparts++];
    memset(p, 0, sizeof(*p));
    p->udh_len = p->len = multipart ? 6 : 0;
    return p;
}

/* Cuts a sequence of units (septets, or UCS-2 byte pairs) into parts; units of one character stay together. */
static int gsm_cut(gsm_message *m, const uint8_t *units, const uint8_t *char_len, size_t n, size_t unit_size,
                   size_t single, size_t multi) {
    int multipart = n > single;
    size_t room = multipart ? multi : single, used = 0;
    gsm_part *p = gsm_new_part(m, multipart);
    for (size_t i = 0; p && i < n; i += char_len[i]) {
        if (used + char_len[i] > room) {
            p = gsm_new_part(m, multipart);
            used = 0;
            if (!p) return -1;
        }
        memcpy(p->data + p->len, units + i * unit_size, char_len[i] * unit_size);
        p->len += char_len[i] * unit_size;
        used += char_len[i];
    }
    return p ? 0 : -1;
}

static void gsm_headers(gsm_message *m, uint8_t ref) {
    for (int i = 0; m->nparts > 1 && i < m->nparts; i++) {
        uint8_t *d = m->parts[i].data;
        d[0] = 0x05, d[1] = 0x00, d[2] = 0x03, d[3] = ref, d[4] = (uint8_t)m->nparts, d[5] = (uint8_t)(i + 1);
    }
}

int gsm_encode(const char *utf8, size_t len, uint8_t ref, gsm_message *out) {
    /* At most 160 units (septets or UTF-16 units) per part, 2 bytes each at most. */
    uint8_t units[GSM_MAX_PARTS * 160 * 2], char_len[GSM_MAX_PARTS * 160];
    memset(out, 0, sizeof(*out));
    if (validate_utf8(utf8, len) != 0) return -1;
    const unsigned char *p = (const unsigned char *)utf8, *end = p + len;
    size_t n = 0, cap = sizeof(char_len);
    int gsm7 = gsm_is_gsm7(utf8, len);
    out->coding = gsm7 ? GSM_CODING_GSM7 : GSM_CODING_UCS2;
    while (p < end) {
        uint32_t cp;
        p += gsm_utf8(p, &cp);
        uint8_t s[2];
        int k = gsm7 ? gsm_septets(cp, s) : cp > 0xFFFF ? 2 : 1;
        if (n + (size_t)k > cap) {
            err_set("message too long for %d SMS parts", GSM_MAX_PARTS);
            return -1;
        }
        if (gsm7) {
            for (int i = 0; i < k; i++) units[n + (size_t)i] = s[i];
        } else if (k == 1) {
            units[2 * n] = (uint8_t)(cp >> 8), units[2 * n + 1] = (uint8_t)cp;
        } else {
            uint32_t v = cp - 0x10000, hi = 0xD800 + (v >> 10), lo = 0xDC00 + (v & 0x3FF);
            units[2 * n] = (uint8_t)(hi >> 8), units[2 * n + 1] = (uint8_t)hi;
            units[2 * n + 2] = (uint8_t)(lo >> 8), units[2 * n + 3] = (uint8_t)lo;
        }
        char_len[n] = (uint8_t)k;
        n += (size_t)k;
    }
    int rc = gsm7 ? gsm_cut(out, units, char_len, n, 1, 160, 153) : gsm_cut(out, units, char_len, n, 2, 70, 67);
    if (rc == 0) gsm_headers(out, ref);
    return rc;
}
