/* Unit tests for common/auth.c: the role table (who may run what, services and operators kept apart), the
 * authorised clients file (parsing, refusals with file:line, reloads that keep the identities in force when an
 * edit does not parse) and appending an identity. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"

static char dir[64], clients[PATH_MAX];

static int auth_setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sav-unit-auth-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(clients, sizeof(clients), "%s/clients", dir);
    return 0;
}

static int auth_teardown(void **state) {
    (void)state;
    unlink(clients);
    rmdir(dir);
    return 0;
}

static void write_clients(const char *text) {
    FILE *f = fopen(clients, "w");
    if (!f) fail_msg("cannot write %s", clients);
    fputs(text, f);
    fclose(f);
}

static char *read_clients(void) {
    static char buf[8192];
    FILE *f = fopen(clients, "r");
    if (!f) return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* A fresh public key, Z85 (static buffers, rotating). */
static const char *new_key(void) {
    static char keys[8][41];
    static int next;
    char secret[41];
    char *k = keys[next++ % 8];
    if (zmq_curve_keypair(k, secret) != 0) fail_msg("zmq_curve_keypair failed");
    return k;
}

/* Every operator command and request: the table's view of the brief. */
static const char *const desk_actions[] = {"customer.add", "customer.update", "customer.show", "customer.list",
                                           "product.add", "product.show", "product.transfer", "contract.add",
                                           "ticket.open", "ticket.show", "ticket.list", "ticket.cancel",
                                           "ticket.pickup", "complaint.open", "complaint.show", "complaint.resolve",
                                           "maintenance.due", "notification.list", "notification.retry", NULL};
static const char *const tech_actions[] = {"diagnose", "repair.start", "repair.done", "repair.exchange",
                                           "repair.impossible", "parts.stock", "parts.receive", "parts.adjust",
                                           "ticket.show", "ticket.list", "product.show", "maintenance.due", NULL};
static const char *const bill_actions[] = {"quote.show", "quote.accept", "quote.refuse", "invoice.show",
                                           "invoice.list", "invoice.credit", "invoice.export", "payment.record",
                                           "claim.list", "claim.decide", "customer.show", "ticket.show", NULL};
static const char *const events[] = {"ticket.received", "prediagnosis.done", "coverage.estimated",
                                     "customer.notice", "verdict.recorded", "ticket.ready", NULL};
static const enum auth_role operators[] = {AUTH_FRONT_DESK, AUTH_TECHNICIAN, AUTH_BILLING, AUTH_MANAGER, AUTH_ADMIN};
#define NOPERATORS (sizeof(operators) / sizeof(operators[0]))

static int listed(const char *const *list, const char *action) {
    for (; *list; list++)
        if (strcmp(*list, action) == 0) return 1;
    return 0;
}

static void allowed(enum auth_role role, const char *action, int want) {
    if (auth_allows(role, action) != want)
        fail_msg("%s %s %s", auth_role_name(role), want ? "may not" : "may", action);
}

static void test_roles_parse(void **state) {
    (void)state;
    const char *names[] = {"front_desk", "technician", "billing", "manager", "admin"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(i, auth_role_parse(names[i]));
        assert_string_equal(names[i], auth_role_name((enum auth_role)i));
    }
    const char *bad[] = {"service", "Admin", "", "root"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        assert_int_equal(-1, auth_role_parse(bad[i]));
        assert_err_contains("one of front_desk, technician, billing, manager, admin");
    }
}

