#!/bin/sh
# The entry point of the SAV image: the first argument names what the container runs.
#   intake | diagnostics | billing | notification [ARGS]   the service (sav-NAME ARGS, e.g. --check-config), as
#                                                          PID 1: SIGTERM finishes the message in hand and stops
#   savctl ARGS                                            the operator tool
#   init                                                   makes the keys, passwords and Redis ACL (init.sh)
#   install-keys NAME [DIR]                                copies a Kubernetes Secret's keys (install-keys.sh)
#   help                                                   this text
#   anything else                                          run as given (sh, sleep infinity...)
# The configuration is $SAV_CONFIG (/etc/sav/sav.conf in the image); SAV_<SECTION>_<KEY> override its keys.
set -eu
here=$(dirname "$0")  # /usr/lib/sav in the image

cmd=${1:-help}
case $cmd in
    intake | diagnostics | billing | notification)
        shift
        exec "sav-$cmd" "$@"
        ;;
    savctl)
        shift
        exec savctl "$@"
        ;;
    init)
        shift
        exec "$here/init.sh" "$@"
        ;;
    install-keys)
        shift
        exec "$here/install-keys.sh" "$@"
        ;;
    help | --help | -h)
        sed -n '2,10s/^# \{0,1\}//p' "$0"
        ;;
    *)
        exec "$@"
        ;;
esac
