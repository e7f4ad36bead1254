#include "auth.h"
#include "err.h"
#include "settings.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTH_MAX_SERVICES 8
#define AUTH_LINE_MAX 1024

#define R(role) (1u << (role))
/* Managers and admins may do what any of the three desk roles may. */
#define DESK (R(AUTH_FRONT_DESK) | R(AUTH_MANAGER) | R(AUTH_ADMIN))
#define TECH (R(AUTH_TECHNICIAN) | R(AUTH_MANAGER) | R(AUTH_ADMIN))
#define BILL (R(AUTH_BILLING) | R(AUTH_MANAGER) | R(AUTH_ADMIN))
#define STAFF (DESK | TECH | BILL)
#define ADMIN R(AUTH_ADMIN)
#define SERVICE R(AUTH_SERVICE)

static const struct auth_rule {
    const char *action;
    unsigned roles;
} auth_rules[] = {
    {"ping", STAFF | SERVICE},
    {"whoami", STAFF | SERVICE},
    {"ticket.show", STAFF},
    {"catalog.show", STAFF},
    {"customer.add", DESK},
    {"customer.update", DESK},
    {"customer.list", DESK},
    {"customer.show", DESK | BILL},
    /* The right to erasure cannot be undone: a manager's decision. */
    {"customer.erase", R(AUTH_MANAGER) | R(AUTH_ADMIN)},
    {"product.add", DESK},
    {"product.transfer", DESK},
    {"product.show", DESK | TECH},
    {"contract.add", DESK},
    {"ticket.open", DESK},
    {"ticket.cancel", DESK},
    {"ticket.pickup", DESK},
    {"ticket.list", DESK | TECH},
    {"complaint.open", DESK},
    {"complaint.show", DESK},
    {"complaint.resolve", DESK},
    {"maintenance.due", DESK | TECH},
    {"notification.list", DESK},
    {"notification.retry", DESK},
    {"diagnose", TECH},
    {"repair.start", TECH},
    {"repair.done", TECH},
    {"repair.exchange", TECH},
    {"repair.impossible", TECH},
    {"parts.stock", TECH},
    {"parts.receive", TECH},
    {"parts.adjust", TECH},
    {"quote.show", BILL},
    {"quote.accept", BILL},
    {"quote.refuse", BILL},
    {"invoice.show", BILL},
    {"invoice.list", BILL},
    {"invoice.credit", BILL},
    {"invoice.export", BILL},
    {"payment.record", BILL},
    {"claim.list", BILL},
    {"claim.decide", BILL},
    {"catalog.load", ADMIN},
    /* The data set's check after a restore, and archiving now rather than by the timer: a manager's acts. */
    {"check", R(AUTH_MANAGER) | R(AUTH_ADMIN)},
    {"archive.run", R(AUTH_MANAGER) | R(AUTH_ADMIN)},
    {"archive.pack", R(AUTH_MANAGER) | R(AUTH_ADMIN)},
    {"archive.search", DESK},
    /* Events travel between services only: a forged one would skip every check of the step that emits it. */
    {"ticket.received", SERVICE},
    {"prediagnosis.done", SERVICE},
    {"coverage.estimated", SERVICE},
    {"customer.notice", SERVICE},
    {"verdict.recorded", SERVICE},
    {"ticket.ready", SERVICE},
};
#define AUTH_NRULES (sizeof(auth_rules) / sizeof(auth_rules[0]))

static const char *const auth_role_names[AUTH_ROLE_COUNT] = {"front_desk", "technician", "billing",
                                                             "manager",    "admin",      "service"};

struct auth_table {
    char path[PATH_MAX];
    struct stat seen; /* the file as last read, parsed or not */
    int read_once;
    auth_identity services[AUTH_MAX_SERVICES];
    size_t nservices;
    auth_identity *ops;
    size_t nops;
};

int auth_role_parse(const char *name) {
    for (int i = 0; i < AUTH_SERVICE; i++)
        if (strcmp(name, auth_role_names[i]) == 0) return i;
    err_set("unknown role \"%s\": one of front_desk, technician, billing, manager, admin", name);
    return -1;
}

