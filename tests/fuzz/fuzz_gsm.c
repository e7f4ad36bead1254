/* gsm_encode on any bytes. When it succeeds: the coding is GSM-7 exactly when every character is in the
 * alphabet, every part fits 140 octets on the air, a multipart message carries well-formed UDHs, no part
 * splits an escape pair or a surrogate pair (each part decodes alone), a part is cut only when the next
 * character does not fit, and the parts put back together are the input. When it fails on valid UTF-8, the
 * text really needs more than GSM_MAX_PARTS parts. */
#include "fuzz.h"

#include "gsm.h"
#include "validate.h"

/* The alphabet again, written out independently of common/gsm.c, as UTF-8. */
static const char *const basic[128] = {
    "@", "£", "$", "¥", "è", "é", "ù", "ì", "ò", "Ç", "\n", "Ø", "ø", "\r", "Å", "å",
    "Δ", "_", "Φ", "Γ", "Λ", "Ω", "Π", "Ψ", "Σ", "Θ", "Ξ", NULL, "Æ", "æ", "ß", "É",
    " ", "!", "\"", "#", "¤", "%", "&", "'", "(", ")", "*", "+", ",", "-", ".", "/",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ":", ";", "<", "=", ">", "?",
    "¡", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O",
    "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z", "Ä", "Ö", "Ñ", "Ü", "§",
    "¿", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o",
    "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "ä", "ö", "ñ", "ü", "à"};

static const char *ext(uint8_t septet) {
    switch (septet) {
    case 0x0A: return "\f";
    case 0x14: return "^";
    case 0x28: return "{";
    case 0x29: return "}";
    case 0x2F: return "\\";
    case 0x3C: return "[";
    case 0x3D: return "~";
    case 0x3E: return "]";
    case 0x40: return "|";
    case 0x65: return "€";
    default: return NULL;
    }
}

/* Appends the UTF-8 of code point cp. */
static size_t put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 0x3F)), 2;
    if (cp < 0x10000)
        return out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
               out[2] = (char)(0x80 | (cp & 0x3F)), 3;
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F)), out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one part's payload alone to UTF-8 at out; returns the bytes written. A split pair aborts. */
static size_t decode_part(const gsm_message *m, const gsm_part *p, char *out) {
    size_t w = 0;
    const uint8_t *d = p->data + p->udh_len;
    size_t n = p->len - p->udh_len;
    if (m->coding == GSM_CODING_GSM7) {
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(d[i] < 0x80);
            if (d[i] == 0x1B) FUZZ_CHECK(i + 1 < n);
            const char *s = d[i] == 0x1B ? ext(d[++i]) : basic[d[i]];
            FUZZ_CHECK(s != NULL);
            size_t k = strlen(s);
            memcpy(out + w, s, k);
            w += k;
        }
        return w;
    }
    FUZZ_CHECK(n % 2 == 0);
    for (size_t i = 0; i < n; i += 2) {
        uint32_t u = (uint32_t)d[i] << 8 | d[i + 1];
        FUZZ_CHECK(u < 0xDC00 || u > 0xDFFF); /* a low surrogate never starts a character */
        if (u >= 0xD800 && u <= 0xDBFF) {
            FUZZ_CHECK(i + 3 < n);
            uint32_t lo = (uint32_t)d[i + 2] << 8 | d[i + 3];
            FUZZ_CHECK(lo >= 0xDC00 && lo <= 0xDFFF);
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            i += 2;
        }
        w += put_utf8(out + w, u);
    }
    return w;
}

/* Units (septets, or UTF-16 code units) of the first character of a part's payload. */
static size_t first_char_units(const gsm_message *m, const gsm_part *p) {
    const uint8_t *d = p->data + p->udh_len;
    if (m->coding == GSM_CODING_GSM7) return d[0] == 0x1B ? 2 : 1;
    uint32_t u = (uint32_t)d[0] << 8 | d[1];
    return u >= 0xD800 && u <= 0xDBFF ? 2 : 1;
}

/* Units of the whole text in the chosen coding. */
static size_t text_units(const uint8_t *s, size_t len, int gsm7) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (gsm7) {
            n++;
            for (uint8_t sep = 0; sep < 0x80; sep++) {
                const char *e = ext(sep);
                if (e && strlen(e) == k && memcmp(e, s + i, k) == 0) {
                    n++;
                    break;
                }
            }
        } else {
            n += k == 4 ? 2 : 1;
        }
        i += k;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t ref = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    static gsm_message m;
    int valid = fuzz_utf8_ok((const unsigned char *)text, len);
    FUZZ_CHECK(valid == (validate_utf8(text, len) == 0));
    int rc = gsm_encode(text, len, ref, &m);
    if (!valid) {
        FUZZ_CHECK(rc != 0);
        return 0;
    }
    int gsm7 = gsm_is_gsm7(text, len);
    size_t single = gsm7 ? 160 : 70, multi = gsm7 ? 153 : 67, units = text_units(data + 1, len, gsm7);
    if (rc != 0) {
        FUZZ_CHECK(units > GSM_MAX_PARTS * (multi - 1));
        return 0;
    }
    FUZZ_CHECK(m.coding == (gsm7 ? GSM_CODING_GSM7 : GSM_CODING_UCS2));
    FUZZ_CHECK(m.nparts >= 1 && m.nparts <= GSM_MAX_PARTS);
    FUZZ_CHECK((m.nparts > 1) == (units > single));
    static char back[GSM_MAX_PARTS * 160 * 4 + 1];
    size_t w = 0;
    for (int i = 0; i < m.nparts; i++) {
        const gsm_part *p = &m.parts[i];
        FUZZ_CHECK(p->udh_len == (m.nparts > 1 ? 6u : 0u));
        FUZZ_CHECK(p->len >= p->udh_len && p->len <= sizeof(p->data));
        if (m.nparts > 1) {
            const uint8_t udh[6] = {0x05, 0x00, 0x03, ref, (uint8_t)m.nparts, (uint8_t)(i + 1)};
            FUZZ_CHECK(memcmp(p->data, udh, 6) == 0);
        }
        /* On the air: GSM-7 septets are packed after the UDH and its fill bits; UCS-2 is bytes. */
        size_t payload = p->len - p->udh_len, octets;
        if (m.coding == GSM_CODING_GSM7)
            octets = p->udh_len ? (p->udh_len * 8 + 1 + payload * 7 + 7) / 8 : (payload * 7 + 7) / 8;
        else
            octets = p->len;
        FUZZ_CHECK(octets <= GSM_PART_BYTES);
        FUZZ_CHECK(len == 0 || payload > 0);
        size_t cap = (m.nparts > 1 ? multi : single) * (m.coding == GSM_CODING_GSM7 ? 1 : 2);
        FUZZ_CHECK(payload <= cap);
        /* Greedy: the next part's first character did not fit in this one. */
        if (i + 1 < m.nparts) {
            size_t next = first_char_units(&m, &m.parts[i + 1]) * (m.coding == GSM_CODING_GSM7 ? 1 : 2);
            FUZZ_CHECK(payload + next > cap);
        }
        w += decode_part(&m, p, back + w);
    }
    FUZZ_CHECK(w == len && memcmp(back, text, len) == 0);
    return 0;
}
