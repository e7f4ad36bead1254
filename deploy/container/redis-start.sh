#!/bin/sh
# SAV's Redis set in containers (the sav-redis image; compose.yaml and deploy/k8s run it): a master, replicas
# and Sentinels, all reached by host name (the compose service, the Kubernetes pod's stable name).
#     redis-start.sh redis              a server: a replica of the master the sentinels name, or the master
#     redis-start.sh sentinel           a Sentinel of the set
#     redis-start.sh health [redis|sentinel]   exit 0 when the local server answers PING (health check, probes)
# A server asks the sentinels (REDIS_SENTINELS) for the current master at every start, so a failed master
# comes back as a replica. When none answers: at the very first start (no data yet) the master is
# REDIS_INITIAL_MASTER and the others its replicas; with data, it waits for a sentinel rather than guess (a
# wrong guess could make it a replica of an older master and lose what it had).
# A Sentinel keeps the configuration it rewrites in its data directory (it holds the current master and its
# peers); the first time, it writes one for the master another sentinel names, else REDIS_INITIAL_MASTER.
#
# Environment (no SAV_ prefix: those are SAV's own settings):
#   REDIS_ANNOUNCE_HOST   required: the name the others reach this server by
#   REDIS_INITIAL_MASTER  required: the master at the first start, host or host:port (port: REDIS_PORT)
#   REDIS_SENTINELS       the sentinels, host:port,... (the same list as SAV's redis.sentinels)
#   REDIS_MASTER_NAME     sav (redis.master_name)        REDIS_PORT 6379       SENTINEL_PORT 26379
#   REDIS_BIND            0.0.0.0                        REDIS_DATA_DIR /data
#   REDIS_SECRETS_DIR     /var/lib/sav/secrets: users.acl, redis-admin, redis-sentinel (init.sh makes them)
#   SENTINEL_QUORUM 2     SENTINEL_DOWN_AFTER_MS 5000    SENTINEL_FAILOVER_TIMEOUT_MS 60000
#   REDIS_CONF            /etc/sav/redis.conf (the static part of a server's configuration)
set -eu
umask 077

mode=${1:-redis}
name=${REDIS_MASTER_NAME:-sav}
port=${REDIS_PORT:-6379}
sport=${SENTINEL_PORT:-26379}
bind=${REDIS_BIND:-0.0.0.0}
data=${REDIS_DATA_DIR:-/data}
secrets=${REDIS_SECRETS_DIR:-/var/lib/sav/secrets}

log() { echo "redis-start: $*" >&2; }
secret() {
    [ -s "$secrets/$1" ] || {
        log "$secrets/$1 is missing or empty (the init step makes it)"
        exit 1
    }
    cat "$secrets/$1"
}
local_host() {
    case $bind in
        0.0.0.0 | '*' | '') echo 127.0.0.1 ;;
        *) echo "${bind%% *}" ;;
    esac
}

# The master the first sentinel that knows names, as "host port"; nothing when none answers.
ask_master() {
    pw=$(secret redis-sentinel)
    for s in $(printf '%s' "${REDIS_SENTINELS:-}" | tr ',' ' '); do
        h=${s%:*}
        p=${s##*:}
        a=$(REDISCLI_AUTH=$pw timeout 3 redis-cli --no-auth-warning --raw -h "$h" -p "$p" \
            SENTINEL get-master-addr-by-name "$name" 2>/dev/null) || continue
        mh=$(printf '%s\n' "$a" | sed -n 1p)
        mp=$(printf '%s\n' "$a" | sed -n 2p)
        case $mp in '' | *[!0-9]*) continue ;; esac
        [ -n "$mh" ] || continue
        echo "$mh $mp"
        return 0
    done
    return 0
}

# Whether "host port" is this server: its port, and its name or address.
is_self() {
    [ "${1#* }" = "$port" ] || return 1
    h=${1% *}
    [ "$h" = "$REDIS_ANNOUNCE_HOST" ] && return 0
    a=$(getent hosts "$h" | awk '{print $1; exit}')
    b=$(getent hosts "$REDIS_ANNOUNCE_HOST" | awk '{print $1; exit}')
    [ -n "$a" ] && [ "$a" = "$b" ]
}

# REDIS_INITIAL_MASTER as "host port" (it may be host or host:port).
initial_master() {
    case $REDIS_INITIAL_MASTER in
        *:*) echo "${REDIS_INITIAL_MASTER%:*} ${REDIS_INITIAL_MASTER##*:}" ;;
        *) echo "$REDIS_INITIAL_MASTER $port" ;;
    esac
}

