/* savctl: dispatches "savctl [global options] COMMAND [SUBCOMMAND] [options]". */
#include "savctl.h"
#include "generic.h"
#include "bus.h"
#include "clock.h"
#include "err.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SAV_VERSION
#define SAV_VERSION "0.0.0"
#endif

static const savctl_command savctl_commands[] = {
    {"ping", "check that every service answers", savctl_cmd_ping, savctl_help_ping},
    {"status", "the health of every service: outboxes, dead letters, Redis role and lag", savctl_cmd_status,
     savctl_help_status},
    {"ticket open", "open a service ticket", savctl_cmd_ticket_open, savctl_help_ticket_open},
    {"ticket show", "show a ticket, what each service recorded, and its timeline", savctl_cmd_ticket_show,
     savctl_help_ticket_show},
    {"config get", "print the effective value of a configuration key", savctl_cmd_config_get,
     savctl_help_config_get},
    {"redis acl", "print the Redis ACL rule of every service's user", savctl_cmd_redis_acl, savctl_help_redis_acl},
    {"keys generate", "make a CURVE key pair for a service or an operator", savctl_cmd_keys_generate,
     savctl_help_keys_generate},
    {"whoami", "show the identity and role every service authenticates", savctl_cmd_whoami, savctl_help_whoami},
    {"check", "verify the data set (after a restore): tickets, indexes, invoice numbers, archive",
     savctl_cmd_check, savctl_help_check},
    {"archive run", "archive the closed tickets that are due now", savctl_cmd_archive_run, savctl_help_archive_run},
    {"archive pack", "pack the settled closed tickets that are due now", savctl_cmd_archive_pack,
     savctl_help_archive_pack},
    {"archive search", "find archived tickets and show them", savctl_cmd_archive_search, savctl_help_archive_search},
};
#define SAVCTL_NCOMMANDS (sizeof(savctl_commands) / sizeof(savctl_commands[0]))

static void savctl_overview(FILE *out) {
    fprintf(out,
            "NAME\n    savctl - operate SAV, the after-sales service platform\n\n"
            "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] COMMAND [options]\n"
            "    savctl COMMAND --help\n\n"
            "GLOBAL OPTIONS\n"
            "    --config FILE    configuration file (default: $SAV_CONFIG, else deploy/local/sav.conf);\n"
            "                     SAV_<SECTION>_<KEY> environment variables override its keys\n"
            "    --identity NAME  the operator identity to act as (default: client.identity in the config):\n"
            "                     its key pair NAME.key / NAME.pub is read from security.keys_dir\n"
            "    --json           print one JSON document instead of text\n"
            "    --version        print the version\n"
            "    --help           print this page\n\n"
            "SECURITY\n"
            "    With security.curve = on (the default), every request is encrypted (CURVE) and\n"
            "    authenticated by the identity's key; each service admits only the keys of its authorised clients\n"
            "    file and lets each role run its own commands (front_desk, technician, billing, manager,\n"
            "    admin; docs/ARCHITECTURE.md has the table). The timeline records the identity as actor.\n\n"
            "COMMANDS\n");
    size_t ngeneric;
    const generic_command *generic = generic_commands(&ngeneric);
    for (size_t i = 0; i < SAVCTL_NCOMMANDS; i++)
        fprintf(out, "    %-18s %s\n", savctl_commands[i].name, savctl_commands[i].summary);
    for (size_t i = 0; i < ngeneric; i++) fprintf(out, "    %-18s %s\n", generic[i].words, generic[i].summary);
    fprintf(out, "\nEXIT STATUS\n"
                 "    0 ok, 1 usage error, 2 input rejected (reason on stderr), 3 not found,\n"
                 "    4 service unavailable (which one on stderr), 5 internal error,\n"
                 "    6 forbidden: the service does not admit the identity's key, or its role may not run\n"
                 "      the command\n");
}

int savctl_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "savctl %s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'savctl %s --help'.\n", command);
    va_end(ap);
    return SAVCTL_USAGE;
}

int savctl_print_help(const savctl_command *cmd) {
    fputs(cmd->help, stdout);
    return SAVCTL_OK;
}

int savctl_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    return 0;
}

void savctl_print_json(json_t *value) {
    char *text = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text) puts(text);
    free(text);
    json_decref(value);
}

static int savctl_exit_for(Sav__ErrorCode code) {
    switch (code) {
    case SAV__ERROR_CODE__ERR_USAGE: return SAVCTL_USAGE;
    case SAV__ERROR_CODE__ERR_REJECTED: return SAVCTL_REJECTED;
    case SAV__ERROR_CODE__ERR_NOT_FOUND: return SAVCTL_NOT_FOUND;
    case SAV__ERROR_CODE__ERR_UNAVAILABLE: return SAVCTL_UNAVAILABLE;
    case SAV__ERROR_CODE__ERR_FORBIDDEN: return SAVCTL_FORBIDDEN;
    default: return SAVCTL_INTERNAL;
    }
}

/* Prints an ErrorReply and returns its exit code. */
static int savctl_report_error(enum service_id service, const Sav__Envelope *reply) {
    Sav__ErrorReply *er = (Sav__ErrorReply *)envelope_body(reply, &sav__error_reply__descriptor);
    if (!er) {
        fprintf(stderr, "savctl: %s sent an unreadable error: %s\n", settings_service_name(service), err_get());
        return SAVCTL_INTERNAL;
    }
    fprintf(stderr, "savctl: %s: %s\n", settings_service_name(service), er->message);
    int rc = savctl_exit_for(er->code);
    sav__error_reply__free_unpacked(er, NULL);
    return rc;
}