static void test_brief_cases(void **state) {
    (void)state;
    allowed(AUTH_FRONT_DESK, "diagnose", 0);
    allowed(AUTH_TECHNICIAN, "payment.record", 0);
    allowed(AUTH_BILLING, "catalog.load", 0);
    allowed(AUTH_MANAGER, "catalog.load", 0);
    allowed(AUTH_ADMIN, "catalog.load", 1);
    allowed(AUTH_FRONT_DESK, "ticket.open", 1);
    allowed(AUTH_TECHNICIAN, "diagnose", 1);
    allowed(AUTH_BILLING, "payment.record", 1);
    allowed(AUTH_TECHNICIAN, "customer.add", 0);
    allowed(AUTH_BILLING, "repair.done", 0);
    allowed(AUTH_FRONT_DESK, "quote.accept", 0);
    /* Backups and archiving (issue 9): the check and a run now are a manager's, a search the front desk's too. */
    for (enum auth_role r = AUTH_FRONT_DESK; r <= AUTH_ADMIN; r++) {
        int manager = r == AUTH_MANAGER || r == AUTH_ADMIN;
        allowed(r, "check", manager);
        allowed(r, "archive.run", manager);
        allowed(r, "archive.search", manager || r == AUTH_FRONT_DESK);
    }
    allowed(AUTH_SERVICE, "archive.run", 0);
}

static void test_each_role_exactly(void **state) {
    (void)state;
    const char *const *lists[] = {desk_actions, tech_actions, bill_actions};
    for (int l = 0; l < 3; l++)
        for (const char *const *a = lists[l]; *a; a++) {
            /* The desk roles: exactly their lists; manager and admin: the union. */
            allowed(AUTH_FRONT_DESK, *a, listed(desk_actions, *a));
            allowed(AUTH_TECHNICIAN, *a, listed(tech_actions, *a));
            allowed(AUTH_BILLING, *a, listed(bill_actions, *a));
            allowed(AUTH_MANAGER, *a, 1);
            allowed(AUTH_ADMIN, *a, 1);
            allowed(AUTH_SERVICE, *a, 0);
            assert_true(auth_known(*a));
        }
}

static void test_everyone_pings_and_shows(void **state) {
    (void)state;
    for (size_t i = 0; i < NOPERATORS; i++) {
        allowed(operators[i], "ping", 1);
        allowed(operators[i], "whoami", 1);
        allowed(operators[i], "ticket.show", 1);
        allowed(operators[i], "catalog.show", 1);
    }
    allowed(AUTH_SERVICE, "ping", 1);
}

static void test_events_are_for_services_only(void **state) {
    (void)state;
    for (const char *const *e = events; *e; e++) {
        allowed(AUTH_SERVICE, *e, 1);
        for (size_t i = 0; i < NOPERATORS; i++) allowed(operators[i], *e, 0);
    }
    allowed(AUTH_SERVICE, "catalog.load", 0);
    allowed(AUTH_SERVICE, "ticket.open", 0);
}

static void test_unknown_actions_refused_to_all(void **state) {
    (void)state;
    const char *unknown[] = {"frobnicate", "", "event.ack", "pong", "config.set"};
    for (size_t u = 0; u < sizeof(unknown) / sizeof(unknown[0]); u++) {
        assert_false(auth_known(unknown[u]));
        for (size_t i = 0; i < NOPERATORS; i++) allowed(operators[i], unknown[u], 0);
        allowed(AUTH_SERVICE, unknown[u], 0);
    }
    allowed(AUTH_ROLE_COUNT, "ping", 0);
}

static void test_clients_file_parsed(void **state) {
    (void)state;
    char text[1024], k1[41], k2[41], ks[41];
    snprintf(k1, sizeof(k1), "%s", new_key()), snprintf(k2, sizeof(k2), "%s", new_key());
    snprintf(ks, sizeof(ks), "%s", new_key());
    snprintf(text, sizeof(text), "# operators\n\n%s front_desk desk1\n   \t\n%s\ttechnician  tech-07  \r\n# end\n", k1, k2);
    write_clients(text);
    auth_table *t = auth_new(clients);
    assert_int_equal(0, auth_add_service(t, "intake", ks));
    assert_int_equal(1, auth_reload(t));
    assert_int_equal(2, auth_operators(t));
    const auth_identity *id = auth_find_key(t, k2);
    assert_non_null(id);
    assert_string_equal("tech-07", id->name);
    assert_int_equal(AUTH_TECHNICIAN, id->role);
    id = auth_find_name(t, "desk1");
    assert_non_null(id);
    assert_string_equal(k1, id->key);
    id = auth_find_key(t, ks);
    assert_non_null(id);
    assert_string_equal("intake", id->name);
    assert_int_equal(AUTH_SERVICE, id->role);
    assert_null(auth_find_name(t, "nobody"));
    assert_null(auth_find_key(t, new_key()));
    assert_int_equal(0, auth_reload(t)); /* unchanged */
    auth_free(t);
}

