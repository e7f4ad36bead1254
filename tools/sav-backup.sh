#!/bin/sh
# sav-backup: a consistent backup of SAV's running Redis, with both of its
# persistence files: an RDB snapshot made now (BGSAVE) and a copy of the
# append-only file (Redis 7 multi-part AOF: the appendonlydir/ directory with
# its manifest, base and incremental files), taken while no AOF rewrite can
# change the set of files; plus the ACL file (users and their passwords are
# not in the data); and, with -a, intake's archive files, copied after the
# snapshot: a ticket archived before it has its line in the copy, one archived
# later is still in the snapshot. Run it on the Redis host, as a user who can
# read Redis's directory, with the operators' password (the default user's) in
# REDISCLI_AUTH: REDISCLI_AUTH=$(cat var/secrets/redis-admin) tools/sav-backup.sh ...
# SAV keeps running meanwhile. Restore with tools/sav-restore.sh.
set -eu

usage() {
    cat >&2 <<EOF
usage: $0 [-h HOST] [-p PORT] [-a ARCHIVE_DIR] DEST
  Writes DEST/dump.rdb (the snapshot), DEST/aof/<appenddirname>/ (the AOF as it was when copied),
  DEST/users.acl, DEST/archive/ (with -a) and DEST/BACKUP.txt (what, when, checksums). DEST must not exist yet.
  -h HOST         Redis host (default 127.0.0.1)
  -p PORT         Redis port (default 6390, as in deploy/local/sav.conf)
  -a ARCHIVE_DIR  intake.archive_dir, if it is reachable from here (else copy it after this backup)
EOF
    exit 1
}

host=127.0.0.1
port=6390
archive=
while getopts h:p:a: opt; do
    case $opt in
        h) host=$OPTARG ;;
        p) port=$OPTARG ;;
        a) archive=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
dest=$1
[ ! -e "$dest" ] || { echo "sav-backup: $dest exists: give a new directory" >&2; exit 1; }
[ -z "$archive" ] || [ -d "$archive" ] || { echo "sav-backup: $archive is not a directory" >&2; exit 1; }

rc() { redis-cli --no-auth-warning -h "$host" -p "$port" "$@"; }
conf() { rc CONFIG GET "$1" | sed -n 2p; }
info() { rc INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }
# Waits until INFO persistence field $1 is $2 (at most an hour: a snapshot of a big data set takes a while).
wait_info() {
    i=0
    until [ "$(info "$1")" = "$2" ]; do
        i=$((i + 1))
        [ $i -lt 36000 ] || { echo "sav-backup: $1 never became $2" >&2; exit 1; }
        sleep 0.1
    done
}

rc PING >/dev/null || { echo "sav-backup: Redis at $host:$port does not answer (REDISCLI_AUTH set?)" >&2; exit 1; }
dir=$(conf dir)
dbfile=$(conf dbfilename)
aofdir=$(conf appenddirname)
appendonly=$(conf appendonly)
aclfile=$(conf aclfile)
[ -d "$dir" ] || { echo "sav-backup: Redis's directory $dir is not readable from here: run on the Redis host" >&2; exit 1; }
mkdir -p "$dest"
chmod 700 "$dest"

# 1. The snapshot: BGSAVE SCHEDULE waits for an AOF rewrite in progress instead of failing; rdb_saves counts the
# snapshots made, so the one we asked for is recognised (LASTSAVE has a one-second resolution).
saves=$(info rdb_saves)
rc BGSAVE SCHEDULE >/dev/null
i=0
until [ "$(info rdb_saves)" -gt "$saves" ] && [ "$(info rdb_bgsave_in_progress)" = 0 ]; do
    i=$((i + 1))
    [ $i -lt 36000 ] || { echo "sav-backup: the snapshot did not finish within an hour" >&2; exit 1; }
    sleep 0.1
done
[ "$(info rdb_last_bgsave_status)" = ok ] || { echo "sav-backup: BGSAVE failed: see Redis's log" >&2; exit 1; }
# Redis renames a finished snapshot into place: the file read here is whole, this one or a later one.
cp "$dir/$dbfile" "$dest/dump.rdb"

# 2. The AOF: automatic rewrites paused (a rewrite replaces the base and the manifest) and none in progress, the
# directory is copied, then the manifest compared with the live one: the copy is one consistent set of files. The
# incremental file grows meanwhile; its copy may end inside the last command, which Redis drops when it loads
# (aof-load-truncated yes, the default), a command inside MULTI/EXEC with its whole transaction.
if [ "$appendonly" = yes ]; then
    pct=$(conf auto-aof-rewrite-percentage)
    rc CONFIG SET auto-aof-rewrite-percentage 0 >/dev/null
    trap 'rc CONFIG SET auto-aof-rewrite-percentage "$pct" >/dev/null' EXIT
    tries=0
    while :; do
        wait_info aof_rewrite_scheduled 0
        wait_info aof_rewrite_in_progress 0
        rm -rf "$dest/aof"
        mkdir -p "$dest/aof"
        cp -a "$dir/$aofdir" "$dest/aof/"
        same=no
        for m in "$dir/$aofdir"/*.manifest; do
            if [ -f "$m" ] && cmp -s "$m" "$dest/aof/$aofdir/${m##*/}"; then same=yes; fi
        done
        [ $same = no ] || break
        tries=$((tries + 1))
        [ $tries -lt 10 ] || { echo "sav-backup: the AOF kept changing under the copy (rewrites?)" >&2; exit 1; }
    done
    rc CONFIG SET auto-aof-rewrite-percentage "$pct" >/dev/null
    trap - EXIT
fi

# 3. The ACL file: the services' users and the default user's password (secrets: the backup is mode 700).
if [ -n "$aclfile" ] && [ -f "$aclfile" ]; then cp "$aclfile" "$dest/users.acl"; fi

# 4. The archive, after the snapshot. Each month's index first: the data file copied after it is at least as long
# as the index says is committed (what lies beyond, an append in progress, readers ignore and the next writer cuts).
if [ -n "$archive" ]; then
    mkdir -p "$dest/archive"
    for idx in "$archive"/*.idx; do
        [ -f "$idx" ] || continue
        month=$(basename "$idx" .idx)
        cp "$idx" "$dest/archive/"
        cp "$archive/$month.jsonl.gz" "$dest/archive/"
    done
fi

{
    echo "SAV Redis backup"
    echo "taken_at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "redis $host:$port $(rc INFO server | tr -d '\r' | sed -n 's/^redis_version://p') dir $dir"
    echo "keys $(rc DBSIZE)"
    echo "appenddirname $aofdir"
    (cd "$dest" && find . -type f ! -name BACKUP.txt | sort | xargs sha256sum)
} >"$dest/BACKUP.txt"
sync
echo "sav-backup: $dest: dump.rdb$([ "$appendonly" = yes ] && echo ", aof/$aofdir")$([ -f "$dest/users.acl" ] && echo ", users.acl")$([ -n "$archive" ] && echo ", archive/")"
