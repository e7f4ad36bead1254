#!/bin/sh
# make run: starts a private Redis under ./var/ and the four services, in the
# foreground, logs under ./var/log/. Ctrl-C or SIGTERM stops all of them.
# Configuration: $SAV_CONFIG or deploy/local/sav.conf (SAV_<SECTION>_<KEY> overrides).
set -eu

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
# no eviction (dedup keys must never be dropped), loopback only.
cat > "$var/redis/redis.conf" <<CONF
bind $redis_host
port $redis_port
dir $var/redis
appendonly yes
appendfsync always
save ""
maxmemory-policy noeviction
protected-mode yes
aclfile $acl
logfile $var/log/redis.log
CONF
redis-server "$var/redis/redis.conf" &
pids="$!"
i=0
until REDISCLI_AUTH=$(cat "$secrets/redis-admin") redis-cli --no-auth-warning -h "$redis_host" -p "$redis_port" \
        ping 2>/dev/null | grep -q PONG; do
    i=$((i + 1))
    [ $i -lt 100 ] || { echo "redis-server did not start: see $var/log/redis.log" >&2; exit 1; }
    sleep 0.1
done
echo "redis         $redis_host:$redis_port  data in $var/redis (AOF appendfsync always; one ACL user per service)"

for svc in intake diagnostics billing notification; do
    "$bin/sav-$svc" >>"$var/log/$svc.log" 2>&1 &
    pids="$pids $!"
done
sleep 0.5
"$bin/savctl" ping || echo "(some services are not up yet: see $var/log/)"
echo
echo "SAV is running. Logs in $var/log/. Try, in another terminal (the README has the whole tour):"
echo "  $bin/savctl customer add --name 'Jeanne Martin' --phone '06 12 34 56 78'"
echo "  $bin/savctl product add --serial SN-1 --model WM-7000 --customer C-000001 --delivered 2025-06-14"
echo "  $bin/savctl ticket open --customer C-000001 --serial SN-1 --kind repair --symptom 'ne chauffe plus' --fault E21"
echo "Press Ctrl-C to stop."
wait
