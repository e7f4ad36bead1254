/* savctl keys generate, savctl whoami: the identities CURVE authenticates. */
#include "savctl.h"
#include "auth.h"
#include "clock.h"
#include "err.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char savctl_help_keys_generate[] =
    "NAME\n    savctl keys generate - make a CURVE key pair for a service or an operator\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--json] keys generate NAME [--role ROLE] [--dir DIR]\n\n"
    "DESCRIPTION\n"
    "    Makes a CURVE key pair (zmq_curve_keypair) and writes it as Z85 text: DIR/NAME.key, the\n"
    "    secret key, readable by its owner only (mode 0600), and DIR/NAME.pub, the public key.\n"
    "    Existing files are never overwritten. The secret key is never printed.\n\n"
    "    A service's pair is named after it (intake, diagnostics, billing, notification): services\n"
    "    admit each other by the .pub files of the keys directory. An operator identity gets a\n"
    "    role: with --role, the line \"PUBLIC-KEY ROLE NAME\" is appended to the authorised clients\n"
    "    file (security.clients), which the services read again within a second, without a\n"
    "    restart. To revoke an identity, delete its line.\n\n"
    "    Roles: front_desk (customers, products, contracts, tickets, complaints, notifications),\n"
    "    technician (diagnose, repair, parts), billing (quotes, invoices, payments, claims),\n"
    "    manager (all of those), admin (all, and catalog load). Every role may ping, whoami and\n"
    "    show tickets and the catalog.\n\n"
    "OPTIONS\n"
    "    NAME         the identity: 1 to 64 letters, digits, '.', '_' or '-'\n"
    "    --role ROLE  front_desk, technician, billing, manager or admin: authorise the identity\n"
    "    --dir DIR    where to write the files (default: security.keys_dir)\n\n"
    "OUTPUT\n"
    "    The identity, its role, its public key and the files. --json: {\"identity\", \"role\",\n"
    "    \"public_key\", \"secret_key_file\", \"public_key_file\", \"clients_file\"}\n\n"
    "EXIT STATUS\n    0 written, 1 usage (bad name or role), 2 refused (a file exists, the clients file does not\n"
    "    parse or already lists the name or the key); nothing is written unless the exit is 0.\n";

const char savctl_help_whoami[] =
    "NAME\n    savctl whoami - show the identity and role every service authenticates\n\n"
    "SYNOPSIS\n    savctl [--config FILE] [--identity NAME] [--json] whoami\n\n"
    "DESCRIPTION\n"
    "    Asks each service who it takes this client for: the identity its ZAP handler admitted\n"
    "    (from the key pair of --identity or client.identity), the role it holds there, and the\n"
    "    commands that role may run on that service. With security.curve off, nobody is\n"
    "    authenticated and the services answer anonymous.\n\n"
    "OUTPUT\n"
    "    One line per service: status (confirmed, refused, down), identity, role, commands.\n"
    "    --json: {\"identity\", \"services\": [{\"name\", \"status\", \"identity\", \"role\",\n"
    "    \"authenticated\", \"commands\"}]}\n\n"
    "EXIT STATUS\n    0 every service confirmed, 6 one refused the identity, 4 one is down, 1 the identity's keys\n"
    "    cannot be read.\n";

int savctl_cmd_keys_generate(savctl *ctl, int argc, char **argv) {
    static const struct option opts[] = {{"role", required_argument, 0, 'r'}, {"dir", required_argument, 0, 'd'},
                                         {0, 0, 0, 0}};
    const char *role_name = NULL, *dir_opt = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r') role_name = optarg;
        else if (c == 'd') dir_opt = optarg;
        else return savctl_usage_error("keys generate", "bad option");
    }
    if (optind + 1 != argc) return savctl_usage_error("keys generate", "expects exactly one NAME");
    const char *name = argv[optind];
    int role = role_name ? auth_role_parse(role_name) : -1;
    if (keys_name_check(name) != 0 || (role_name && role < 0)) return savctl_usage_error("keys generate", "%s", err_get());
    if (role_name && settings_service_id(name) >= 0)
        return savctl_usage_error("keys generate", "%s is a service: services take no --role", name);
    char dir[PATH_MAX], clients[PATH_MAX], pub_path[PATH_MAX], key_path[PATH_MAX];
    if (dir_opt)
        snprintf(dir, sizeof(dir), "%s", dir_opt);
    else
        settings_resolve_path(&ctl->cfg, ctl->cfg.keys_dir, dir, sizeof(dir));
    settings_resolve_path(&ctl->cfg, ctl->cfg.clients_file, clients, sizeof(clients));
    keys_pair pair;
    if (keys_path(dir, name, "pub", pub_path, sizeof(pub_path)) != 0 ||
        keys_path(dir, name, "key", key_path, sizeof(key_path)) != 0 || keys_generate(dir, name, &pair) != 0) {
        fprintf(stderr, "savctl: keys generate: %s\n", err_get());
        return SAVCTL_REJECTED;
    }
    if (role_name && auth_append(clients, pair.public_key, (enum auth_role)role, name) != 0) {
        fprintf(stderr, "savctl: keys generate: %s\n", err_get());
        keys_remove(dir, name);
        keys_forget(&pair);
        return SAVCTL_REJECTED;
    }
    if (ctl->json) {
        savctl_print_json(json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s?}", "identity", name, "role", role_name, "public_key",
                                    pair.public_key, "secret_key_file", key_path, "public_key_file", pub_path,
                                    "clients_file", role_name ? clients : NULL));
    } else {
        printf("identity               %s\n", name);
        if (role_name)
            printf("role                   %s (added to %s)\n", role_name, clients);
        else if (settings_service_id(name) < 0)
            printf("role                   none yet: add \"%s ROLE %s\" to the authorised clients\n",
                   pair.public_key, name);
        printf("public_key             %s\n", pair.public_key);
        printf("secret_key_file        %s (mode 0600: for %s only)\n", key_path, name);
        printf("public_key_file        %s\n", pub_path);
    }
    keys_forget(&pair);
    return SAVCTL_OK;
}

