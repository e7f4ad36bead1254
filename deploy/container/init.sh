#!/bin/sh
# Makes what a SAV stack needs before its first start, once (compose.yaml: the init service, at every `up`;
# deploy/k8s/make-secrets.sh: on the operator's machine). It never overwrites a key or a password.
#   - a CURVE key pair per service and for the operator identity client.identity (admin if none), authorised
#     with the role admin, in security.keys_dir (savctl keys generate);
#   - a password per service's Redis user, at the file:PATH of SERVICE.redis_password, one for the sentinels at
#     redis.sentinel_password's, and redis-admin beside it: the Redis default user's, the operators'
#     (REDISCLI_AUTH=$(cat redis-admin) redis-cli), which the servers and sentinels also replicate with;
#   - users.acl beside it, written again each time: the rule `savctl redis acl` prints for each service's user,
#     and the default user with every right (Redis 7.0 replays the AOF as the default user), each behind the
#     SHA-256 of its password (the servers never hold the services' passwords themselves).
# Every path comes from the configuration ($SAV_CONFIG, with its SAV_<SECTION>_<KEY> overrides); files are made
# with umask 077 (the services refuse secrets others may read). SAVCTL names savctl (default: on the PATH).
set -eu
umask 077

savctl=${SAVCTL:-savctl}
: "${SAV_CONFIG:?init: SAV_CONFIG must name the configuration}"
confdir=$(dirname "$SAV_CONFIG")

get() { "$savctl" config get "$1"; }
# A path of the configuration: relative ones are relative to its directory, as the services read them.
abs() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$confdir/$1" ;;
    esac
}
secret_file() {
    v=$(get "$1")
    case $v in
        file:*) abs "${v#file:}" ;;
        *)
            echo "init: $1 is \"$v\": it must be file:PATH" >&2
            return 1
            ;;
    esac
}
newpass() {
    mkdir -p "$(dirname "$1")"
    [ -s "$1" ] || od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$1"
}
sha256() { printf '%s' "$(cat "$1")" | sha256sum | cut -c1-64; }

if [ "$(get security.curve)" = on ]; then
    keys=$(abs "$(get security.keys_dir)")
    mkdir -p "$keys"
    made=""
    for name in intake diagnostics billing notification; do
        if [ ! -f "$keys/$name.key" ]; then
            "$savctl" keys generate "$name" > /dev/null
            made="$made $name"
        fi
    done
    operator=$(get client.identity)
    [ "$operator" != none ] || operator="admin"
    if [ ! -f "$keys/$operator.key" ]; then
        "$savctl" keys generate "$operator" --role admin > /dev/null
        made="$made $operator(admin)"
    fi
    echo "init: keys in $keys${made:+, made:$made}"
fi

sentinel=$(secret_file redis.sentinel_password)
secrets=$(dirname "$sentinel")
newpass "$sentinel"
newpass "$secrets/redis-admin"
acl=$secrets/users.acl
{
    echo "user default on #$(sha256 "$secrets/redis-admin") ~* &* +@all"
    "$savctl" redis acl | while read -r svc user rule; do
        f=$(secret_file "$svc.redis_password")
        newpass "$f"
        echo "user $user on #$(sha256 "$f") $rule"
    done
} > "$acl.new"
mv "$acl.new" "$acl"
echo "init: Redis passwords and $acl ($(wc -l < "$acl") users) in $secrets"
