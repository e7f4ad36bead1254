#include "archfile.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define ARCHFILE_CHUNK 65536
#define ARCHFILE_BACK_MAX 1000
/* A member is one append (a batch of records): far below this unless the file is not ours. */
#define ARCHFILE_MEMBER_MAX (512u << 20)
/* An index line: a length of at most 19 digits and its newline. */
#define ARCHFILE_INDEX_LINE 20

/* Creates dir and its missing parents, mode 0700. */
static int archfile_mkdirs(const char *dir) {
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        err_set("archive directory %s: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            err_set("cannot create %s: %s", path, strerror(errno));
            return -1;
        }
        *p = c;
        if (!c) return 0;
    }
}

int archfile_lock(const char *dir) {
    char path[PATH_MAX];
    if (archfile_mkdirs(dir) != 0) return -1;
    if (snprintf(path, sizeof(path), "%s/.lock", dir) >= (int)sizeof(path)) {
        err_set("archive directory %s: path too long", dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        if (!busy) err_set("cannot lock %s: %s", path, strerror(errno));
        close(fd);
        return busy ? -2 : -1;
    }
    return fd;
}

void archfile_unlock(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

/* The committed lengths at the end of an open index, newest first: v[0] the last (-1 when there is none), v[1] the
 * one before... up to want of them, the start of the file counting as a length 0; *got says how many there are,
 * *valid the length of the index's complete lines (a line cut by a crash lies beyond). 0 or -1 with err. */
static int archfile_index_lengths(int fd, const char *path, long long *v, int want, int *got, off_t *valid) {
    struct stat st;
    *got = 0, *valid = 0, v[0] = -1;
    if (fstat(fd, &st) != 0) {
        err_set("%s: %s", path, strerror(errno));
        return -1;
    }
    /* Each line is at most 19 digits and a newline, and a cut line may follow the last. */
    off_t window = (off_t)(want + 2) * ARCHFILE_INDEX_LINE;
    off_t from = st.st_size > window ? st.st_size - window : 0;
    char *tail = malloc((size_t)(st.st_size - from) + 1);
    ssize_t n = tail ? pread(fd, tail, (size_t)(st.st_size - from), from) : -1;
    if (n < 0 || n != st.st_size - from) {
        err_set("cannot read %s: %s", path, !tail ? "out of memory" : n < 0 ? strerror(errno) : "short read");
        free(tail);
        return -1;
    }
    tail[n] = '\0';
    char *last = strrchr(tail, '\n');
    if (last) *valid = from + (last - tail) + 1;
    int rc = 0;
    while (last && *got < want) {
        *last = '\0';
        char *nl = strrchr(tail, '\n'), *start = nl ? nl + 1 : tail, *end;
        if (!nl && from > 0) break; /* the window's first line may be cut */
        errno = 0;
        long long x = strtoll(start, &end, 10);
        if (errno || end == start || *end || x < 0) {
            err_set("%s: a line that is not a length", path);
            rc = -1;
            break;
        }
        v[(*got)++] = x;
        if (!nl && *got < want) v[(*got)++] = 0;
        last = nl;
    }
    free(tail);
    return rc;
}

/* Reads the committed length of idx_path: -1 in *committed when there is no index (or no line yet). */
static int archfile_committed(const char *idx_path, long long *committed) {
    long long v[1];
    int got;
    off_t valid;
    *committed = -1;
    int fd = open(idx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        err_set("cannot open %s: %s", idx_path, strerror(errno));
        return -1;
    }
    int rc = archfile_index_lengths(fd, idx_path, v, 1, &got, &valid);
    close(fd);
    if (rc == 0 && got > 0) *committed = v[0];
    return rc;
}

/* Splits a member's text into lines for fn; 0, 1 (stopped) or -1. */
static int archfile_lines(const char *text, size_t len, archfile_line_fn fn, void *ctx, archfile_stats *st) {
    size_t start = 0;
    while (start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        st->lines++;
        int rc = fn(ctx, text + start, end - start);
        if (rc != 0) return rc;
        start = end + 1;
    }
    return 0;
}

/* The state of one read. */
typedef struct archfile_reader {
    z_stream z;
    unsigned char in[ARCHFILE_CHUNK];
    char *text;         /* the member being inflated */
    size_t len, cap;
    long long consumed; /* compressed bytes fed to zlib and used */
} archfile_reader;

/* Inflates the input in hand; at each member's end, hands its lines to fn. Returns 0 to go on, 1 (fn stopped),
 * -1 with err (fn failed, out of memory), -2 with err (corrupt data); *in_member says whether a member is open. */
static int archfile_inflate(archfile_reader *r, archfile_line_fn fn, void *ctx, archfile_stats *st, int *in_member,
                            const char *path) {
    while (r->z.avail_in > 0) {
        if (r->cap - r->len < ARCHFILE_CHUNK) {
            size_t cap = r->cap ? r->cap * 2 : 4 * ARCHFILE_CHUNK;
            char *bigger = cap <= ARCHFILE_MEMBER_MAX ? realloc(r->text, cap) : NULL;
            if (!bigger) {
                err_set("%s: a member larger than %u bytes, or out of memory", path, ARCHFILE_MEMBER_MAX);
                return -1;
            }
            r->text = bigger, r->cap = cap;
        }
        r->z.next_out = (unsigned char *)r->text + r->len;
        r->z.avail_out = (uInt)(r->cap - r->len);
        uInt before = r->z.avail_in;
        *in_member = 1;
        int zrc = inflate(&r->z, Z_NO_FLUSH);
        r->consumed += before - r->z.avail_in;
        r->len = r->cap - r->z.avail_out;
        if (zrc == Z_STREAM_END) {
            st->members++;
            st->committed_bytes = r->consumed;
            *in_member = 0;
            int rc = archfile_lines(r->text, r->len, fn, ctx, st);
            r->len = 0;
            if (rc != 0) return rc;
            inflateReset(&r->z);
        } else if ((zrc != Z_OK && zrc != Z_BUF_ERROR) || (zrc == Z_BUF_ERROR && before == r->z.avail_in)) {
            err_set("%s: corrupt at byte %lld (%s)", path, r->consumed, r->z.msg ? r->z.msg : "inflate failed");
            return -2;
        }
    }
    return 0;
}

/* Reads the members of data_path from byte from up to limit (-1: its end), passing their lines to fn. strict: the
 * range is committed and must hold whole members only; else a cut last member is ignored. 0, 1 or -1 with err. */
static int archfile_read_range(const char *data_path, long long from, long long limit, int strict,
                               archfile_line_fn fn, void *ctx, archfile_stats *st) {
    memset(st, 0, sizeof(*st));
    int fd = open(data_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && limit <= 0) return 0;
        err_set("cannot open %s: %s", data_path, strerror(errno));
        return -1;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || sb.st_size < limit) {
        err_set("%s: %s", data_path, sb.st_size < limit ? "shorter than its committed length: truncated by someone"
                                                         : strerror(errno));
        close(fd);
        return -1;
    }
    if (limit < 0) limit = (long long)sb.st_size;
    archfile_reader *r = calloc(1, sizeof(*r));
    if (!r || inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK) {
        err_set("out of memory reading %s", data_path);
        free(r);
        close(fd);
        return -1;
    }
    int rc = 0, in_member = 0;
    long long offset = from;
    r->consumed = from;
    st->committed_bytes = from;
    while (rc == 0 && offset < limit) {
        size_t want = limit - offset < ARCHFILE_CHUNK ? (size_t)(limit - offset) : ARCHFILE_CHUNK;
        ssize_t n = pread(fd, r->in, want, offset);
        if (n <= 0) {
            err_set("cannot read %s: %s", data_path, n < 0 ? strerror(errno) : "unexpected end");
            rc = -1;
            break;
        }
        offset += n;
        r->z.next_in = r->in, r->z.avail_in = (uInt)n;
        rc = archfile_inflate(r, fn, ctx, st, &in_member, data_path);
    }
    if (!strict && (rc == -2 || (rc == 0 && in_member))) {
        /* No index: a last member cut by a crash is not an error, only ignored. */
        rc = 0;
    } else if (rc == 0 && in_member) {
        err_set("%s: its committed part ends inside a member (at byte %lld)", data_path, limit);
        rc = -1;
    }
    if (rc == -2) rc = -1;
    st->ignored_bytes = rc == 0 ? (long long)sb.st_size - st->committed_bytes : 0;
    inflateEnd(&r->z);
    free(r->text);
    free(r);
    close(fd);
    return rc;
}

int archfile_read(const char *data_path, const char *idx_path, archfile_line_fn fn, void *ctx, archfile_stats *st) {
    archfile_stats none;
    long long committed;
    if (archfile_committed(idx_path, &committed) != 0) return -1;
    return archfile_read_range(data_path, 0, committed, committed >= 0, fn, ctx, st ? st : &none);
}

int archfile_read_back(const char *data_path, const char *idx_path, int n, archfile_line_fn fn, void *ctx) {
    archfile_stats st;
    long long v[ARCHFILE_BACK_MAX + 2];
    int got;
    off_t valid;
    if (n < 0 || n > ARCHFILE_BACK_MAX) {
        err_set("archfile_read_back: %d appends back is too far", n);
        return -1;
    }
    int fd = open(idx_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 2;
        err_set("cannot open %s: %s", idx_path, strerror(errno));
        return -1;
    }
    int rc = archfile_index_lengths(fd, idx_path, v, n + 2, &got, &valid);
    close(fd);
    if (rc != 0) return -1;
    if (got < n + 2) return 2;
    return archfile_read_range(data_path, v[n + 1], v[n], 1, fn, ctx, &st);
}

/* Compresses buf into one gzip member; *out (caller frees). 0 or -1 with err. */
static int archfile_deflate(const char *buf, size_t len, unsigned char **out, size_t *outlen) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        err_set("deflateInit2 failed");
        return -1;
    }
    size_t cap = deflateBound(&z, (uLong)len);
    *out = malloc(cap);
    if (!*out || len > UINT_MAX) {
        deflateEnd(&z);
        free(*out);
        err_set("out of memory compressing %zu bytes", len);
        return -1;
    }
    z.next_in = (unsigned char *)buf, z.avail_in = (uInt)len;
    z.next_out = *out, z.avail_out = (uInt)cap;
    int zrc = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        free(*out);
        err_set("deflate failed (%d)", zrc);
        return -1;
    }
    return 0;
}

