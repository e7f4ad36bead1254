/* sha1: the SHA-1 digest (FIPS 180-4), to verify in C what the Functions
 * library digests with redis.sha1hex (a packed ticket's content, see
 * common/pack.h). An integrity check against corruption, not a defence
 * against someone who can write to Redis. Pure. */
#ifndef SAV_SHA1_H
#define SAV_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA1_HEX_LEN 41 /* 40 hex digits and the NUL */

/* Writes the SHA-1 digest of len bytes of data into out. */
void sha1_digest(const void *data, size_t len, uint8_t out[SHA1_LEN]);

/* Writes a digest as 40 lowercase hex digits, as redis.sha1hex does. */
void sha1_hex(const uint8_t digest[SHA1_LEN], char out[SHA1_HEX_LEN]);

#endif
