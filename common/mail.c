#include "mail.h"
#include "err.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing byte buffer. */
typedef struct mail_buf {
    char *data;
    size_t len, cap;
    int failed;
} mail_buf;

static void mail_put(mail_buf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap + n + 1) * 2;
        char *grown = realloc(b->data, cap);
        if (!grown) {
            b->failed = 1;
            return;
        }
        b->data = grown, b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void mail_puts(mail_buf *b, const char *s) {
    mail_put(b, s, strlen(s));
}

/* Refuses what could break out of a header: control characters (CR, LF above all) and, in addresses, <>. */
static int mail_check_header(const char *field, const char *s, int address) {
    if (!s || !*s) {
        err_set("mail %s is empty", field);
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7F || (address && (*p == '<' || *p == '>'))) {
            err_set("mail %s contains a forbidden character (0x%02x)", field, *p);
            return -1;
        }
    if (validate_utf8(s, strlen(s)) != 0) {
        err_set("mail %s is not valid UTF-8", field);
        return -1;
    }
    return address ? validate_email(s) : 0;
}

/* A letter or a digit, in ASCII whatever the locale. */
static int mail_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A Message-ID is RFC 5322 dot-atom text on both sides of one @: 7-bit, nothing a header parser reads. */
static int mail_message_id_ok(const char *id) {
    const char *at = strchr(id, '@');
    if (!at || at == id || !at[1] || strchr(at + 1, '@')) return 0;
    for (const char *p = id; *p; p++)
        if (p != at && !mail_alnum(*p) && !strchr("!#$%&'*+-/=?^_`{|}~.", *p)) return 0;
    return 1;
}

static const char mail_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends the base64 of n bytes, with a CRLF every 76 characters when wrap is set. */
static void mail_base64(mail_buf *b, const unsigned char *s, size_t n, int wrap) {
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < n ? (unsigned)s[i + 1] << 8 : 0) | (i + 2 < n ? s[i + 2] : 0);
        char q[4] = {mail_b64[v >> 18 & 63], mail_b64[v >> 12 & 63], i + 1 < n ? mail_b64[v >> 6 & 63] : '=',
                     i + 2 < n ? mail_b64[v & 63] : '='};
        mail_put(b, q, 4);
        col += 4;
        if (wrap && col >= 76 && i + 3 < n) mail_puts(b, "\r\n"), col = 0;
    }
}

static int mail_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* Longer plain values would push a header line past the 998 octets of RFC 5322 (2.1.1), with the header
 * name, quotes, escapes and the sender's address on the same line. */
#define MAIL_PLAIN_MAX 300

/* A header value that can go as it is: ASCII, short, and not mistaken by a client for an encoded-word. */
static int mail_plain(const char *s) {
    return mail_ascii(s) && strlen(s) <= MAIL_PLAIN_MAX && !strstr(s, "=?");
}

/* Length of a UTF-8 sequence from its first byte. */
static size_t mail_seq(unsigned char c) {
    return c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
}

/* A header value as RFC 2047 encoded-words when it is not plain: "=?UTF-8?B?...?=" of 39 bytes of text
 * at most, so that a line holding one, even after "Subject: ", stays within 76 characters (RFC 2047 section 2);
 * folded with CRLF SP, never splitting a UTF-8 sequence. */
static void mail_encoded(mail_buf *b, const char *s) {
    if (mail_plain(s)) {
        mail_puts(b, s);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    int first = 1;
    while (*p) {
        size_t n = 0;
        while (p[n] && n + mail_seq(p[n]) <= 39) n += mail_seq(p[n]);
        if (!first) mail_puts(b, "\r\n ");
        mail_puts(b, "=?UTF-8?B?");
        mail_base64(b, p, n, 0);
        mail_puts(b, "?=");
        p += n, first = 0;
    }
}

/* The text with every line ending as CRLF (bare LF and bare CR normalised). */
static void mail_crlf(mail_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\r' && s[1] == '\n') continue;
        if (*s == '\r' || *s == '\n')
            mail_puts(b, "\r\n");
        else
            mail_put(b, s, 1);
    }
}