static int archfile_write_all(int fd, const void *data, size_t len, const char *path) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err_set("cannot write %s: %s", path, strerror(errno));
            return -1;
        }
        p += n, len -= (size_t)n;
    }
    return 0;
}

static int archfile_sync(int fd, const char *path) {
    if (fsync(fd) == 0) return 0;
    err_set("cannot fsync %s: %s", path, strerror(errno));
    return -1;
}

/* Fsyncs the directory holding path, so that a file created there survives a crash. */
static int archfile_sync_dir(const char *path) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        err_set("cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = archfile_sync(fd, dir);
    close(fd);
    return rc;
}

static int archfile_count(void *ctx, const char *line, size_t len) {
    (void)ctx, (void)line, (void)len;
    return 0;
}

/* Opens path for appending (creating it, mode 0600); *created says whether it did. */
static int archfile_open_append(const char *path, int flags, int *created) {
    int fd = open(path, flags | O_APPEND | O_CLOEXEC, 0600);
    *created = 0;
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, flags | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        *created = fd >= 0;
    }
    if (fd < 0) err_set("cannot open %s: %s", path, strerror(errno));
    return fd;
}

/* The committed length a writer starts from: the index's, with a cut last line removed; without one, the end of
 * the data file's last whole member (an index lost with the data kept: the data is not thrown away). */
