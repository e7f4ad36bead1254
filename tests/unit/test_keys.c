/* Unit tests for common/keys.c: identity names, Z85 keys, key files (comments, refusals with file:line, the
 * secret's mode), generation (modes, never overwriting) and pairs that do not belong together. */
#include "unit.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"

/* The temporary directory of the running test; emptied and removed by the teardown. */
static char dir[64];

static int keys_setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sav-unit-keys-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    umask(022);
    return 0;
}

static void remove_tree(const char *path) {
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", path);
}

static int keys_teardown(void **state) {
    (void)state;
    remove_tree(dir);
    return 0;
}

/* Writes text to dir/name with mode; returns the path (static buffer). */
static const char *write_file(const char *name, const char *text, mode_t mode) {
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static mode_t mode_of(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) fail_msg("no file %s", path);
    return st.st_mode & 0777;
}

static void test_names(void **state) {
    (void)state;
    const char *good[] = {"admin", "tech-07", "a.b_c", "X", "0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (keys_name_check(good[i]) != 0) fail_msg("\"%s\" refused: %s", good[i], err_get());
    const char *bad[] = {"", ".hidden", "..", "a/b", "x y", "tab\tname", "é", "semi;colon",
                         "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unit_err_clear();
        if (keys_name_check(bad[i]) == 0) fail_msg("\"%s\" accepted", bad[i]);
        assert_err_contains("identity name");
    }
}

static void test_z85(void **state) {
    (void)state;
    char pub[41], sec[41];
    assert_int_equal(0, zmq_curve_keypair(pub, sec));
    assert_int_equal(0, keys_z85_check(pub));
    char shorter[41], bad[41];
    snprintf(shorter, sizeof(shorter), "%.39s", pub);
    assert_int_equal(-1, keys_z85_check(shorter));
    assert_err_contains("40 Z85 characters");
    memcpy(bad, pub, sizeof(bad));
    bad[7] = '~'; /* not in the Z85 alphabet */
    assert_int_equal(-1, keys_z85_check(bad));
    char longer[42];
    snprintf(longer, sizeof(longer), "%sA", pub);
    assert_int_equal(-1, keys_z85_check(longer));
}

static void test_generate_writes_a_pair_with_modes(void **state) {
    (void)state;
    char sub[128], path[PATH_MAX];
    snprintf(sub, sizeof(sub), "%s/keys", dir);
    keys_pair made, read;
    if (keys_generate(sub, "tech-07", &made) != 0) fail_msg("keys_generate: %s", err_get());
    assert_int_equal(0700, mode_of(sub));
    snprintf(path, sizeof(path), "%s/tech-07.key", sub);
    assert_int_equal(0600, mode_of(path));
    snprintf(path, sizeof(path), "%s/tech-07.pub", sub);
    assert_int_equal(0644, mode_of(path));
    if (keys_load_pair(sub, "tech-07", &read) != 0) fail_msg("keys_load_pair: %s", err_get());
    assert_string_equal(made.public_key, read.public_key);
    assert_string_equal(made.secret_key, read.secret_key);
    char derived[41];
    assert_int_equal(0, zmq_curve_public(derived, read.secret_key));
    assert_string_equal(read.public_key, derived);
    char pub[41];
    assert_int_equal(0, keys_read_public(path, pub));
    assert_string_equal(made.public_key, pub);
    keys_forget(&read);
    assert_int_equal(0, read.secret_key[0]);
}

static void test_generate_never_overwrites(void **state) {
    (void)state;
    keys_pair first, second, again;
    assert_int_equal(0, keys_generate(dir, "admin", &first));
    unit_err_clear();
    assert_int_equal(-1, keys_generate(dir, "admin", &second));
    assert_err_contains("already exists: a key is never overwritten");
    assert_int_equal(0, keys_load_pair(dir, "admin", &again));
    assert_string_equal(first.public_key, again.public_key);
    /* A lone .pub (a public key received from elsewhere) is never overwritten either. */
    char pub_path[PATH_MAX];
    snprintf(pub_path, sizeof(pub_path), "%s/intake.pub", dir);
    write_file("intake.pub", "# from the server\n", 0644);
    assert_int_equal(-1, keys_generate(dir, "intake", &second));
    assert_err_contains("intake.pub already exists");
    assert_int_equal(0, access(pub_path, F_OK));
    char key_path[PATH_MAX];
    snprintf(key_path, sizeof(key_path), "%s/intake.key", dir);
    assert_int_not_equal(0, access(key_path, F_OK));
    assert_int_equal(-1, keys_generate(dir, "../escape", &second));
    assert_err_contains("identity name");
    keys_remove(dir, "admin");
    snprintf(key_path, sizeof(key_path), "%s/admin.key", dir);
    assert_int_not_equal(0, access(key_path, F_OK));
}

static void test_public_file_format(void **state) {
    (void)state;
    char pub[41], sec[41], text[256], got[41];
    assert_int_equal(0, zmq_curve_keypair(pub, sec));
    snprintf(text, sizeof(text), "# a comment\n\n   %s  \r\n# another\n", pub);
    assert_int_equal(0, keys_read_public(write_file("ok.pub", text, 0644), got));
    assert_string_equal(pub, got);
    snprintf(text, sizeof(text), "# SAV\n%s\n%s\n", pub, pub);
    const char *path = write_file("two.pub", text, 0644);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s:3: a second key", path);
    assert_int_equal(-1, keys_read_public(path, got));
    assert_err_contains(want);
    path = write_file("bad.pub", "# SAV\nnot-a-key\n", 0644);
    snprintf(want, sizeof(want), "%s:2: not a CURVE key", path);
    assert_int_equal(-1, keys_read_public(path, got));
    assert_err_contains(want);
    path = write_file("empty.pub", "# nothing\n\n", 0644);
    assert_int_equal(-1, keys_read_public(path, got));
    assert_err_contains("holds no key");
    snprintf(want, sizeof(want), "%s/missing.pub", dir);
    assert_int_equal(-1, keys_read_public(want, got));
    assert_err_contains("cannot open");
}

static void test_secret_mode_and_mismatch(void **state) {
    (void)state;
    keys_pair made, other, read;
    assert_int_equal(0, keys_generate(dir, "op", &made));
    char path[PATH_MAX], text[256];
    snprintf(path, sizeof(path), "%s/op.key", dir);
    chmod(path, 0640);
    unit_err_clear();
    assert_int_equal(-1, keys_load_pair(dir, "op", &read));
    assert_err_contains("readable by others (mode 640): it must be 0600");
    chmod(path, 0600);
    assert_int_equal(0, keys_load_pair(dir, "op", &read));
    /* A .pub replaced by another identity's public key. */
    assert_int_equal(0, zmq_curve_keypair(other.public_key, other.secret_key));
    snprintf(path, sizeof(path), "%s/op.pub", dir);
    unlink(path);
    snprintf(text, sizeof(text), "%s\n", other.public_key);
    write_file("op.pub", text, 0644);
    assert_int_equal(-1, keys_load_pair(dir, "op", &read));
    assert_err_contains("the pair does not belong together");
    assert_int_equal(0, read.secret_key[0]);
}

#define KEYS_TEST(f) cmocka_unit_test_setup_teardown(f, keys_setup, keys_teardown)

int main(void) {
    const struct CMUnitTest tests[] = {
        KEYS_TEST(test_names),
        KEYS_TEST(test_z85),
        KEYS_TEST(test_generate_writes_a_pair_with_modes),
        KEYS_TEST(test_generate_never_overwrites),
        KEYS_TEST(test_public_file_format),
        KEYS_TEST(test_secret_mode_and_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