int savctl_peer(savctl *ctl, enum service_id service, bus_peer *peer) {
    if (bus_peer_load(&ctl->cfg, service, &ctl->keys, ctl->server_keys[service], peer) == 0) return SAVCTL_OK;
    fprintf(stderr, "savctl: %s\n", err_get());
    return SAVCTL_USAGE;
}

int savctl_request(savctl *ctl, enum service_id service, Sav__MessageType type, const ProtobufCMessage *body,
                   const char *ticket_id, Sav__Envelope **reply) {
    char id[ENVELOPE_ID_LEN];
    envelope_buf frame;
    bus_peer peer;
    *reply = NULL;
    int rc = savctl_peer(ctl, service, &peer);
    if (rc != SAVCTL_OK) return rc;
    envelope_new_id(id);
    if (envelope_pack(type, id, ticket_id, "savctl", clock_now_ms(), body, &frame) != 0) {
        fprintf(stderr, "savctl: %s\n", err_get());
        return SAVCTL_INTERNAL;
    }
    enum bus_result r = bus_request(&ctl->cfg, &peer, &frame, id, ctl->cfg.request_timeout_ms,
                                    ctl->cfg.request_attempts, reply);
    envelope_buf_free(&frame);
    if (r == BUS_REFUSED) {
        fprintf(stderr, "savctl: %s refused identity %s: %s\n", settings_service_name(service), ctl->cfg.identity,
                err_get());
        return SAVCTL_FORBIDDEN;
    }
    if (r != BUS_REPLIED) {
        fprintf(stderr, "savctl: service %s unavailable: %s\n", settings_service_name(service), err_get());
        return SAVCTL_UNAVAILABLE;
    }
    if ((*reply)->type == SAV__MESSAGE_TYPE__ERROR_REPLY) {
        rc = savctl_report_error(service, *reply);
        envelope_free(*reply);
        *reply = NULL;
        return rc;
    }
    return SAVCTL_OK;
}

/* Returns the number of words of argv that name `name` ("ticket open" = 2), or 0 if they do not. */
static int savctl_words_match(const char *name, int argc, char **argv) {
    const char *space = strchr(name, ' ');
    if (!space) return strcmp(argv[0], name) == 0;
    if (argc < 2 || strncmp(argv[0], name, (size_t)(space - name)) != 0 || argv[0][space - name] != '\0') return 0;
    return strcmp(argv[1], space + 1) == 0 ? 2 : 0;
}

/* Finds the command named by the first one or two words of argv; sets *used to the words consumed. */
static const savctl_command *savctl_find(int argc, char **argv, int *used) {
    for (size_t i = 0; i < SAVCTL_NCOMMANDS; i++)
        if ((*used = savctl_words_match(savctl_commands[i].name, argc, argv)) > 0) return &savctl_commands[i];
    return NULL;
}

static const generic_command *savctl_find_generic(int argc, char **argv, int *used) {
    size_t n;
    const generic_command *table = generic_commands(&n);
    for (size_t i = 0; i < n; i++)
        if ((*used = savctl_words_match(table[i].words, argc, argv)) > 0) return &table[i];
    return NULL;
}

static int savctl_global_options(int argc, char **argv, const char **config, const char **identity, int *json) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"identity", required_argument, 0, 'i'},
                                         {"json", no_argument, 0, 'j'},
                                         {"version", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    /* '+' stops at the command name: its own options are parsed by the command. */
    while ((c = getopt_long(argc, argv, "+c:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': *config = optarg; break;
        case 'i': *identity = optarg; break;
        case 'j': *json = 1; break;
        case 'v': printf("savctl %s\n", SAV_VERSION); return SAVCTL_OK;
        case 'h': savctl_overview(stdout); return SAVCTL_OK;
        default: savctl_overview(stderr); return SAVCTL_USAGE;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    const char *config = NULL, *identity = NULL;
    savctl ctl = {0};
    int rc = savctl_global_options(argc, argv, &config, &identity, &ctl.json);
    if (rc >= 0) return rc;
    if (optind >= argc) {
        savctl_overview(stderr);
        return SAVCTL_USAGE;
    }
    int used = 0;
    const savctl_command *cmd = savctl_find(argc - optind, argv + optind, &used);
    const generic_command *gc = cmd ? NULL : savctl_find_generic(argc - optind, argv + optind, &used);
    if (!cmd && !gc) {
        fprintf(stderr, "savctl: unknown command \"%s\"; 'savctl --help' lists the commands\n", argv[optind]);
        return SAVCTL_USAGE;
    }
    int cmd_argc = argc - optind - used + 1;
    char **cmd_argv = argv + optind + used - 1;
    if (savctl_wants_help(cmd_argc, cmd_argv)) {
        if (gc) generic_help(gc, stdout);
        return cmd ? savctl_print_help(cmd) : SAVCTL_OK;
    }
    if (settings_load(&ctl.cfg, config) != 0 || clock_init() != 0) {
        fprintf(stderr, "savctl: %s\n", err_get());
        return SAVCTL_USAGE;
    }
    if (identity) {
        if (keys_name_check(identity) != 0) {
            fprintf(stderr, "savctl: --identity: %s\n", err_get());
            return SAVCTL_USAGE;
        }
        snprintf(ctl.cfg.identity, sizeof(ctl.cfg.identity), "%s", identity);
    }
    optind = 0; /* 0, not 1: glibc re-initialises getopt, dropping the "+" mode of the global parse */
    rc = cmd ? cmd->run(&ctl, cmd_argc, cmd_argv) : generic_run(&ctl, gc, cmd_argc, cmd_argv);
    keys_forget(&ctl.keys);
    bus_shutdown();
    return rc;
}
