/* gsm: how an SMS text goes on the air. GSM 03.38 default alphabet (data
 * coding 0) when every character is in it, extension characters (€ [ ] { }
 * ...) counting as two septets; otherwise UCS-2 big-endian without BOM
 * (data coding 8). No character is ever replaced. Long texts are cut into
 * concatenated parts (UDH 05 00 03 ref total seq): 160 septets in one part,
 * else 153 per part; UCS-2 70 characters, else 67; an escape pair or a
 * surrogate pair is never split. Pure: no I/O. */
#ifndef SAV_GSM_H
#define SAV_GSM_H

#include <stddef.h>
#include <stdint.h>

#define GSM_MAX_PARTS 16
#define GSM_PART_BYTES 140 /* user data per SMS, UDH included */

enum gsm_coding { GSM_CODING_GSM7 = 0, GSM_CODING_UCS2 = 8 };

/* One SMS part: its user data, the UDH octets first, then the payload: UCS-2 bytes, or GSM-7 septets unpacked
 * one per byte, as SMPP carries them (the SMSC packs them into octets, with fill bits after a UDH, for the air). */
typedef struct gsm_part {
    uint8_t data[GSM_PART_BYTES + 20];
    size_t len;      /* bytes (UCS-2) or septets (GSM-7), UDH included */
    size_t udh_len;  /* 0 for a single-part message, 6 otherwise */
} gsm_part;

typedef struct gsm_message {
    enum gsm_coding coding;
    gsm_part parts[GSM_MAX_PARTS];
    int nparts;
} gsm_message;

/* Chooses the coding of a UTF-8 text and cuts it into parts with concatenation reference ref.
 * 0, or -1 with err (invalid UTF-8, or longer than GSM_MAX_PARTS parts). */
int gsm_encode(const char *utf8, size_t len, uint8_t ref, gsm_message *out);

/* Returns 1 if every character of the UTF-8 text is in the GSM 03.38 alphabet (with its extension table). */
int gsm_is_gsm7(const char *utf8, size_t len);

#endif