const char *auth_role_name(enum auth_role role) {
    return role < AUTH_ROLE_COUNT ? auth_role_names[role] : "unknown";
}

static const struct auth_rule *auth_rule_find(const char *action) {
    for (size_t i = 0; i < AUTH_NRULES; i++)
        if (strcmp(auth_rules[i].action, action) == 0) return &auth_rules[i];
    return NULL;
}

int auth_allows(enum auth_role role, const char *action) {
    const struct auth_rule *rule = auth_rule_find(action);
    return rule && role < AUTH_ROLE_COUNT && (rule->roles & R(role)) != 0;
}

int auth_known(const char *action) {
    return auth_rule_find(action) != NULL;
}

auth_table *auth_new(const char *clients_path) {
    auth_table *t = calloc(1, sizeof(*t));
    if (!t) {
        err_set("out of memory");
        return NULL;
    }
    if (strlen(clients_path) >= sizeof(t->path)) {
        err_set("authorised clients path is too long");
        free(t);
        return NULL;
    }
    strcpy(t->path, clients_path);
    return t;
}

static const auth_identity *auth_find_in(const auth_identity *ids, size_t n, const char *name, const char *key) {
    for (size_t i = 0; i < n; i++)
        if ((name && strcmp(ids[i].name, name) == 0) || (key && strcmp(ids[i].key, key) == 0)) return &ids[i];
    return NULL;
}

int auth_add_service(auth_table *t, const char *name, const char *key) {
    if (t->nservices == AUTH_MAX_SERVICES || strlen(name) > KEYS_NAME_MAX || keys_z85_check(key) != 0) {
        err_set("service %s: %s", name, t->nservices == AUTH_MAX_SERVICES ? "too many services" : "bad public key");
        return -1;
    }
    const auth_identity *dup = auth_find_in(t->services, t->nservices, name, key);
    if (!dup) dup = auth_find_in(t->ops, t->nops, name, key);
    if (dup) {
        err_set("service %s has the same %s as %s", name, strcmp(dup->name, name) == 0 ? "name" : "public key",
                dup->name);
        return -1;
    }
    auth_identity *id = &t->services[t->nservices++];
    snprintf(id->name, sizeof(id->name), "%s", name);
    memcpy(id->key, key, KEYS_Z85_LEN + 1);
    id->role = AUTH_SERVICE;
    return 0;
}

/* Parses one line "KEY ROLE NAME" into id, checking it against the services and the lines before it. */
static int auth_parse_line(const auth_table *t, const auth_identity *ops, size_t nops, char *line, auth_identity *id) {
    char *save = NULL, *field[4] = {0};
    int n = 0;
    for (char *f = strtok_r(line, " \t", &save); f && n < 4; f = strtok_r(NULL, " \t", &save)) field[n++] = f;
    if (n != 3) {
        err_set("expected \"PUBLIC-KEY ROLE NAME\", got %d field(s)", n);
        return -1;
    }
    int role = auth_role_parse(field[1]);
    if (keys_z85_check(field[0]) != 0 || role < 0 || keys_name_check(field[2]) != 0) return -1;
    if (settings_service_id(field[2]) >= 0) {
        err_set("%s is a service's name: services are admitted by their key file, not listed here", field[2]);
        return -1;
    }
    const auth_identity *dup = auth_find_in(t->services, t->nservices, field[2], field[0]);
    if (!dup) dup = auth_find_in(ops, nops, field[2], field[0]);
    if (dup) {
        err_set("%s: %s already belongs to %s", field[2], strcmp(dup->name, field[2]) == 0 ? "the name" : "the key",
                dup->name);
        return -1;
    }
    memcpy(id->key, field[0], KEYS_Z85_LEN + 1);
    id->role = (enum auth_role)role;
    snprintf(id->name, sizeof(id->name), "%s", field[2]);
    return 0;
}

