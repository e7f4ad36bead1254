/* validate: checks on untrusted text before it reaches Redis or a message.
 * Each check returns 0 when the value is acceptable, or -1 with err set to a
 * sentence a front-desk operator can act on. */
#ifndef SAV_VALIDATE_H
#define SAV_VALIDATE_H

#include <stddef.h>

/* Checks that len bytes are well-formed UTF-8 (no overlongs, no surrogates). */
int validate_utf8(const char *s, size_t len);

/* Checks a free-text field: UTF-8, 1..max_bytes bytes, no control characters (newline and tab allowed if multiline). */
int validate_text(const char *field, const char *s, size_t max_bytes, int multiline);

/* Normalises a phone number typed in French or international form to E.164 into out (at least 17 bytes). */
int validate_phone(const char *in, char *out, size_t outlen);

/* Checks an e-mail address: one @, a dotted domain, no spaces or control characters, at most 254 bytes. */
int validate_email(const char *s);

/* Checks that s is one of the NULL-terminated choices; err names the field and the choices. */
int validate_choice(const char *field, const char *s, const char *const *choices);

/* Checks a ticket id: T-YYYY-NNNNNN. */
int validate_ticket_id(const char *s);

/* Checks an identifier for keys (serial, model, code, request id): 1..64 of [A-Za-z0-9._:-]. */
int validate_token(const char *field, const char *s);

/* Checks a French company id: SIREN (9 digits) or SIRET (14 digits) with a valid Luhn key. */
int validate_company_id(const char *s);

#endif
