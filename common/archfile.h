/* archfile: an append-only file of text lines, gzip-compressed, that a crash
 * can never leave half-written for its readers. Each append is one gzip
 * member (a valid gzip stream: zcat reads the whole file), written and
 * fsynced, then its end is recorded in a side index (one decimal length per
 * line, fsynced too): the committed length. Readers stop there; the next
 * writer cuts off whatever lies beyond it (a member cut by a crash, or one
 * written but never committed). Writers take the directory's lock. */
#ifndef SAV_ARCHFILE_H
#define SAV_ARCHFILE_H

#include <stddef.h>

/* What a read went through. */
typedef struct archfile_stats {
    long long members;         /* gzip members read */
    long long lines;           /* lines passed to the callback */
    long long committed_bytes; /* compressed bytes read */
    long long ignored_bytes;   /* bytes beyond the committed length (an append in progress, or cut by a crash) */
} archfile_stats;

/* Called with each line (without its newline); returns 0 to go on, 1 to stop, -1 to fail (err set). */
typedef int (*archfile_line_fn)(void *ctx, const char *line, size_t len);

/* Takes the exclusive lock of a directory's files (creating the directory, mode 0700, and its .lock file):
 * returns the lock's descriptor (for archfile_unlock), -2 when another process holds it, -1 with err. */
int archfile_lock(const char *dir);

/* Releases a lock from archfile_lock (a negative descriptor is ignored). */
void archfile_unlock(int fd);

/* Appends buf, len bytes of whole lines each ending in '\n', as one gzip member of data_path and commits it in
 * idx_path; the bytes beyond the last committed length are cut off first (*discarded: how many). Creates both
 * files (mode 0600) if needed. Call it under archfile_lock. 0, or -1 with err: nothing new is committed. */
int archfile_append(const char *data_path, const char *idx_path, const char *buf, size_t len, long long *discarded);

/* Reads data_path's committed lines in order, calling fn on each (st: what was read; may be NULL). Without an
 * index the whole file is read and a cut last member ignored. Returns 0 (every line read), 1 (fn stopped),
 * -1 with err (the file cannot be read, its committed part is corrupt, or fn failed). A missing data file has no
 * lines. */
int archfile_read(const char *data_path, const char *idx_path, archfile_line_fn fn, void *ctx, archfile_stats *st);

/* Calls fn on each line of the n-th last committed append (0: the last; at most 1000 back): the writer's check,
 * after a crash, of what it wrote already. 0 (read), 1 (fn stopped), 2 (there is no such append, or no index),
 * -1 with err. */
int archfile_read_back(const char *data_path, const char *idx_path, int n, archfile_line_fn fn, void *ctx);

#endif
