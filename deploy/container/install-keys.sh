#!/bin/sh
# Kubernetes: a Secret volume cannot hold a CURVE secret key as SAV wants it (mode 0600, its reader's own):
# with fsGroup the kubelet makes its files 0440 root:GROUP, and the services refuse a secret key its group may
# read. This copies, in an init container running as the service's user, NAME.key (0600) and every .pub
# (0644) from the Secret's mount DIR (default /etc/sav/curve) to security.keys_dir of $SAV_CONFIG (an emptyDir
# in memory). The authorised clients file is not copied: security.clients names it in the Secret's mount, so
# the kubelet's updates reach the services (they read it again when it changes).
#     install-keys.sh NAME [DIR]
set -eu
umask 077

name=${1:?usage: install-keys.sh NAME [DIR]}
src=${2:-/etc/sav/curve}
savctl=${SAVCTL:-savctl}
dst=$("$savctl" config get security.keys_dir)
case $dst in
    /*) ;;
    *) dst=$(dirname "${SAV_CONFIG:?}")/$dst ;;
esac
[ -f "$src/$name.key" ] || {
    echo "install-keys: $src/$name.key is missing (is the Secret mounted with the item $name.key?)" >&2
    exit 1
}
mkdir -p "$dst"
n=0
for pub in "$src"/*.pub; do
    [ -f "$pub" ] || continue
    cat "$pub" > "$dst/${pub##*/}"
    chmod 0644 "$dst/${pub##*/}"
    n=$((n + 1))
done
cat "$src/$name.key" > "$dst/$name.key"
chmod 0600 "$dst/$name.key"
echo "install-keys: $name.key and $n public key(s) in $dst"