static int archfile_start(int ifd, const char *idx_path, const char *data_path, long long *committed) {
    off_t valid;
    int got;
    struct stat st;
    if (archfile_index_lengths(ifd, idx_path, committed, 1, &got, &valid) != 0 || fstat(ifd, &st) != 0) return -1;
    if (got == 0) *committed = -1;
    if (st.st_size > valid && ftruncate(ifd, valid) != 0) {
        err_set("cannot truncate %s: %s", idx_path, strerror(errno));
        return -1;
    }
    if (*committed >= 0) return 0;
    archfile_stats rs;
    if (archfile_read(data_path, idx_path, archfile_count, NULL, &rs) < 0) return -1;
    *committed = rs.committed_bytes;
    return 0;
}

int archfile_append(const char *data_path, const char *idx_path, const char *buf, size_t len, long long *discarded) {
    int icreated, dcreated, rc = -1;
    unsigned char *member = NULL;
    size_t mlen = 0;
    long long committed;
    *discarded = 0;
    int ifd = archfile_open_append(idx_path, O_RDWR, &icreated);
    if (ifd < 0) return -1;
    int dfd = archfile_open_append(data_path, O_WRONLY, &dcreated);
    if (dfd < 0) {
        close(ifd);
        return -1;
    }
    struct stat st;
    if (archfile_start(ifd, idx_path, data_path, &committed) != 0) goto out;
    if (fstat(dfd, &st) != 0 || st.st_size < committed) {
        err_set("%s: %s", data_path, st.st_size < committed ? "shorter than its committed length: not appending"
                                                           : strerror(errno));
        goto out;
    }
    if (st.st_size > committed) {
        if (ftruncate(dfd, committed) != 0) {
            err_set("cannot truncate %s: %s", data_path, strerror(errno));
            goto out;
        }
        *discarded = (long long)st.st_size - committed;
    }
    if (archfile_deflate(buf, len, &member, &mlen) != 0 || archfile_write_all(dfd, member, mlen, data_path) != 0 ||
        archfile_sync(dfd, data_path) != 0)
        goto out;
    /* The new files' names must be durable before the index commits what they hold. */
    if ((icreated || dcreated) && archfile_sync_dir(data_path) != 0) goto out;
    char line[32];
    int n = snprintf(line, sizeof(line), "%lld\n", committed + (long long)mlen);
    if (archfile_write_all(ifd, line, (size_t)n, idx_path) != 0 || archfile_sync(ifd, idx_path) != 0) goto out;
    rc = 0;
out:
    free(member);
    close(dfd);
    close(ifd);
    return rc;
}
