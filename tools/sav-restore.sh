#!/bin/sh
# sav-restore: prepares a fresh Redis data directory from a backup of
# tools/sav-backup.sh, from its AOF copy (--aof: the most recent state the
# backup holds) or its RDB snapshot (--rdb). The directory is then ready for
# SAV's usual Redis configuration (appendonly yes, appendfsync always, the
# same appenddirname) and the backup's ACL file: start redis-server on it,
# point the services at it (redis.host, redis.port) and run `savctl check`.
# With --archive DIR, the backup's archive files go to DIR (intake.archive_dir).
set -eu

usage() {
    cat >&2 <<EOF
usage: $0 --aof|--rdb BACKUP NEWDIR [--archive DIR]
  --aof           copy BACKUP/aof/<appenddirname>/ into NEWDIR
  --rdb           load BACKUP/dump.rdb into a temporary redis-server (unix socket in NEWDIR, no TCP port) and have it
                  write the append-only file, so that the restored Redis starts with appendonly yes from it
  --archive DIR   copy BACKUP/archive/ (the archive files, from sav-backup.sh -a) into DIR
  NEWDIR (and DIR) must not exist, or be empty.
EOF
    exit 1
}

[ $# -eq 3 ] || [ $# -eq 5 ] || usage
mode=$1
backup=$2
new=$3
archive=
if [ $# -eq 5 ]; then
    [ "$4" = --archive ] || usage
    archive=$5
    [ -d "$backup/archive" ] || { echo "sav-restore: $backup holds no archive (sav-backup.sh -a)" >&2; exit 1; }
    if [ -e "$archive" ] && [ -n "$(ls -A "$archive")" ]; then echo "sav-restore: $archive is not empty" >&2; exit 1; fi
fi
case $mode in --aof | --rdb) ;; *) usage ;; esac
[ -f "$backup/BACKUP.txt" ] || { echo "sav-restore: $backup is not a backup of sav-backup.sh" >&2; exit 1; }
if [ -e "$new" ] && [ -n "$(ls -A "$new")" ]; then echo "sav-restore: $new is not empty" >&2; exit 1; fi
aofdir=$(sed -n 's/^appenddirname //p' "$backup/BACKUP.txt")
[ -n "$aofdir" ] || aofdir=appendonlydir
(cd "$backup" && sed -n 's/^\([0-9a-f]\{64\}  \)/\1/p' BACKUP.txt | sha256sum -c --quiet) ||
    { echo "sav-restore: $backup does not match its checksums" >&2; exit 1; }
mkdir -p "$new"
chmod 750 "$new"

if [ "$mode" = --aof ]; then
    [ -d "$backup/aof/$aofdir" ] || { echo "sav-restore: $backup has no AOF copy" >&2; exit 1; }
    cp -a "$backup/aof/$aofdir" "$new/"
else
    [ -f "$backup/dump.rdb" ] || { echo "sav-restore: $backup has no dump.rdb" >&2; exit 1; }
    cp "$backup/dump.rdb" "$new/dump.rdb"
    sock=$new/restore.sock
    redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --dir "$new" --dbfilename dump.rdb \
        --appendonly no --appenddirname "$aofdir" --save "" --daemonize no --logfile "$new/restore.log" &
    pid=$!
    rc() { redis-cli -s "$sock" "$@"; }
    info() { rc INFO persistence | tr -d '\r' | sed -n "s/^$1://p"; }
    i=0
    until [ -S "$sock" ] && [ "$(info loading)" = 0 ]; do
        i=$((i + 1))
        if ! kill -0 $pid 2>/dev/null || [ $i -ge 36000 ]; then
            echo "sav-restore: redis-server did not load the snapshot: $new/restore.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    keys=$(rc DBSIZE)
    # Turning the AOF on writes it from the data set in memory (a rewrite): then it holds the snapshot whole.
    rc CONFIG SET appendonly yes >/dev/null
    i=0
    until [ "$(info aof_rewrite_in_progress)" = 0 ] && [ "$(info aof_rewrite_scheduled)" = 0 ] &&
        [ "$(info aof_enabled)" = 1 ] && ls "$new/$aofdir/"*.manifest >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 36000 ] || { echo "sav-restore: the AOF was not written: $new/restore.log" >&2; kill $pid; exit 1; }
        sleep 0.1
    done
    [ "$(info aof_last_bgrewrite_status)" = ok ] || { echo "sav-restore: the AOF rewrite failed" >&2; kill $pid; exit 1; }
    rc SHUTDOWN >/dev/null 2>&1 || true
    wait $pid || true
    rm -f "$sock" "$new/dump.rdb"
    echo "sav-restore: $keys keys from the snapshot"
fi
if [ -n "$archive" ]; then
    mkdir -p "$archive"
    chmod 700 "$archive"
    for f in "$backup"/archive/*; do
        if [ -f "$f" ]; then cp -p "$f" "$archive/"; fi
    done
    echo "sav-restore: the archive files are in $archive: set intake.archive_dir to it"
fi
sync
echo "sav-restore: $new is ready: start redis-server with dir $new, appendonly yes, appenddirname $aofdir,"
echo "             appendfsync always and the ACL file $backup/users.acl; then point SAV at it and run savctl check"