# Waits until host resolves (a Sentinel refuses to start on a name it cannot resolve).
wait_resolves() {
    i=0
    until getent hosts "$1" > /dev/null; do
        i=$((i + 1))
        [ $((i % 10)) -ne 1 ] || log "waiting for $1 to resolve"
        sleep 1
    done
}

case $mode in
    redis)
        : "${REDIS_ANNOUNCE_HOST:?redis-start: REDIS_ANNOUNCE_HOST must name this server}"
        : "${REDIS_INITIAL_MASTER:?redis-start: REDIS_INITIAL_MASTER must name the first master}"
        admin=$(secret redis-admin)
        [ -s "$secrets/users.acl" ] || {
            log "$secrets/users.acl is missing (the init step makes it)"
            exit 1
        }
        master=""
        i=0
        while :; do
            master=$(ask_master)
            [ -z "$master" ] || break
            if [ ! -e "$data/appendonlydir" ]; then
                # The very first start: nothing to lose.
                master=$(initial_master)
                break
            fi
            i=$((i + 1))
            [ $((i % 10)) -ne 1 ] || log "no sentinel of $REDIS_SENTINELS names the master of $name yet: waiting"
            sleep 1
        done
        set -- "${REDIS_CONF:-/etc/sav/redis.conf}" --port "$port" --bind "$bind" --dir "$data" \
            --aclfile "$secrets/users.acl" --replica-announce-ip "$REDIS_ANNOUNCE_HOST" --replica-announce-port "$port"
        if ! is_self "$master"; then
            log "$REDIS_ANNOUNCE_HOST: replica of ${master% *}:${master#* }"
            set -- "$@" --replicaof "${master% *}" "${master#* }"
        else
            log "$REDIS_ANNOUNCE_HOST: master of $name"
        fi
        # masterauth on standard input ("-"): not in the process list, not on disk.
        exec redis-server "$@" - << CONF
masterauth $admin
CONF
        ;;
    sentinel)
        : "${REDIS_ANNOUNCE_HOST:?redis-start: REDIS_ANNOUNCE_HOST must name this sentinel}"
        : "${REDIS_INITIAL_MASTER:?redis-start: REDIS_INITIAL_MASTER must name the first master}"
        conf=$data/sentinel.conf
        if [ ! -s "$conf" ]; then
            spw=$(secret redis-sentinel)
            admin=$(secret redis-admin)
            master=$(ask_master)
            [ -n "$master" ] || master=$(initial_master)
            log "$REDIS_ANNOUNCE_HOST: a new sentinel of $name, master ${master% *}:${master#* }"
            cat > "$conf.new" << CONF
# Written by redis-start.sh, then rewritten by Sentinel as it learns the replicas and its peers.
port $sport
bind $bind
daemonize no
logfile ""
dir $data
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $REDIS_ANNOUNCE_HOST
sentinel announce-port $sport
requirepass $spw
sentinel sentinel-pass $spw
sentinel monitor $name ${master% *} ${master#* } ${SENTINEL_QUORUM:-2}
sentinel auth-user $name default
sentinel auth-pass $name $admin
sentinel down-after-milliseconds $name ${SENTINEL_DOWN_AFTER_MS:-5000}
sentinel failover-timeout $name ${SENTINEL_FAILOVER_TIMEOUT_MS:-60000}
sentinel parallel-syncs $name 1
CONF
            mv "$conf.new" "$conf"
        else
            log "$REDIS_ANNOUNCE_HOST: sentinel of $name with the configuration it kept in $conf"
        fi
        wait_resolves "$(sed -n "s/^sentinel monitor $name \([^ ]*\) .*/\1/p" "$conf")"
        exec redis-server "$conf" --sentinel
        ;;
    health)
        what=${2:-}
        if [ -z "$what" ]; then
            what=redis
            tr '\0' ' ' < /proc/1/cmdline | grep -q sentinel && what=sentinel
        fi
        if [ "$what" = sentinel ]; then
            pw=$(secret redis-sentinel)
            p=$sport
        else
            pw=$(secret redis-admin)
            p=$port
        fi
        answer=$(REDISCLI_AUTH=$pw timeout 3 redis-cli --no-auth-warning -h "$(local_host)" -p "$p" ping 2>&1) || true
        [ "$answer" = PONG ] || {
            echo "redis-start health: $what on port $p: ${answer:-no answer}" >&2
            exit 1
        }
        ;;
    *)
        echo "usage: redis-start.sh redis|sentinel|health [redis|sentinel]" >&2
        exit 1
        ;;
esac
