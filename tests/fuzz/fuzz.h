/* fuzz: what the libFuzzer targets of tests/fuzz share. A property that
 * fails aborts, so libFuzzer keeps the input as a crash like any memory
 * error, and the message says which property and where. */
#ifndef SAV_FUZZ_H
#define SAV_FUZZ_H

#define _GNU_SOURCE /* memmem */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                           \
    do {                                                                                                           \
        if (!(cond)) {                                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);                            \
            abort();                                                                                               \
        }                                                                                                          \
    } while (0)

/* Returns a NUL-terminated malloc'd copy of n bytes (aborts when out of memory: a fuzz input is small). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Cuts the input at NUL bytes into at most max NUL-terminated fields (malloc'd, in one block); returns how
 * many. A field past the input's end is NULL, so a target can default it. */
static inline size_t fuzz_fields(const uint8_t *data, size_t size, char **fields, size_t max, char **block) {
    *block = fuzz_strndup(data, size);
    size_t n = 0;
    char *p = *block, *end = *block + size;
    for (size_t i = 0; i < max; i++) fields[i] = NULL;
    while (n < max && p <= end) {
        fields[n++] = p;
        p += strlen(p) + 1;
    }
    return n;
}

/* Checks that len bytes are well-formed UTF-8, independently of validate_utf8 (whose word the others trust). */
static inline int fuzz_utf8_ok(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 0 : c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 9;
        if (n == 9 || len - i <= n) return n == 0;
        for (size_t k = 1; k <= n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[i + 1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && s[i + 1] >= 0xA0) return 0; /* surrogate */
        if (c == 0xF0 && s[i + 1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && s[i + 1] >= 0x90) return 0; /* above U+10FFFF */
        i += n + 1;
    }
    return 1;
}

#endif
