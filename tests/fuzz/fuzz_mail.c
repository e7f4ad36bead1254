/* mail_build on customer-supplied text: the input is the sender, sender name, recipient, subject, body text,
 * message id and date (milliseconds), separated by NUL bytes; a missing field takes a real value. A message
 * that is built is read back as a mail client would: CRLF line endings only, 7-bit, no line over 998 octets;
 * exactly the headers From, To, Subject, Date, Message-ID, Auto-Submitted, MIME-Version, Content-Type in this
 * order (nothing injected); From, To, Subject and Message-ID decode (quoted strings, RFC 2047 encoded-words
 * of at most 75 characters) to the input; a boundary of RFC 2046 characters; the text part decodes to the
 * text with CRLF line endings, the HTML part holds the text escaped, with no markup of its own. */
#include "fuzz.h"

#include "err.h"
#include "mail.h"
#include "validate.h"

typedef struct text {
    char *p;
    size_t len, cap;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->p = realloc(t->p, t->cap);
        if (!t->p) abort();
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = '\0';
}

static int b64val(char c) {
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(a, c) : NULL;
    return p ? (int)(p - a) : -1;
}

/* Decodes n characters of base64 (a multiple of 4, '=' padding only at the end) onto t. */
static void unbase64(text *t, const char *s, size_t n) {
    FUZZ_CHECK(n % 4 == 0);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) v[k] = s[i + k] == '=' ? -2 : b64val(s[i + k]);
        FUZZ_CHECK(v[0] >= 0 && v[1] >= 0 && v[2] != -1 && v[3] != -1);
        FUZZ_CHECK(i + 4 == n || (v[2] >= 0 && v[3] >= 0));
        FUZZ_CHECK(v[2] >= 0 || v[3] == -2);
        char out[3] = {(char)(v[0] << 2 | v[1] >> 4), (char)((v[1] & 15) << 4 | (v[2] >= 0 ? v[2] >> 2 : 0)),
                       (char)((v[2] >= 0 ? (v[2] & 3) << 6 : 0) | (v[3] >= 0 ? v[3] : 0))};
        put(t, out, v[2] < 0 ? 1 : v[3] < 0 ? 2 : 3);
    }
}

/* Decodes n characters of base64 onto t; 0 if they are not base64 (a client then shows them as they are). */
static int unbase64_ok(text *t, const char *s, size_t n) {
    if (n % 4) return 0;
    for (size_t i = 0; i < n; i++)
        if (b64val(s[i]) < 0 && !(s[i] == '=' && i + 2 >= n && (i + 1 == n || s[i + 1] == '='))) return 0;
    unbase64(t, s, n);
    return 1;
}

/* Decodes an unfolded header value made of encoded-words separated by single spaces, as a client does:
 * 0 (shown as it is) unless the whole value is such words. Each word written by mail_build is at most 75. */
static int decode_words(const char *v, size_t n, text *out) {
    text d = {0};
    put(&d, "", 0);
    size_t i = 0;
    while (i < n) {
        const char *end = strncmp(v + i, "=?UTF-8?B?", 10) == 0 ? strstr(v + i + 10, "?=") : NULL;
        size_t wlen = end ? (size_t)(end - v) + 2 - i : 0;
        if (!end || i + wlen > n || (i + wlen < n && v[i + wlen] != ' ') || !unbase64_ok(&d, v + i + 10, wlen - 12)) {
            free(d.p);
            return 0;
        }
        FUZZ_CHECK(wlen <= 75);
        i += wlen + (i + wlen < n);
    }
    put(out, d.p, d.len);
    free(d.p);
    return 1;
}

/* What a client shows for a value that may be encoded-words (the whole value, as mail_build writes them). */
static void check_display(const char *v, size_t n, const char *want) {
    text d = {0};
    put(&d, "", 0);
    if (!decode_words(v, n, &d)) put(&d, v, n);
    FUZZ_CHECK(d.len == strlen(want) && memcmp(d.p, want, d.len) == 0);
    free(d.p);
}

