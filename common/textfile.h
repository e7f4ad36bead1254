/* textfile: reading a small text file whole (a catalog, a template, a document to send). */
#ifndef SAV_TEXTFILE_H
#define SAV_TEXTFILE_H

#include <stddef.h>

/* Reads at most max bytes of a file into a NUL-terminated malloc'd buffer (caller frees) and sets *len;
 * NULL with err when it cannot be opened, is larger than max, or contains a NUL byte. */
char *textfile_read(const char *path, size_t max, size_t *len);

#endif
