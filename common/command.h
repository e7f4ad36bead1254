/* command: reading the named arguments of an operator Command, and building
 * its JSON result. A command's handler never sees an argument its table
 * does not declare: service refuses unknown names before the handler runs. */
#ifndef SAV_COMMAND_H
#define SAV_COMMAND_H

#include <jansson.h>
#include <stddef.h>

#include "sav.pb-c.h"

/* Returns the first value of argument name, or NULL; owned by the command. */
const char *command_arg(const Sav__Command *c, const char *name);

/* Returns how many values argument name has, and stores up to max of them in out. */
size_t command_args(const Sav__Command *c, const char *name, const char **out, size_t max);

/* Returns 1 if the flag argument name is present (any value). */
int command_flag(const Sav__Command *c, const char *name);

/* Parses argument name as an integer in [min, max] into *out; absent: *out = def. 0 or -1 with err. */
int command_int(const Sav__Command *c, const char *name, long min, long max, long def, long *out);

/* Checks that every argument is in the NULL-terminated allowed list; 0 or -1 with err naming the first stranger. */
int command_check_names(const Sav__Command *c, const char *const *allowed);

/* Returns a JSON string for s, or JSON null when s is NULL or empty (new reference). */
json_t *command_json_str(const char *s);

#endif
