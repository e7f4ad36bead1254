#include "textfile.h"
#include "err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *textfile_read(const char *path, size_t max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int failed = buf && ferror(f);
    fclose(f);
    if (!buf || failed || n > max || memchr(buf, 0, n)) {
        err_set("%s: %s", path, !buf ? "out of memory" : failed ? "read error" : n > max ? "file too large" : "not a text file");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