static void check_from(const char *v, size_t n, const mail_input *in) {
    size_t alen = strlen(in->from);
    FUZZ_CHECK(n > alen + 3 && v[n - 1] == '>' && memcmp(v + n - 1 - alen, in->from, alen) == 0);
    FUZZ_CHECK(v[n - 2 - alen] == '<' && v[n - 3 - alen] == ' ');
    size_t dn = n - 3 - alen;
    if (v[0] != '"') {
        check_display(v, dn, in->from_name);
        return;
    }
    text name = {0};
    put(&name, "", 0);
    size_t i = 1;
    for (; i < dn && v[i] != '"'; i++) {
        if (v[i] == '\\') i++;
        FUZZ_CHECK(i < dn);
        put(&name, v + i, 1);
    }
    FUZZ_CHECK(i == dn - 1);
    FUZZ_CHECK(strcmp(name.p, in->from_name) == 0);
    free(name.p);
}

/* The text of a part: base64 lines of at most 76 characters up to the next boundary line. */
static const char *part_body(const char *p, const char *boundary, const char *type, text *out) {
    char head[256];
    snprintf(head, sizeof(head), "--%s\r\nContent-Type: %s; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
             boundary, type);
    FUZZ_CHECK(strncmp(p, head, strlen(head)) == 0);
    p += strlen(head);
    put(out, "", 0);
    while (strncmp(p, "--", 2) != 0) {
        const char *eol = strstr(p, "\r\n");
        FUZZ_CHECK(eol && eol - p <= 76);
        unbase64(out, p, (size_t)(eol - p));
        p = eol + 2;
    }
    return p;
}

static void check_html(const char *html, const char *want) {
    const char *start = "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head><body><p>",
               *end = "</p></body></html>\r\n";
    size_t n = strlen(html), sn = strlen(start), en = strlen(end);
    FUZZ_CHECK(n >= sn + en && strncmp(html, start, sn) == 0 && strcmp(html + n - en, end) == 0);
    text t = {0};
    put(&t, "", 0);
    for (size_t i = sn; i < n - en;) {
        static const char *const from[] = {"</p>\r\n<p>", "<br>\r\n", "&lt;", "&gt;", "&amp;", "&quot;", "&#39;"};
        static const char *const to[] = {"\n\n", "\n", "<", ">", "&", "\"", "'"};
        size_t k = 0;
        while (k < 7 && strncmp(html + i, from[k], strlen(from[k])) != 0) k++;
        if (k < 7) {
            put(&t, to[k], strlen(to[k]));
            i += strlen(from[k]);
            continue;
        }
        FUZZ_CHECK(!strchr("<>\"'\r\n", html[i]));
        put(&t, html + i, 1);
        i++;
    }
    /* The HTML drops CRs: compare with the text without them. */
    text w = {0};
    put(&w, "", 0);
    for (const char *p = want; *p; p++)
        if (*p != '\r') put(&w, p, 1);
    FUZZ_CHECK(strcmp(t.p, w.p) == 0);
    free(t.p), free(w.p);
}

static int bchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=?", c);
}