/* Fails unless text is refused with "<clients>:<line>: " followed by something containing reason. */
static void refused_at(const char *text, int line, const char *reason, const char *service_key) {
    write_clients(text);
    auth_table *t = auth_new(clients);
    if (service_key) assert_int_equal(0, auth_add_service(t, "intake", service_key));
    unit_err_clear();
    assert_int_equal(-1, auth_reload(t));
    char where[PATH_MAX + 16];
    snprintf(where, sizeof(where), "%s:%d: ", clients, line);
    assert_err_contains(where);
    assert_err_contains(reason);
    assert_int_equal(0, auth_operators(t));
    auth_free(t);
}

static void test_clients_file_refusals(void **state) {
    (void)state;
    char text[1024], k[41], ks[41];
    snprintf(k, sizeof(k), "%s", new_key()), snprintf(ks, sizeof(ks), "%s", new_key());
    snprintf(text, sizeof(text), "# x\n%s admin\n", k);
    refused_at(text, 2, "expected \"PUBLIC-KEY ROLE NAME\", got 2 field(s)", NULL);
    snprintf(text, sizeof(text), "%s admin root extra\n", k);
    refused_at(text, 1, "got 4 field(s)", NULL);
    refused_at("abc admin root\n", 1, "not a CURVE key", NULL);
    snprintf(text, sizeof(text), "\n\n%s superuser root\n", k);
    refused_at(text, 3, "unknown role \"superuser\"", NULL);
    snprintf(text, sizeof(text), "%s service root\n", k);
    refused_at(text, 1, "unknown role \"service\"", NULL);
    snprintf(text, sizeof(text), "%s admin ../root\n", k);
    refused_at(text, 1, "identity name", NULL);
    snprintf(text, sizeof(text), "%s admin billing\n", k);
    refused_at(text, 1, "billing is a service's name", NULL);
    snprintf(text, sizeof(text), "%s admin root\n%s technician root\n", k, new_key());
    refused_at(text, 2, "root: the name already belongs to root", NULL);
    snprintf(text, sizeof(text), "%s admin root\n%s technician tech\n", k, k);
    refused_at(text, 2, "tech: the key already belongs to root", NULL);
    snprintf(text, sizeof(text), "%s admin sneaky\n", ks);
    refused_at(text, 1, "the key already belongs to intake", ks);
    unlink(clients);
    auth_table *t = auth_new(clients);
    assert_int_equal(-1, auth_reload(t));
    assert_err_contains("cannot open the authorised clients file");
    auth_free(t);
}

