#!/bin/bash
# Container HEALTHCHECK: GET /healthz on the loopback, without curl or wget in the image.
# HEALTHCHECK_PORT names the HTTP port when it is not 8080.
set -eu
port="${HEALTHCHECK_PORT:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 3 _proto status _rest <&3
[ "$status" = 200 ]
