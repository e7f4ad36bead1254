/* Unit tests for common/archfile.c: appends read back in order, a gzip stream zlib reads whole, what lies beyond
 * the committed length (an append a crash cut, a cut index line) ignored by readers and cut off by the next
 * writer, an index lost with the data kept, a data file shorter than committed refused, the last append read
 * alone, and the directory's lock. */
#include "unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "archfile.h"

static char dir[64], data[96], idx[96];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/sav-test-archfile-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(data, sizeof(data), "%s/2026-11.jsonl.gz", dir);
    snprintf(idx, sizeof(idx), "%s/2026-11.idx", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(data), unlink(idx);
    char lock[96];
    snprintf(lock, sizeof(lock), "%s/.lock", dir);
    unlink(lock);
    rmdir(dir);
    return 0;
}

/* The lines a read passes, joined with '|'. */
typedef struct lines {
    char text[4096];
    int n;
} lines;

static int collect(void *ctx, const char *line, size_t len) {
    lines *l = ctx;
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof(l->text) - used, "%s%.*s", l->n++ ? "|" : "", (int)len, line);
    return 0;
}

static lines read_all(int want_rc, archfile_stats *st) {
    lines l = {{0}, 0};
    assert_int_equal(want_rc, archfile_read(data, idx, collect, &l, st));
    return l;
}

static long long append(const char *text) {
    long long discarded = -1;
    assert_int_equal(0, archfile_append(data, idx, text, strlen(text), &discarded));
    return discarded;
}

static off_t size_of(const char *path) {
    struct stat st;
    assert_int_equal(0, stat(path, &st));
    return st.st_size;
}

static void add_bytes(const char *path, const char *bytes, size_t len) {
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal((ssize_t)len, write(fd, bytes, len));
    close(fd);
}

static void test_appends_read_back_in_order(void **state) {
    (void)state;
    archfile_stats st;
    lines l = read_all(0, &st);
    assert_int_equal(0, l.n);
    assert_int_equal(0, append("{\"a\":1}\n{\"b\":2}\n"));
    assert_int_equal(0, append("{\"c\":3}\n"));
    l = read_all(0, &st);
    assert_string_equal("{\"a\":1}|{\"b\":2}|{\"c\":3}", l.text);
    assert_int_equal(2, st.members);
    assert_int_equal(3, st.lines);
    assert_int_equal(size_of(data), st.committed_bytes);
    assert_int_equal(0, st.ignored_bytes);
    struct stat sb;
    assert_int_equal(0, stat(data, &sb));
    assert_int_equal(0600, sb.st_mode & 0777);
    /* Concatenated members are one gzip stream: zcat (zlib's gzread) reads every line. */
    gzFile gz = gzopen(data, "rb");
    char buf[256] = {0};
    assert_int_equal(24, gzread(gz, buf, sizeof(buf) - 1));
    gzclose(gz);
    assert_string_equal("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n", buf);
}

static lines back(int n, int want_rc) {
    lines l = {{0}, 0};
    assert_int_equal(want_rc, archfile_read_back(data, idx, n, collect, &l));
    return l;
}

static void test_appends_read_back_one_by_one(void **state) {
    (void)state;
    assert_int_equal(0, back(0, 2).n);
    append("one\n");
    assert_string_equal("one", back(0, 0).text);
    assert_int_equal(0, back(1, 2).n);
    for (int i = 0; i < 30; i++) append("filler\n");
    append("two\nthree\n");
    assert_string_equal("two|three", back(0, 0).text);
    assert_string_equal("filler", back(1, 0).text);
    assert_string_equal("one", back(31, 0).text);
    assert_int_equal(0, back(32, 2).n);
    /* A cut append after it changes nothing: the committed ones are read. */
    add_bytes(data, "\x1f\x8b\x08\x00garbage", 11);
    add_bytes(idx, "99", 2);
    assert_string_equal("two|three", back(0, 0).text);
    unit_err_clear();
    assert_int_equal(-1, archfile_read_back(data, idx, 1001, collect, NULL));
    assert_err_contains("too far");
}