static void test_reload_keeps_identities_on_a_bad_edit(void **state) {
    (void)state;
    char text[1024], k1[41], k2[41];
    snprintf(k1, sizeof(k1), "%s", new_key()), snprintf(k2, sizeof(k2), "%s", new_key());
    snprintf(text, sizeof(text), "%s admin root\n", k1);
    write_clients(text);
    auth_table *t = auth_new(clients);
    assert_int_equal(1, auth_reload(t));
    /* Added: read again (the file's size and times changed). */
    snprintf(text, sizeof(text), "%s admin root\n%s billing compta\n", k1, k2);
    write_clients(text);
    assert_int_equal(1, auth_reload(t));
    assert_int_equal(2, auth_operators(t));
    assert_non_null(auth_find_name(t, "compta"));
    /* A bad edit: refused once, the two identities stay in force. */
    snprintf(text, sizeof(text), "%s admin root\n%s billing compta\n%s nope x\n", k1, k2, new_key());
    write_clients(text);
    unit_err_clear();
    assert_int_equal(-1, auth_reload(t));
    assert_err_contains(":3: unknown role \"nope\"");
    assert_int_equal(0, auth_reload(t));
    assert_int_equal(2, auth_operators(t));
    assert_non_null(auth_find_key(t, k2));
    /* Fixed by removing compta: revoked. */
    snprintf(text, sizeof(text), "%s admin root\n", k1);
    write_clients(text);
    assert_int_equal(1, auth_reload(t));
    assert_int_equal(1, auth_operators(t));
    assert_null(auth_find_name(t, "compta"));
    assert_null(auth_find_key(t, k2));
    auth_free(t);
}

static void test_append(void **state) {
    (void)state;
    char k1[41], k2[41], want[512];
    snprintf(k1, sizeof(k1), "%s", new_key()), snprintf(k2, sizeof(k2), "%s", new_key());
    unlink(clients);
    assert_int_equal(0, auth_append(clients, k1, AUTH_TECHNICIAN, "tech-07"));
    char *text = read_clients();
    assert_non_null(text);
    assert_int_equal('#', text[0]);
    snprintf(want, sizeof(want), "\n%s technician tech-07\n", k1);
    if (!strstr(text, want)) fail_msg("clients file %s lacks the line", text);
    /* Duplicates refused, file unchanged. */
    char before[8192];
    snprintf(before, sizeof(before), "%s", text);
    assert_int_equal(-1, auth_append(clients, k2, AUTH_ADMIN, "tech-07"));
    assert_err_contains("already lists tech-07");
    assert_int_equal(-1, auth_append(clients, k1, AUTH_ADMIN, "other"));
    assert_err_contains("already lists this public key");
    assert_int_equal(-1, auth_append(clients, k2, AUTH_SERVICE, "other"));
    assert_int_equal(-1, auth_append(clients, k2, AUTH_ADMIN, "notification"));
    assert_err_contains("services are admitted by their key file");
    assert_int_equal(-1, auth_append(clients, "short", AUTH_ADMIN, "other"));
    assert_string_equal(before, read_clients());
    /* A last line without its newline is completed, not joined. */
    FILE *f = fopen(clients, "a");
    fprintf(f, "# no newline");
    fclose(f);
    assert_int_equal(0, auth_append(clients, k2, AUTH_MANAGER, "chef"));
    auth_table *t = auth_new(clients);
    assert_int_equal(1, auth_reload(t));
    assert_int_equal(2, auth_operators(t));
    assert_int_equal(AUTH_MANAGER, auth_find_name(t, "chef")->role);
    auth_free(t);
    /* A file that does not parse is not appended to. */
    write_clients("garbage\n");
    assert_int_equal(-1, auth_append(clients, new_key(), AUTH_ADMIN, "x"));
    assert_err_contains(":1: expected");
    assert_string_equal("garbage\n", read_clients());
}

#define AUTH_TEST(f) cmocka_unit_test_setup_teardown(f, auth_setup, auth_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        AUTH_TEST(test_roles_parse),
        AUTH_TEST(test_brief_cases),
        AUTH_TEST(test_each_role_exactly),
        AUTH_TEST(test_everyone_pings_and_shows),
        AUTH_TEST(test_events_are_for_services_only),
        AUTH_TEST(test_unknown_actions_refused_to_all),
        AUTH_TEST(test_clients_file_parsed),
        AUTH_TEST(test_clients_file_refusals),
        AUTH_TEST(test_reload_keeps_identities_on_a_bad_edit),
        AUTH_TEST(test_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
