/* keys: CURVE key files. Every service and every operator identity has a key
 * pair in the keys directory: NAME.pub (the public key, readable) and
 * NAME.key (the secret key, mode 0600, refused when group or others may read
 * it). Each file holds one key as 40 Z85 characters on a line; blank lines
 * and lines starting with '#' are ignored. Secrets come from these files
 * only, never from the command line, and are never logged. */
#ifndef SAV_KEYS_H
#define SAV_KEYS_H

#include <stddef.h>

#define KEYS_Z85_LEN 40   /* a 32-byte CURVE key in Z85 */
#define KEYS_NAME_MAX 64

/* A key pair as Z85 text; wipe it with keys_forget when done. */
typedef struct keys_pair {
    char public_key[KEYS_Z85_LEN + 1];
    char secret_key[KEYS_Z85_LEN + 1];
} keys_pair;

/* Checks an identity name (also a file name): 1 to 64 letters, digits, '.', '_' or '-', not starting with '.';
 * 0 or -1 with err. */
int keys_name_check(const char *name);

/* Checks that text is a Z85-encoded 32-byte key; 0 or -1 with err. */
int keys_z85_check(const char *text);

/* Writes "dir/name.ext" into out; 0, or -1 with err when it does not fit. */
int keys_path(const char *dir, const char *name, const char *ext, char *out, size_t outlen);

/* Reads the public key file at path into out; 0 or -1 with err naming the file (and line). */
int keys_read_public(const char *path, char out[KEYS_Z85_LEN + 1]);

/* Reads dir/name.pub and dir/name.key (owner-only) into pair and checks that they belong together;
 * 0 or -1 with err naming the file. */
int keys_load_pair(const char *dir, const char *name, keys_pair *pair);

/* Makes a new key pair and writes dir/name.key (0600) and dir/name.pub (0644), creating dir (0700) if it is
 * missing; never overwrites a file. Fills pair; 0, or -1 with err and no file left behind. */
int keys_generate(const char *dir, const char *name, keys_pair *pair);

/* Removes dir/name.key and dir/name.pub (undoing keys_generate). */
void keys_remove(const char *dir, const char *name);

/* Wipes a key pair from memory. */
void keys_forget(keys_pair *pair);

#endif
