#!/bin/sh
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  # The official image turns protected mode off: the container network is the boundary.
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no --bind '* -::*' --dir /data "$@"
fi
exec "$@"
