/* auth: who may talk to a service, and what each may do.
 *
 * Identities: the four services, admitted by their public key files, and the
 * operators listed in the authorised clients file, one per line:
 *     PUBLIC-KEY ROLE NAME
 * (a Z85 key, a role, an identity name; '#' starts a comment line). Names and
 * keys are unique, and no operator is named like a service. The file is read
 * again when it changes, so an operator is added or removed without a
 * restart; a file that does not parse leaves the identities in force alone.
 *
 * Roles: a table of actions (command names, "ticket.open", "ping", event
 * types) and the roles allowed each. Services send events (and ping), never
 * commands; operators never send events. An action missing from the table
 * is refused to everyone: a new command must be given its roles here. */
#ifndef SAV_AUTH_H
#define SAV_AUTH_H

#include <stddef.h>

#include "keys.h"

enum auth_role {
    AUTH_FRONT_DESK = 0,
    AUTH_TECHNICIAN,
    AUTH_BILLING,
    AUTH_MANAGER,
    AUTH_ADMIN,
    AUTH_SERVICE, /* a service's own key: not a role of the clients file */
    AUTH_ROLE_COUNT
};

typedef struct auth_identity {
    char name[KEYS_NAME_MAX + 1];
    char key[KEYS_Z85_LEN + 1];
    enum auth_role role;
} auth_identity;

typedef struct auth_table auth_table;

/* Returns the role named (front_desk, technician, billing, manager, admin), or -1 with err. */
int auth_role_parse(const char *name);

/* Returns a role's name ("service" for AUTH_SERVICE). */
const char *auth_role_name(enum auth_role role);

/* Returns 1 if the role may perform the action, 0 if not. */
int auth_allows(enum auth_role role, const char *action);

/* Returns 1 if the role table knows the action (some role may perform it), 0 if not. */
int auth_known(const char *action);

/* Creates a table with no identity that will read its operators from clients_path; NULL with err. Free with
 * auth_free. */
auth_table *auth_new(const char *clients_path);

/* Admits a service under its name with its Z85 public key; 0 or -1 with err (bad or duplicate key). */
int auth_add_service(auth_table *t, const char *name, const char *key);

/* Reads the clients file if it changed since the last read (always the first time): 1 read, 0 unchanged,
 * -1 with err "file:line: reason", the identities in force left as they were. */
int auth_reload(auth_table *t);

/* Returns the number of operators in force. */
size_t auth_operators(const auth_table *t);

/* Returns the identity holding the Z85 public key, or NULL; owned by the table, valid until the next reload. */
const auth_identity *auth_find_key(const auth_table *t, const char *key);

/* Returns the identity named, or NULL; owned by the table, valid until the next reload. */
const auth_identity *auth_find_name(const auth_table *t, const char *name);

/* Frees a table (NULL is fine). */
void auth_free(auth_table *t);

/* Appends "key role name" to the clients file at path (created with a header if missing), after checking that
 * the file parses and lists neither the name nor the key; 0 or -1 with err, the file unchanged. */
int auth_append(const char *path, const char *key, enum auth_role role, const char *name);

#endif
