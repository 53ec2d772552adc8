#!/bin/bash
# Container HEALTHCHECK: GET /healthz on the loopback, without curl or wget in the image.
# /healthz is on the admin listener (listen.admin; 404 on the public one), so the port is
# HEALTHCHECK_PORT when set, else the port of FERROCAST_LISTEN_ADMIN when that is set, else the
# admin listener's default, 9091. The loopback reaches it both at the image's default
# (127.0.0.1:9091) and when it is bound to 0.0.0.0 to be scraped from outside the container.
set -eu
admin="${FERROCAST_LISTEN_ADMIN:-}"
port="${HEALTHCHECK_PORT:-${admin:+${admin##*:}}}"
port="${port:-9091}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 3 _proto status _rest <&3
[ "$status" = 200 ]
