/* pack: a settled closed ticket's bulky records (timeline, pre-diagnosis,
 * coverage, verdicts, quotes, notifications, the ticket hash in full) as one
 * compressed value, packed:<T> (services/intake/packing.c moves them; the
 * Functions pack_collect, ticket_pack and ticket_unpack of
 * common/redis/sav.lua read and write the keys). Pure: no I/O.
 *
 * The payload is the JSON array pack_collect writes, PACK_PARTS sections
 * (hashes as flat name/value lists in the order Redis returned them, lists
 * in order). The value: a PACK_HEADER_LEN header, then the payload as a raw
 * deflate stream with the preset dictionary the header names:
 *   0  "SVPK"
 *   4  format version (PACK_VERSION)
 *   5  dictionary id (0: none; see pack_dictionary)
 *   6  SHA-1 of the payload, 20 bytes (redis.sha1hex's digest: the Functions
 *      compare it, C verifies it after inflating)
 *   26 payload length, 4 bytes big-endian
 *   30 the ticket's last change when packed, UTC ms, 8 bytes big-endian
 *      (archive_read reads it without inflating)
 *   38 the deflate stream */
#ifndef SAV_PACK_H
#define SAV_PACK_H

#include "sha1.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PACK_VERSION 1
#define PACK_HEADER_LEN 38
#define PACK_DICT_NONE 0
#define PACK_DICT_CURRENT 1 /* the dictionary new values use; an id's text never changes */
#define PACK_PAYLOAD_MAX (4 * 1024 * 1024)

/* The payload's sections, in pack_collect's order. */
enum {
    PACK_TICKET,        /* the ticket hash in full, name/value list */
    PACK_TIMELINE,      /* entries (JSON strings) */
    PACK_PREDIAG,       /* name/value lists: prediag, coverage, verdict */
    PACK_COVERAGE,
    PACK_VERDICT,
    PACK_VERDICTS,      /* every verdict version (JSON strings) */
    PACK_QUOTE,         /* name/value list */
    PACK_QUOTES,        /* superseded quotes (JSON strings) */
    PACK_ORDER,         /* every notification id of notifs:<T> when packed, in order */
    PACK_NOTIFICATIONS, /* [[id, name/value list]...]: those packed (the others stayed in notifs:<T>) */
    PACK_PARTS
};

/* What a packed value's header says. */
typedef struct pack_info {
    int version;
    int dict;
    char digest[SHA1_HEX_LEN]; /* of the payload, hex */
    size_t payload_len;
    int64_t last_change;
} pack_info;

/* Returns dictionary id's text and its length, or NULL (err set) for an unknown id. The text is compiled in. */
const char *pack_dictionary(int id, size_t *len);

/* Compresses a payload into a packed value with dictionary dict; digest: the payload's SHA-1 in hex as
 * pack_collect computed it, checked here. Returns the value (caller frees) and its length, or NULL with err. */
unsigned char *pack_encode(const char *payload, size_t len, const char *digest, int64_t last_change, int dict,
                           size_t *out_len);

/* Reads a packed value's header into info; 0, or -1 with err when it is not one this build reads. */
int pack_header(const unsigned char *value, size_t len, pack_info *info);

/* Inflates a packed value and checks its length and digest. Returns the payload (caller frees, NUL-terminated,
 * *payload_len bytes) with info filled, or NULL with err (not a packed value, unknown dictionary, corrupt, digest
 * mismatch). */
char *pack_decode(const unsigned char *value, size_t len, pack_info *info, size_t *payload_len);

/* Parses a payload into its PACK_PARTS sections, each checked for its shape (an empty Lua table, which cjson
 * writes as {}, becomes []). Returns a new reference, or NULL with err. */
json_t *pack_parts(const char *payload, size_t len);

/* A hash as it reads with its live fields over its packed ones: the packed name/value list in its order, each
 * value replaced by the live one of the same name, then the live names it lacks, in their order. Both are flat
 * lists of strings (live may be NULL). Returns a new reference. */
json_t *pack_merge_pairs(const json_t *packed, const json_t *live);

/* The value of name in a flat name/value list, or NULL. */
const char *pack_pairs_get(const json_t *pairs, const char *name);

#endif
