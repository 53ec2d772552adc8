#!/bin/sh
# Container entry point: runs `ferrocast` with the stream keys (and, in cluster mode, the Redis URL)
# read from files, so that secrets never sit in the pod spec's environment or command line
# (Kubernetes mounts them from Secrets).
#
# When /etc/ferrocast/streams/streams.toml exists (override with STREAMS_FILE), it holds
# `[[streams]]` tables (name, key). They are appended to the configuration file named by
# FERROCAST_CONFIG (if any) into a private copy under $TMPDIR, and FERROCAST_CONFIG points at that
# copy. Give the base file through FERROCAST_CONFIG, not --config: the flag would win over the
# merged copy. Without the streams file this script only execs ferrocast.
set -eu

streams="${STREAMS_FILE:-/etc/ferrocast/streams/streams.toml}"
if [ -f "$streams" ]; then
    umask 077
    merged="${TMPDIR:-/tmp}/ferrocast-config.toml"
    {
        if [ -n "${FERROCAST_CONFIG:-}" ]; then
            cat "$FERROCAST_CONFIG"
            printf '\n'
        fi
        cat "$streams"
    } >"$merged"
    FERROCAST_CONFIG="$merged"
    export FERROCAST_CONFIG
fi
unset STREAMS_FILE

# Cluster mode's Redis URL (it may hold a password) comes the same way: from a file the chart
# mounts from a Secret, /etc/ferrocast/cluster/redis-url (override with REDIS_URL_FILE), never
# from the pod spec's environment.
redis_url="${REDIS_URL_FILE:-/etc/ferrocast/cluster/redis-url}"
if [ -f "$redis_url" ]; then
    FERROCAST_CLUSTER_REDIS_URL="$(cat "$redis_url")"
    export FERROCAST_CLUSTER_REDIS_URL
fi
unset REDIS_URL_FILE
exec /usr/local/bin/ferrocast "$@"
