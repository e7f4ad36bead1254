#include "keys.h"
#include "err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* A key file is a line or two: anything bigger is not one. */
#define KEYS_FILE_MAX 4096

int keys_name_check(const char *name) {
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > KEYS_NAME_MAX || name[0] == '.') {
        err_set("identity name \"%s\" must have 1 to %d characters and not start with '.'", name ? name : "",
                KEYS_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') {
            err_set("identity name \"%s\" may contain only letters, digits, '.', '_' and '-'", name);
            return -1;
        }
    }
    return 0;
}

int keys_z85_check(const char *text) {
    uint8_t raw[32];
    if (strlen(text) != KEYS_Z85_LEN || !zmq_z85_decode(raw, text)) {
        err_set("not a CURVE key: expected %d Z85 characters", KEYS_Z85_LEN);
        return -1;
    }
    return 0;
}

int keys_path(const char *dir, const char *name, const char *ext, char *out, size_t outlen) {
    if ((size_t)snprintf(out, outlen, "%s/%s.%s", dir, name, ext) >= outlen) {
        err_set("key file path %s/%s.%s is too long", dir, name, ext);
        return -1;
    }
    return 0;
}

/* Reads the one key of an open key file; 0 or -1 with err naming path (and line). */
static int keys_read_fd(int fd, const char *path, char out[KEYS_Z85_LEN + 1]) {
    char buf[KEYS_FILE_MAX + 1];
    size_t len = 0;
    ssize_t n;
    while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) len += (size_t)n;
    if (n < 0) {
        err_set("cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    if (len == sizeof(buf) - 1) {
        err_set("%s is not a key file: larger than %d bytes", path, KEYS_FILE_MAX);
        return -1;
    }
    buf[len] = '\0';
    int found = 0, lineno = 0, rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        char *end = line + strlen(line);
        while (end > line && isspace((unsigned char)end[-1])) *--end = '\0';
        while (isspace((unsigned char)*line)) line++;
        if (!*line || *line == '#') continue;
        if (found) {
            err_set("%s:%d: a second key: a key file holds one key", path, lineno);
            rc = -1;
        } else if (keys_z85_check(line) != 0) {
            err_set("%s:%d: not a CURVE key: expected %d Z85 characters", path, lineno, KEYS_Z85_LEN);
            rc = -1;
        } else {
            memcpy(out, line, KEYS_Z85_LEN + 1);
            found = 1;
        }
    }
    if (rc == 0 && !found) {
        err_set("%s holds no key", path);
        rc = -1;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* Opens a key file; a secret one must be a regular file only its owner may read or write. */
static int keys_open(const char *path, int secret) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set("cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        err_set("%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (secret && (st.st_mode & 077)) {
        err_set("%s is a secret key readable by others (mode %03o): it must be 0600 (chmod 600 %s)", path,
                (unsigned)(st.st_mode & 0777), path);
        close(fd);
        return -1;
    }
    return fd;
}

static int keys_read(const char *path, int secret, char out[KEYS_Z85_LEN + 1]) {
    int fd = keys_open(path, secret);
    if (fd < 0) return -1;
    int rc = keys_read_fd(fd, path, out);
    close(fd);
    return rc;
}

int keys_read_public(const char *path, char out[KEYS_Z85_LEN + 1]) {
    return keys_read(path, 0, out);
}

int keys_load_pair(const char *dir, const char *name, keys_pair *pair) {
    char pub_path[PATH_MAX], key_path[PATH_MAX], derived[KEYS_Z85_LEN + 1];
    if (keys_name_check(name) != 0 || keys_path(dir, name, "pub", pub_path, sizeof(pub_path)) != 0 ||
        keys_path(dir, name, "key", key_path, sizeof(key_path)) != 0)
        return -1;
    if (keys_read(pub_path, 0, pair->public_key) != 0 || keys_read(key_path, 1, pair->secret_key) != 0) {
        keys_forget(pair);
        return -1;
    }
    if (zmq_curve_public(derived, pair->secret_key) != 0 || strcmp(derived, pair->public_key) != 0) {
        err_set("%s is not the public key of %s: the pair does not belong together", pub_path, key_path);
        keys_forget(pair);
        return -1;
    }
    return 0;
}

/* Creates path (never an existing file) with mode and writes text into it; 0 or -1 with err. */
static int keys_write(const char *path, mode_t mode, const char *text) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            err_set("%s already exists: a key is never overwritten", path);
        else
            err_set("cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = strlen(text);
    int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok) {
        err_set("cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int keys_generate(const char *dir, const char *name, keys_pair *pair) {
    char pub_path[PATH_MAX], key_path[PATH_MAX], text[256];
    if (keys_name_check(name) != 0 || keys_path(dir, name, "pub", pub_path, sizeof(pub_path)) != 0 ||
        keys_path(dir, name, "key", key_path, sizeof(key_path)) != 0)
        return -1;
    struct stat st;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        err_set("cannot create the keys directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set("%s is not a directory", dir);
        return -1;
    }
    if (access(pub_path, F_OK) == 0) {
        err_set("%s already exists: a key is never overwritten", pub_path);
        return -1;
    }
    if (zmq_curve_keypair(pair->public_key, pair->secret_key) != 0) {
        err_set("cannot make a CURVE key pair: %s", zmq_strerror(errno));
        return -1;
    }
    snprintf(text, sizeof(text), "# SAV CURVE secret key of %s: keep it private (mode 0600)\n%s\n", name,
             pair->secret_key);
    int rc = keys_write(key_path, 0600, text);
    explicit_bzero(text, sizeof(text));
    if (rc == 0) {
        snprintf(text, sizeof(text), "# SAV CURVE public key of %s\n%s\n", name, pair->public_key);
        rc = keys_write(pub_path, 0644, text);
        if (rc != 0) unlink(key_path);
    }
    if (rc != 0) keys_forget(pair);
    return rc;
}

void keys_remove(const char *dir, const char *name) {
    char path[PATH_MAX];
    if (keys_path(dir, name, "key", path, sizeof(path)) == 0) unlink(path);
    if (keys_path(dir, name, "pub", path, sizeof(path)) == 0) unlink(path);
}

void keys_forget(keys_pair *pair) {
    explicit_bzero(pair, sizeof(*pair));
}
