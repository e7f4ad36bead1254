#!/bin/sh
# The SAV image's health check: GET /health/ready (or /health/live with --live) on the service's
# SERVICE.http_listen, read from the configuration the container runs with ($SAV_CONFIG and SAV_* variables,
# which `docker exec` and the health check inherit). The service is the argument, else the one PID 1 runs.
# Exit 0: the service reaches Redis (ready) or its loop turns (live); 1 otherwise, with the reason.
#     healthcheck.sh [--live] [intake|diagnostics|billing|notification]
set -eu

path=/health/ready
if [ "${1:-}" = --live ]; then
    path=/health/live
    shift
fi
svc=${1:-}
if [ -z "$svc" ]; then
    # argv[0] of PID 1: the entry point execs sav-NAME, so the service is PID 1.
    svc=$(tr '\0' '\n' < /proc/1/cmdline | head -n 1)
    svc=${svc##*/}
    svc=${svc#sav-}
fi
case $svc in
    intake | diagnostics | billing | notification) ;;
    *)
        echo "healthcheck: no SAV service to check (PID 1 runs \"$svc\")"
        exit 0
        ;;
esac
listen=$(savctl config get "$svc.http_listen")
if [ "$listen" = off ]; then
    echo "healthcheck: $svc.http_listen is off: nothing answers the health check" >&2
    exit 1
fi
host=${listen%:*}
port=${listen##*:}
case $host in
    0.0.0.0 | '*' | '') host=127.0.0.1 ;;
    '[::]') host='[::1]' ;;
esac
exec curl --fail --silent --show-error --max-time 3 --output /dev/null "http://$host:$port$path"
