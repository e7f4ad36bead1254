/* mail: one e-mail as bytes on the wire (RFC 5322 + MIME): From, To,
 * Subject (short plain ASCII as it is, else RFC 2047 encoded-words in UTF-8,
 * at most 75 characters each, a UTF-8 sequence never split), Date, Message-ID, Auto-Submitted, and a
 * multipart/alternative body, text/plain first and text/html last, UTF-8,
 * base64, CRLF line endings only. Every address, name and subject is checked
 * for control characters first: no header or envelope injection. Pure. */
#ifndef SAV_MAIL_H
#define SAV_MAIL_H

#include <stddef.h>
#include <stdint.h>

typedef struct mail_input {
    const char *from;       /* address */
    const char *from_name;  /* display name, may be non-ASCII */
    const char *to;         /* address */
    const char *subject;
    const char *text;       /* the body; the HTML part is this text, escaped */
    const char *message_id; /* without angle brackets: the same across retries of one notification */
    int64_t date_ms;        /* UTC */
} mail_input;

/* Builds the message; 0 with *out malloc'd (caller frees) and *len set, or -1 with err naming the bad field. */
int mail_build(const mail_input *in, char **out, size_t *len);

#endif
