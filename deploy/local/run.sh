#!/bin/sh
# make run: starts a private Redis under ./var/ and the four services, in the
# foreground, logs under ./var/log/. Ctrl-C or SIGTERM stops all of them.
# make run-ha (run.sh --ha): the HA stack instead: a Redis master and two
# replicas watched by three sentinels, and two instances of every service.
# Configuration: $SAV_CONFIG or deploy/local/sav.conf (SAV_<SECTION>_<KEY> overrides).
set -eu
ha=0
[ "${1:-}" = --ha ] && ha=1

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${SAV_BIN:-build/bin}
export SAV_CONFIG=${SAV_CONFIG:-deploy/local/sav.conf}
var=${SAV_VAR:-var}
mkdir -p "$var/redis" "$var/log"
var=$(cd "$var" && pwd)

get() { "$bin/savctl" config get "$1"; }
redis_host=$(get redis.host)
redis_port=$(get redis.port)

# CURVE keys, made at the first start: one pair per service and an admin
# operator (the identity the local config gives savctl), in security.keys_dir.
if [ "$(get security.curve)" = on ]; then
    keys=$(get security.keys_dir)
    case $keys in /*) ;; *) keys=$(dirname "$SAV_CONFIG")/$keys ;; esac
    for name in intake diagnostics billing notification; do
        [ -f "$keys/$name.key" ] || "$bin/savctl" keys generate "$name" >/dev/null
    done
    [ -f "$keys/admin.key" ] || "$bin/savctl" keys generate admin --role admin >/dev/null
    echo "keys          $(cd "$keys" && pwd) (CURVE on; savctl acts as $(get client.identity))"
fi

# Redis ACL: each service reaches Redis as its own user, with only what it needs (savctl redis acl prints each
# rule), and a password made at the first start in var/secrets/ (mode 600) that the configuration names. The
# default user is the operators', behind var/secrets/redis-admin: REDISCLI_AUTH=$(cat var/secrets/redis-admin)
# redis-cli (a password never goes on a command line). It keeps every right, as Redis 7.0 replays the AOF as
# the default user: restricted, the replay would drop the writes it is refused.
secrets=$var/secrets
mkdir -p "$secrets"
chmod 700 "$secrets"
newpass() { [ -s "$1" ] || (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$1"); }
newpass "$secrets/redis-admin"
acl=$var/redis/users.acl
(
    umask 077
    echo "user default on >$(cat "$secrets/redis-admin") ~* &* +@all"
    "$bin/savctl" redis acl | while read -r svc user rule; do
        newpass "$secrets/redis-$svc"
        echo "user $user on >$(cat "$secrets/redis-$svc") $rule"
    done
) > "$acl.new"
mv "$acl.new" "$acl"
# The passwords are where this script made them, whatever the configuration's default (SAV_VAR moves them).
for svc in intake diagnostics billing notification; do
    export "SAV_$(echo "$svc" | tr a-z A-Z)_REDIS_PASSWORD=file:$secrets/redis-$svc"
done

pids=""
stop() {
    trap - INT TERM EXIT
    echo "stopping SAV..."
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do wait "$pid" 2>/dev/null || true; done
    echo "stopped."
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

# Redis: AOF with fsync on every write (an acknowledged ticket survives a host crash),
# no eviction (dedup keys must never be dropped), loopback only; hashes with a field up to 4 KiB (a message's
# text) stay listpacks, a third of the memory of a hash table.
redis_conf() { # port dir log: the settings every Redis of SAV runs with
    cat <<CONF
bind $redis_host
port $1
dir $2
appendonly yes
appendfsync always
save ""
maxmemory-policy noeviction
hash-max-listpack-value 4096
protected-mode yes
aclfile $acl
logfile $var/log/$3
CONF
}
wait_redis() { # port
    i=0
    until REDISCLI_AUTH=$(cat "$secrets/redis-admin") redis-cli --no-auth-warning -h "$redis_host" -p "$1" \
            ping 2>/dev/null | grep -q PONG; do
        i=$((i + 1))
        [ $i -lt 100 ] || { echo "redis-server on port $1 did not start: see $var/log/" >&2; exit 1; }
        sleep 0.1
    done
}

if [ $ha = 0 ]; then
    redis_conf "$redis_port" "$var/redis" redis.log > "$var/redis/redis.conf"
    redis-server "$var/redis/redis.conf" &
    pids="$!"
    wait_redis "$redis_port"
    echo "redis         $redis_host:$redis_port  data in $var/redis (AOF appendfsync always; one ACL user per service)"
else
    # Each Redis and sentinel keeps its own configuration once written: after a failover Sentinel rewrites them
    # (who is master now), and the next start must go on from there, not from the first layout.
    newpass "$secrets/redis-sentinel"
    for port in $redis_port $((redis_port + 1)) $((redis_port + 2)); do
        d=$var/ha/redis-$port
        mkdir -p "$d"
        if [ ! -f "$d/redis.conf" ]; then
            (
                umask 077
                redis_conf "$port" "$d" "redis-$port.log"
                echo "masteruser default"
                echo "masterauth $(cat "$secrets/redis-admin")"
                [ "$port" = "$redis_port" ] || echo "replicaof $redis_host $redis_port"
            ) > "$d/redis.conf"
        fi
        redis-server "$d/redis.conf" &
        pids="$pids $!"
        wait_redis "$port"
    done
    sentinels=""
    for port in $((redis_port + 20000)) $((redis_port + 20001)) $((redis_port + 20002)); do
        d=$var/ha/sentinel-$port
        mkdir -p "$d"
        if [ ! -f "$d/sentinel.conf" ]; then
            (
                umask 077
                cat <<CONF
port $port
bind $redis_host
dir $d
logfile $var/log/sentinel-$port.log
requirepass $(cat "$secrets/redis-sentinel")
sentinel sentinel-pass $(cat "$secrets/redis-sentinel")
sentinel monitor sav $redis_host $redis_port 2
sentinel auth-user sav default
sentinel auth-pass sav $(cat "$secrets/redis-admin")
sentinel down-after-milliseconds sav 2000
sentinel failover-timeout sav 20000
CONF
            ) > "$d/sentinel.conf"
        fi
        redis-server "$d/sentinel.conf" --sentinel &
        pids="$pids $!"
        sentinels="$sentinels${sentinels:+,}$redis_host:$port"
    done
    echo "redis         master and two replicas on $redis_host:$redis_port-$((redis_port + 2)), data in $var/ha"
    echo "sentinels     $sentinels (password in $secrets/redis-sentinel); writes wait for one replica"
    # What the services and savctl need on top of the configuration: the sentinels, and both instances of each
    # service (the second one 20 ports above the first, its health listener too). savctl in another terminal:
    # . var/ha.env
    {
        echo "export SAV_REDIS_SENTINELS=$sentinels"
        echo "export SAV_REDIS_SENTINEL_PASSWORD=file:$secrets/redis-sentinel"
        echo "export SAV_REDIS_WAIT_REPLICAS=1"
        for svc in intake diagnostics billing notification; do
            first=$(get "$svc.endpoint" | cut -d, -f1)
            echo "export SAV_$(echo "$svc" | tr a-z A-Z)_ENDPOINT=$first,${first%:*}:$((${first##*:} + 20))"
        done
    } > "$var/ha.env"
    . "$var/ha.env"
fi

if [ $ha = 1 ]; then
    for svc in intake diagnostics billing notification; do
        SVC=$(echo "$svc" | tr a-z A-Z)
        first=$(get "$svc.endpoint" | cut -d, -f1)
        listen=$(get "$svc.http_listen")
        env SAV_SERVICE_INSTANCE=2 "SAV_${SVC}_BIND=${first%:*}:$((${first##*:} + 20))" \
            "SAV_${SVC}_HTTP_LISTEN=${listen%:*}:$((${listen##*:} + 20))" "$bin/sav-$svc" >>"$var/log/$svc-2.log" 2>&1 &
        pids="$pids $!"
    done
fi
for svc in intake diagnostics billing notification; do
    "$bin/sav-$svc" >>"$var/log/$svc.log" 2>&1 &
    pids="$pids $!"
done
sleep 0.5
"$bin/savctl" ping || echo "(some services are not up yet: see $var/log/)"
echo
echo "SAV is running. Logs in $var/log/. Try, in another terminal (the README has the whole tour):"
[ $ha = 0 ] || echo "  . $var/ha.env   # savctl then reaches both instances of each service"
echo "  $bin/savctl customer add --name 'Jeanne Martin' --phone '06 12 34 56 78'"
echo "  $bin/savctl product add --serial SN-1 --model WM-7000 --customer C-000001 --delivered 2025-06-14"
echo "  $bin/savctl ticket open --customer C-000001 --serial SN-1 --kind repair --symptom 'ne chauffe plus' --fault E21"
echo "Press Ctrl-C to stop."
wait
