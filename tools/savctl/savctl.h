/* savctl: the operator's command-line tool. Shared pieces of its commands:
 * the invocation context, exit codes, the request helper and output. */
#ifndef SAV_SAVCTL_H
#define SAV_SAVCTL_H

#include <jansson.h>

#include "bus.h"
#include "envelope.h"
#include "keys.h"
#include "settings.h"

enum savctl_exit {
    SAVCTL_OK = 0,
    SAVCTL_USAGE = 1,       /* bad command line */
    SAVCTL_REJECTED = 2,    /* the service refused the input, with the reason */
    SAVCTL_NOT_FOUND = 3,
    SAVCTL_UNAVAILABLE = 4, /* a service (named) or its Redis did not answer */
    SAVCTL_INTERNAL = 5,
    SAVCTL_FORBIDDEN = 6,   /* the identity is not authorised, or its role may not run the command */
};

typedef struct savctl {
    settings cfg;
    int json;                /* --json: one JSON document on stdout */
    keys_pair keys;          /* the identity's pair, once a request needs it */
    char server_keys[SVC_COUNT][KEYS_Z85_LEN + 1]; /* each service's public key, once read ("" before) */
} savctl;

/* A command: name, one-line summary, handler, man-style help text. */
typedef struct savctl_command {
    const char *name;
    const char *summary;
    int (*run)(savctl *ctl, int argc, char **argv);
    const char *help;
} savctl_command;

/* Fills peer with the service's endpoint and, when security.curve is on, its public key and the identity's key
 * pair (read from the keys directory on first use). Returns SAVCTL_OK, or SAVCTL_USAGE after printing why. */
int savctl_peer(savctl *ctl, enum service_id service, bus_peer *peer);

/* Sends body as a request of `type` to service and stores the reply envelope in *reply (free with envelope_free).
 * Returns SAVCTL_OK, or the exit code after printing why (service error, unavailable). */
int savctl_request(savctl *ctl, enum service_id service, Sav__MessageType type, const ProtobufCMessage *body,
                   const char *ticket_id, Sav__Envelope **reply);

/* Prints a usage error for a command and returns SAVCTL_USAGE. */
int savctl_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the help of a command (its man page) to stdout and returns SAVCTL_OK. */
int savctl_print_help(const savctl_command *cmd);

/* Prints a JSON value on stdout (pretty, UTF-8), then frees it. */
void savctl_print_json(json_t *value);

/* Returns 1 if argv holds -h or --help. */
int savctl_wants_help(int argc, char **argv);

/* Prints a ticket as `ticket show` does: header, each service's section, notifications, timeline. */
void savctl_ticket_print(const Sav__TicketView *v);

int savctl_cmd_ping(savctl *ctl, int argc, char **argv);
int savctl_cmd_status(savctl *ctl, int argc, char **argv);
int savctl_cmd_ticket_open(savctl *ctl, int argc, char **argv);
int savctl_cmd_ticket_show(savctl *ctl, int argc, char **argv);
int savctl_cmd_config_get(savctl *ctl, int argc, char **argv);
int savctl_cmd_redis_acl(savctl *ctl, int argc, char **argv);
int savctl_cmd_keys_generate(savctl *ctl, int argc, char **argv);
int savctl_cmd_whoami(savctl *ctl, int argc, char **argv);
int savctl_cmd_check(savctl *ctl, int argc, char **argv);
int savctl_cmd_archive_run(savctl *ctl, int argc, char **argv);
int savctl_cmd_archive_pack(savctl *ctl, int argc, char **argv);
int savctl_cmd_archive_search(savctl *ctl, int argc, char **argv);

extern const char savctl_help_ping[];
extern const char savctl_help_status[];
extern const char savctl_help_ticket_open[];
extern const char savctl_help_ticket_show[];
extern const char savctl_help_config_get[];
extern const char savctl_help_redis_acl[];
extern const char savctl_help_keys_generate[];
extern const char savctl_help_whoami[];
extern const char savctl_help_check[];
extern const char savctl_help_archive_run[];
extern const char savctl_help_archive_pack[];
extern const char savctl_help_archive_search[];

#endif
