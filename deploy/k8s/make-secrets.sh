#!/bin/sh
# Makes the CURVE keys and Redis passwords of a SAV cluster into DIR, with deploy/container/init.sh and savctl
# (nothing existing is made again), and creates or replaces the two Secrets the manifests mount:
#     sav-curve   from DIR/keys:    NAME.key, NAME.pub (the four services, admin), clients
#     sav-redis   from DIR/secrets: redis-admin, redis-sentinel, redis-SERVICE (each), users.acl
# Usage: deploy/k8s/make-secrets.sh DIR [kubectl options, e.g. --namespace sav]
# The paths of sav.conf are the pods'; here SAV_<SECTION>_<KEY> variables point them into DIR. SAVCTL names
# savctl (default: build/bin/savctl of this repository, else the PATH's), KUBECTL kubectl. Keep DIR safe: it
# holds every secret key and password. Add an operator with
#     SAV_SECURITY_KEYS_DIR=DIR/keys SAV_SECURITY_CLIENTS=DIR/keys/clients savctl keys generate NAME --role ROLE
# and run this again: the services admit the new identity once the kubelet has updated the clients file.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:?usage: make-secrets.sh DIR [kubectl options]}
shift
mkdir -p "$dir"
chmod 700 "$dir"
dir=$(cd "$dir" && pwd)

savctl=${SAVCTL:-$root/build/bin/savctl}
[ -x "$savctl" ] || savctl=savctl
kubectl=${KUBECTL:-kubectl}

SAV_CONFIG=$here/sav.conf
SAV_SECURITY_KEYS_DIR=$dir/keys
SAV_SECURITY_CLIENTS=$dir/keys/clients
SAV_REDIS_SENTINEL_PASSWORD=file:$dir/secrets/redis-sentinel
SAV_INTAKE_REDIS_PASSWORD=file:$dir/secrets/redis-intake
SAV_DIAGNOSTICS_REDIS_PASSWORD=file:$dir/secrets/redis-diagnostics
SAV_BILLING_REDIS_PASSWORD=file:$dir/secrets/redis-billing
SAV_NOTIFICATION_REDIS_PASSWORD=file:$dir/secrets/redis-notification
export SAV_CONFIG SAV_SECURITY_KEYS_DIR SAV_SECURITY_CLIENTS SAV_REDIS_SENTINEL_PASSWORD SAV_INTAKE_REDIS_PASSWORD \
    SAV_DIAGNOSTICS_REDIS_PASSWORD SAV_BILLING_REDIS_PASSWORD SAV_NOTIFICATION_REDIS_PASSWORD
SAVCTL=$savctl "$root/deploy/container/init.sh"

# create --dry-run=client | apply: creates the Secret, or replaces its content.
for secret in "sav-curve keys" "sav-redis secrets"; do
    name=${secret% *}
    from=$dir/${secret#* }
    "$kubectl" create secret generic "$name" --from-file="$from" --dry-run=client -o yaml "$@" \
        | "$kubectl" apply -f - "$@"
done
