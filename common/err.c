#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static __thread char err_message[512];

void err_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_message, sizeof(err_message), fmt, ap);
    va_end(ap);
}

const char *err_get(void) {
    return err_message[0] ? err_message : "unknown error";
}