/* Reads every operator of the open file f into a new array; 0 or -1 with err "path:line: reason". */
static int auth_parse(const auth_table *t, FILE *f, auth_identity **out, size_t *nout) {
    char line[AUTH_LINE_MAX + 2];
    auth_identity *ops = NULL;
    size_t n = 0, cap = 0;
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > AUTH_LINE_MAX && line[len - 1] != '\n') {
            err_set("%s:%d: line longer than %d bytes", t->path, lineno, AUTH_LINE_MAX);
            goto fail;
        }
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = '\0';
        char *p = line + strspn(line, " \t");
        if (!*p || *p == '#') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            auth_identity *grown = realloc(ops, cap * sizeof(*ops));
            if (!grown) {
                err_set("out of memory reading %s", t->path);
                goto fail;
            }
            ops = grown;
        }
        if (auth_parse_line(t, ops, n, p, &ops[n]) != 0) {
            char why[512];
            snprintf(why, sizeof(why), "%s", err_get());
            err_set("%s:%d: %s", t->path, lineno, why);
            goto fail;
        }
        n++;
    }
    if (ferror(f)) {
        err_set("cannot read %s", t->path);
        goto fail;
    }
    *out = ops;
    *nout = n;
    return 0;
fail:
    free(ops);
    return -1;
}

static int auth_same_file(const struct stat *a, const struct stat *b) {
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

int auth_reload(auth_table *t) {
    FILE *f = fopen(t->path, "r");
    struct stat st;
    if (!f) {
        err_set("cannot open the authorised clients file %s: %s", t->path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0) {
        err_set("cannot stat %s: %s", t->path, strerror(errno));
        fclose(f);
        return -1;
    }
    /* A version that failed is reported once, not at every check. */
    if (t->read_once && auth_same_file(&st, &t->seen)) {
        fclose(f);
        return 0;
    }
    t->seen = st;
    t->read_once = 1;
    auth_identity *ops;
    size_t n;
    int rc = auth_parse(t, f, &ops, &n);
    fclose(f);
    if (rc != 0) return -1;
    free(t->ops);
    t->ops = ops;
    t->nops = n;
    return 1;
}

size_t auth_operators(const auth_table *t) {
    return t->nops;
}

const auth_identity *auth_find_key(const auth_table *t, const char *key) {
    const auth_identity *id = auth_find_in(t->services, t->nservices, NULL, key);
    return id ? id : auth_find_in(t->ops, t->nops, NULL, key);
}

const auth_identity *auth_find_name(const auth_table *t, const char *name) {
    const auth_identity *id = auth_find_in(t->services, t->nservices, name, NULL);
    return id ? id : auth_find_in(t->ops, t->nops, name, NULL);
}

void auth_free(auth_table *t) {
    if (!t) return;
    free(t->ops);
    free(t);
}

/* Checks that the file at path, if there is one, parses and lists neither name nor key. */
static int auth_check_new(const char *path, const char *key, const char *name) {
    if (access(path, F_OK) != 0) return 0;
    auth_table *t = auth_new(path);
    if (!t) return -1;
    int rc = auth_reload(t) < 0 ? -1 : 0;
    const auth_identity *dup = rc == 0 ? auth_find_in(t->ops, t->nops, name, key) : NULL;
    if (dup) {
        err_set("%s already lists %s", path, strcmp(dup->name, name) == 0 ? name : "this public key");
        rc = -1;
    }
    auth_free(t);
    return rc;
}

int auth_append(const char *path, const char *key, enum auth_role role, const char *name) {
    if (keys_name_check(name) != 0 || keys_z85_check(key) != 0) return -1;
    if (role >= AUTH_SERVICE || settings_service_id(name) >= 0) {
        err_set("%s: services are admitted by their key file, not listed in %s", name, path);
        return -1;
    }
    if (auth_check_new(path, key, name) != 0) return -1;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        err_set("cannot open %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    char last = '\n', text[256];
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1) last = '\n';
    int len = snprintf(text, sizeof(text), "%s%s%s %s %s\n", last == '\n' ? "" : "\n",
                       st.st_size ? "" : "# SAV authorised clients, one operator per line: PUBLIC-KEY ROLE NAME\n"
                                         "# (savctl keys generate NAME --role ROLE adds one)\n",
                       key, auth_role_name(role), name);
    int ok = len > 0 && write(fd, text, (size_t)len) == len && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok) {
        err_set("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