/* Asks one service who we are; fills row and returns the exit code its answer means. */
static int whoami_one(savctl *ctl, enum service_id id, json_t *row) {
    bus_peer peer;
    int rc = savctl_peer(ctl, id, &peer);
    if (rc != SAVCTL_OK) return rc;
    Sav__Command cmd = SAV__COMMAND__INIT;
    cmd.name = "whoami";
    char msg_id[ENVELOPE_ID_LEN];
    envelope_new_id(msg_id);
    envelope_buf frame;
    if (envelope_pack(SAV__MESSAGE_TYPE__COMMAND, msg_id, NULL, "savctl", clock_now_ms(), &cmd.base, &frame) != 0)
        return SAVCTL_INTERNAL;
    Sav__Envelope *reply;
    enum bus_result r = bus_request(&ctl->cfg, &peer, &frame, msg_id, ctl->cfg.request_timeout_ms,
                                    ctl->cfg.request_attempts, &reply);
    envelope_buf_free(&frame);
    Sav__CommandResult *res = reply && reply->type == SAV__MESSAGE_TYPE__COMMAND_RESULT
                                  ? (Sav__CommandResult *)envelope_body(reply, &sav__command_result__descriptor)
                                  : NULL;
    json_t *doc = res ? json_loads(res->json, 0, NULL) : NULL;
    if (doc) {
        json_object_update(row, doc);
        json_decref(doc);
    }
    const char *status = doc ? "confirmed" : r == BUS_REFUSED ? "refused" : r == BUS_REPLIED ? "error" : "down";
    json_object_set_new(row, "status", json_string(status));
    if (!doc) json_object_set_new(row, "reason", json_string(r == BUS_REPLIED ? "unexpected reply" : err_get()));
    if (res) sav__command_result__free_unpacked(res, NULL);
    envelope_free(reply);
    return doc ? SAVCTL_OK : r == BUS_REFUSED ? SAVCTL_FORBIDDEN : r == BUS_REPLIED ? SAVCTL_INTERNAL
                                                                                      : SAVCTL_UNAVAILABLE;
}

static void whoami_print_row(const json_t *row) {
    const char *status = json_string_value(json_object_get(row, "status"));
    printf("%-13s %-10s ", json_string_value(json_object_get(row, "name")), status);
    if (strcmp(status, "confirmed") != 0) {
        printf("%s\n", json_string_value(json_object_get(row, "reason")));
        return;
    }
    const json_t *role = json_object_get(row, "role");
    printf("%-16s %-11s", json_string_value(json_object_get(row, "identity")),
           json_is_string(role) ? json_string_value(role) : "-");
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(row, "commands"), i, c) printf(" %s", json_string_value(c));
    printf("%s\n", json_array_size(json_object_get(row, "commands")) ? "" : " (no command here)");
}

int savctl_cmd_whoami(savctl *ctl, int argc, char **argv) {
    (void)argv;
    if (argc > 1) return savctl_usage_error("whoami", "takes no arguments");
    json_t *rows = json_array();
    int worst = SAVCTL_OK;
    for (int id = 0; id < SVC_COUNT; id++) {
        json_t *row = json_pack("{s:s}", "name", settings_service_name(id));
        int rc = whoami_one(ctl, id, row);
        if (rc == SAVCTL_USAGE) {
            json_decref(row);
            json_decref(rows);
            return rc;
        }
        if (worst == SAVCTL_OK || rc == SAVCTL_UNAVAILABLE) worst = rc;
        if (!ctl->json) whoami_print_row(row);
        json_array_append_new(rows, row);
    }
    const char *identity = strcmp(ctl->cfg.curve, "on") == 0 ? ctl->cfg.identity : "anonymous";
    if (ctl->json)
        savctl_print_json(json_pack("{s:s,s:o}", "identity", identity, "services", rows));
    else
        json_decref(rows);
    return worst;
}
