/* unit: includes and assertions shared by the cmocka unit tests (error-message checks). */
#ifndef SAV_UNIT_H
#define SAV_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

/* Empties the thread's error message, so a check cannot pass on a message left by an earlier call. */
static inline void unit_err_clear(void) {
    err_set("%s", "");
}

/* Fails unless the thread's last error message contains needle. */
#define assert_err_contains(needle)                                                                                \
    do {                                                                                                           \
        const char *unit_e_ = err_get();                                                                           \
        if (!strstr(unit_e_, (needle))) fail_msg("error \"%s\" does not contain \"%s\"", unit_e_, (needle));      \
    } while (0)

/* Fails unless the thread's last error message is exactly expected. */
#define assert_err_equal(expected) assert_string_equal(err_get(), (expected))

#endif