static void test_a_cut_append_is_ignored_then_cut_off(void **state) {
    (void)state;
    append("kept\n");
    off_t committed = size_of(data);
    /* A crash in the middle of an append: part of a member, and part of its index line. */
    add_bytes(data, "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03half", 14);
    add_bytes(idx, "12", 2);
    archfile_stats st;
    lines l = read_all(0, &st);
    assert_string_equal("kept", l.text);
    assert_int_equal(14, st.ignored_bytes);
    /* The next writer cuts both off, and its own append reads back. */
    assert_int_equal(14, append("next\n"));
    l = read_all(0, &st);
    assert_string_equal("kept|next", l.text);
    assert_int_equal(0, st.ignored_bytes);
    assert_true(size_of(data) > committed);
    /* A whole member written but never committed (the crash came before the index line) is cut off too. */
    long long discarded;
    int fd = open(data, O_WRONLY | O_APPEND);
    gzFile gz = gzdopen(dup(fd), "ab");
    gzputs(gz, "uncommitted\n");
    gzclose(gz);
    close(fd);
    assert_int_equal(0, archfile_append(data, idx, "last\n", 5, &discarded));
    assert_true(discarded > 0);
    l = read_all(0, &st);
    assert_string_equal("kept|next|last", l.text);
}

static void test_a_lost_index_keeps_the_data(void **state) {
    (void)state;
    append("a\n");
    append("b\n");
    unlink(idx);
    add_bytes(data, "\x1f\x8b\x08", 3);
    archfile_stats st;
    lines l = read_all(0, &st);
    assert_string_equal("a|b", l.text);
    assert_int_equal(3, st.ignored_bytes);
    assert_int_equal(3, append("c\n"));
    l = read_all(0, &st);
    assert_string_equal("a|b|c", l.text);
}

static void test_corruption_is_an_error(void **state) {
    (void)state;
    append("a\n");
    off_t size = size_of(data);
    /* Shorter than committed: someone truncated it. Neither read nor appended to. */
    assert_int_equal(0, truncate(data, size - 4));
    unit_err_clear();
    read_all(-1, NULL);
    assert_err_contains("shorter than its committed length");
    long long discarded;
    assert_int_equal(-1, archfile_append(data, idx, "b\n", 2, &discarded));
    assert_err_contains("not appending");
    /* Committed bytes that do not inflate. */
    unlink(data), unlink(idx);
    append("a\n");
    int fd = open(data, O_WRONLY);
    assert_int_equal(4, pwrite(fd, "XXXX", 4, 0));
    close(fd);
    unit_err_clear();
    read_all(-1, NULL);
    assert_err_contains("corrupt at byte");
    /* An index whose last line is no length. */
    unlink(data), unlink(idx);
    append("a\n");
    add_bytes(idx, "abc\n", 4);
    unit_err_clear();
    read_all(-1, NULL);
    assert_err_contains("not a length");
}

static int stop_at_second(void *ctx, const char *line, size_t len) {
    (void)line, (void)len;
    return ++*(int *)ctx == 2;
}

static void test_the_callback_stops_or_fails(void **state) {
    (void)state;
    append("a\nb\nc\n");
    int n = 0;
    assert_int_equal(1, archfile_read(data, idx, stop_at_second, &n, NULL));
    assert_int_equal(2, n);
}

static void test_lock(void **state) {
    (void)state;
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/deeper/archive", dir);
    int fd = archfile_lock(sub);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(0, stat(sub, &st));
    assert_int_equal(0700, st.st_mode & 0777);
    assert_int_equal(-2, archfile_lock(sub));
    archfile_unlock(fd);
    fd = archfile_lock(sub);
    assert_true(fd >= 0);
    archfile_unlock(fd);
    char path[160];
    snprintf(path, sizeof(path), "%s/.lock", sub), unlink(path);
    rmdir(sub);
    snprintf(path, sizeof(path), "%s/deeper", dir), rmdir(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_appends_read_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_read_back_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cut_append_is_ignored_then_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_lost_index_keeps_the_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_callback_stops_or_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
