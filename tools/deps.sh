#!/bin/sh
# Checks the Debian packages SAV needs to build, run and test; installs the
# missing ones when run as root, else prints the exact apt-get line and fails.
set -eu

PACKAGES="gcc make pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libhiredis-dev libjansson-dev
libcmocka-dev libcurl4-openssl-dev libmicrohttpd-dev zlib1g-dev redis-server redis-tools tzdata python3 python3-zmq
python3-redis python3-aiosmtpd python3-yaml perl libnet-smpp-perl kannel systemd clang libclang-rt-14-dev docker-compose"

missing=""
for p in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$status" in
        *"install ok installed"*) ;;
        *) missing="$missing $p" ;;
    esac
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "deps: missing Debian packages. Run as root:" >&2
        echo "    apt-get install -y$missing" >&2
        exit 1
    fi
fi

for lib in libzmq libprotobuf-c hiredis jansson cmocka libcurl libmicrohttpd zlib; do
    pkg-config --exists "$lib" || { echo "deps: pkg-config cannot find $lib" >&2; exit 1; }
done
for cmd in protoc-c redis-server redis-cli /usr/sbin/bearerbox /usr/sbin/smsbox clang; do
    command -v "$cmd" >/dev/null || { echo "deps: $cmd not found on PATH" >&2; exit 1; }
done
/usr/bin/python3 -c 'import zmq, redis, aiosmtpd, yaml' || { echo "deps: /usr/bin/python3 lacks zmq, redis, aiosmtpd or yaml" >&2; exit 1; }
/usr/bin/perl -MNet::SMPP -MJSON::PP -e 1 || { echo "deps: /usr/bin/perl lacks Net::SMPP (libnet-smpp-perl)" >&2; exit 1; }