static void check_message(const char *msg, size_t len, const mail_input *in) {
    FUZZ_CHECK(strlen(msg) == len);
    size_t col = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        FUZZ_CHECK(c < 0x80);
        FUZZ_CHECK(c != '\r' || msg[i + 1] == '\n');
        FUZZ_CHECK(c != '\n' || (i > 0 && msg[i - 1] == '\r'));
        col = c == '\n' ? 0 : col + 1;
        FUZZ_CHECK(col <= 999); /* 998 octets and the CR */
    }
    /* Headers, unfolded. */
    static const char *const names[] = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted",
                                        "MIME-Version", "Content-Type"};
    const char *p = msg;
    char boundary[128] = "";
    for (int h = 0; h < 8; h++) {
        size_t nl = strlen(names[h]);
        FUZZ_CHECK(strncmp(p, names[h], nl) == 0 && strncmp(p + nl, ": ", 2) == 0);
        p += nl + 2;
        text v = {0};
        put(&v, "", 0);
        for (;;) {
            const char *eol = strstr(p, "\r\n");
            FUZZ_CHECK(eol != NULL);
            put(&v, p, (size_t)(eol - p));
            p = eol + 2;
            if (*p != ' ') break;
            p++;
            put(&v, " ", 1);
        }
        if (h == 0) check_from(v.p, v.len, in);
        if (h == 1) FUZZ_CHECK(v.p[0] == '<' && strncmp(v.p + 1, in->to, strlen(in->to)) == 0 &&
                               strcmp(v.p + 1 + strlen(in->to), ">") == 0);
        if (h == 2) check_display(v.p, v.len, in->subject);
        if (h == 3 && in->date_ms >= 0 && in->date_ms < 253402300800000LL) /* years 1970 to 9999 */
            FUZZ_CHECK(v.len == 31 && strcmp(v.p + 25, " +0000") == 0);
        if (h == 4) FUZZ_CHECK(v.p[0] == '<' && strncmp(v.p + 1, in->message_id, strlen(in->message_id)) == 0 &&
                               strcmp(v.p + 1 + strlen(in->message_id), ">") == 0);
        if (h == 7) {
            const char *b = "multipart/alternative; boundary=\"";
            FUZZ_CHECK(strncmp(v.p, b, strlen(b)) == 0 && v.p[v.len - 1] == '"');
            size_t bn = v.len - strlen(b) - 1;
            FUZZ_CHECK(bn >= 1 && bn <= 70 && bn < sizeof(boundary));
            memcpy(boundary, v.p + strlen(b), bn);
            boundary[bn] = '\0';
            for (size_t i = 0; i < bn; i++) FUZZ_CHECK(bchar(boundary[i]));
        }
        free(v.p);
    }
    FUZZ_CHECK(strncmp(p, "\r\n", 2) == 0);
    p += 2;
    text plain = {0}, html = {0}, want = {0};
    p = part_body(p, boundary, "text/plain", &plain);
    p = part_body(p, boundary, "text/html", &html);
    char last[128];
    snprintf(last, sizeof(last), "--%s--\r\n", boundary);
    FUZZ_CHECK(strcmp(p, last) == 0);
    put(&want, "", 0);
    for (const char *s = in->text; *s; s++) {
        if (*s == '\r' && s[1] == '\n') continue;
        if (*s == '\r' || *s == '\n') put(&want, "\r\n", 2);
        else put(&want, s, 1);
    }
    FUZZ_CHECK(plain.len == want.len && memcmp(plain.p, want.p, want.len) == 0);
    FUZZ_CHECK(strlen(html.p) == html.len);
    check_html(html.p, in->text);
    free(plain.p), free(html.p), free(want.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *f[7], *block;
    fuzz_fields(data, size, f, 7, &block);
    mail_input in = {
        .from = f[0] ? f[0] : "sav@sav.example",
        .from_name = f[1] ? f[1] : "Service après-vente",
        .to = f[2] ? f[2] : "jeanne.martin@example.fr",
        .subject = f[3] ? f[3] : "Votre appareil WM-7000 est prêt à être retiré (demande T-2026-000001)",
        .text = f[4] ? f[4] : "Bonjour Jeanne Martin,\n\nVotre WM-7000 est prêt.\n",
        .message_id = f[5] ? f[5] : "T-2026-000001.ready_for_pickup.email.1@sav.example",
        .date_ms = f[6] ? strtoll(f[6], NULL, 10) : 1796000000000LL,
    };
    char *msg;
    size_t len;
    if (mail_build(&in, &msg, &len) == 0) {
        check_message(msg, len, &in);
        free(msg);
    }
    free(block);
    return 0;
}
