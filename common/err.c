#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char err_message[512];

void err_set(const char *fmt, ...) {
    /* Formatted aside first: the new message often quotes the current one (err_get()), and vsnprintf into the
     * buffer it reads from garbles it. */
    char message[sizeof(err_message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    memcpy(err_message, message, sizeof(err_message));
}

const char *err_get(void) {
    return err_message[0] ? err_message : "unknown error";
}