/* The text as HTML: escaped, paragraphs on blank lines, line breaks kept. */
static void mail_html(mail_buf *b, const char *s) {
    mail_puts(b, "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"></head><body><p>");
    for (; *s; s++) {
        switch (*s) {
        case '<': mail_puts(b, "&lt;"); break;
        case '>': mail_puts(b, "&gt;"); break;
        case '&': mail_puts(b, "&amp;"); break;
        case '"': mail_puts(b, "&quot;"); break;
        case '\'': mail_puts(b, "&#39;"); break;
        case '\r': break;
        case '\n':
            if (s[1] == '\n') mail_puts(b, "</p>\r\n<p>"), s++;
            else mail_puts(b, "<br>\r\n");
            break;
        default: mail_put(b, s, 1);
        }
    }
    mail_puts(b, "</p></body></html>\r\n");
}

static void mail_part(mail_buf *b, const char *boundary, const char *type, const mail_buf *content) {
    mail_puts(b, "--"), mail_puts(b, boundary), mail_puts(b, "\r\nContent-Type: "), mail_puts(b, type);
    mail_puts(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    mail_base64(b, (const unsigned char *)content->data, content->len, 1);
    mail_puts(b, "\r\n");
}

/* The sender's display name and the "<" of its address: a plain name as a quoted string (a comma or a
 * bracket in it must not read as a second mailbox), any other as encoded-words with the address folded onto
 * its own line. */
static void mail_display_name(mail_buf *b, const char *name) {
    if (!mail_plain(name)) {
        mail_encoded(b, name);
        mail_puts(b, "\r\n <");
        return;
    }
    mail_puts(b, "\"");
    for (const char *q = name; *q; q++) {
        if (*q == '"' || *q == '\\') mail_puts(b, "\\");
        mail_put(b, q, 1);
    }
    mail_puts(b, "\" <");
}

static void mail_headers(mail_buf *b, const mail_input *in, const char *boundary) {
    char date[64];
    time_t t = (time_t)(in->date_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    mail_puts(b, "From: ");
    mail_display_name(b, in->from_name);
    mail_puts(b, in->from);
    mail_puts(b, ">\r\nTo: <"), mail_puts(b, in->to), mail_puts(b, ">\r\nSubject: "), mail_encoded(b, in->subject);
    mail_puts(b, "\r\nDate: "), mail_puts(b, date), mail_puts(b, "\r\nMessage-ID: <"), mail_puts(b, in->message_id);
    mail_puts(b, ">\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    mail_puts(b, "Content-Type: multipart/alternative; boundary=\""), mail_puts(b, boundary), mail_puts(b, "\"\r\n\r\n");
}

int mail_build(const mail_input *in, char **out, size_t *len) {
    *out = NULL, *len = 0;
    if (mail_check_header("sender", in->from, 1) != 0 || mail_check_header("sender name", in->from_name, 0) != 0 ||
        mail_check_header("recipient", in->to, 1) != 0 || mail_check_header("subject", in->subject, 0) != 0 ||
        mail_check_header("message id", in->message_id, 0) != 0)
        return -1;
    if (!mail_message_id_ok(in->message_id)) {
        err_set("mail message id must be local@domain in letters, digits and !#$%%&'*+-/=?^_`{|}~.");
        return -1;
    }
    if (validate_utf8(in->text, strlen(in->text)) != 0) return -1;
    char boundary[96];
    snprintf(boundary, sizeof(boundary), "=_sav_%.60s", in->message_id);
    /* RFC 2046 allows few characters in a boundary: the others of the id become dots. */
    for (char *p = boundary + 6; *p; p++)
        if (!mail_alnum(*p) && *p != '-') *p = '.';
    mail_buf msg = {0}, text = {0}, html = {0};
    mail_crlf(&text, in->text);
    mail_html(&html, in->text);
    mail_headers(&msg, in, boundary);
    mail_part(&msg, boundary, "text/plain", &text);
    mail_part(&msg, boundary, "text/html", &html);
    mail_puts(&msg, "--"), mail_puts(&msg, boundary), mail_puts(&msg, "--\r\n");
    free(text.data), free(html.data);
    if (msg.failed || text.failed || html.failed) {
        free(msg.data);
        err_set("out of memory building an e-mail");
        return -1;
    }
    *out = msg.data, *len = msg.len;
    return 0;
}
