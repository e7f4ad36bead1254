#include "command.h"
#include "err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *command_arg(const Sav__Command *c, const char *name) {
    for (size_t i = 0; i < c->n_args; i++)
        if (strcmp(c->args[i]->name, name) == 0) return c->args[i]->value;
    return NULL;
}

size_t command_args(const Sav__Command *c, const char *name, const char **out, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < c->n_args; i++)
        if (strcmp(c->args[i]->name, name) == 0) {
            if (n < max) out[n] = c->args[i]->value;
            n++;
        }
    return n;
}

int command_flag(const Sav__Command *c, const char *name) {
    return command_arg(c, name) != NULL;
}

int command_int(const Sav__Command *c, const char *name, long min, long max, long def, long *out) {
    const char *v = command_arg(c, name);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        err_set("%s must be an integer from %ld to %ld, got \"%s\"", name, min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

int command_check_names(const Sav__Command *c, const char *const *allowed) {
    for (size_t i = 0; i < c->n_args; i++) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, c->args[i]->name) != 0) a++;
        if (!*a) {
            err_set("%s does not take the argument \"%s\"", c->name, c->args[i]->name);
            return -1;
        }
    }
    return 0;
}

json_t *command_json_str(const char *s) {
    return s && s[0] ? json_string(s) : json_null();
}
