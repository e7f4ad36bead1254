/* generic: savctl commands that map their options one to one onto the
 * named arguments of a service Command, described by a table: options,
 * help page, and the service that serves them. */
#ifndef SAV_SAVCTL_GENERIC_H
#define SAV_SAVCTL_GENERIC_H

#include "savctl.h"

enum generic_option_kind {
    OPT_VALUE,      /* --name VALUE */
    OPT_FLAG,       /* --name */
    OPT_REPEATED,   /* --name VALUE, several times */
    OPT_POSITIONAL, /* the command's one positional argument */
    OPT_FILE,       /* --name FILE: the file's content is sent */
};

typedef struct generic_option {
    const char *name;       /* the long option ("notice-deadline"), or the positional's name */
    const char *arg;        /* the Command argument it fills ("notice_deadline") */
    enum generic_option_kind kind;
    int required;
    const char *metavar;    /* shown in the synopsis: "DATE" */
    const char *help;
} generic_option;

typedef struct generic_command {
    const char *words;         /* "customer add" */
    const char *command;       /* "customer.add" */
    enum service_id service;
    int changes;               /* sends a request id (--request-id, or a fresh one) */
    const char *summary;
    const char *description;
    const char *output;
    const generic_option *options; /* terminated by a zero entry */
    const char *fixed_arg;     /* an argument always sent with this value ("status" for claim approve), or NULL */
    const char *fixed_value;
    const char *text_field;    /* text mode prints this result field as it is (a document), or NULL */
    const char *table;         /* text mode prints this result array as a table ... */
    const char *columns;       /* ... with these comma-separated columns */
} generic_command;

/* Returns the table of generic commands and its size. */
const generic_command *generic_commands(size_t *n);

/* Runs a generic command: parses argv, sends the Command, prints the result. Returns the exit code. */
int generic_run(savctl *ctl, const generic_command *gc, int argc, char **argv);

/* Prints a generic command's man-style help page. */
void generic_help(const generic_command *gc, FILE *out);

#endif
