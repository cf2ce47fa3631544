#!/bin/sh
# Sluice's Redis backups: an RDB snapshot of the Redis (or of each primary
# of a Redis Cluster) every INTERVAL_S, named by the time it was taken, the
# last KEEP kept. docker/compose.yaml runs it as the `backup` service;
# docs/operations.md ("Backups and restore") has the restore procedure.
#
#   backup.sh          every INTERVAL_S, forever
#   backup.sh --once   one snapshot, then exit (a drill, a cron job)
#
# Environment (defaults in brackets):
#   REDIS_HOST [redis]  REDIS_PORT [6379]  or REDIS_SOCKET (a unix socket)
#   REDISCLI_AUTH       the password, if Redis has one (redis-cli reads it)
#   REDIS_USER          an ACL user for it (--user)
#   REDIS_CLUSTER [0]   1: snapshot every primary CLUSTER NODES lists
#   BACKUP_DIR [/backups]  KEEP [24]  INTERVAL_S [3600]
#   STAMP               the snapshot's name instead of the UTC time
#
# `redis-cli --rdb` asks Redis for the same snapshot a new replica gets: it
# does not block Redis, and works with `save ""` and with AOF. A snapshot is
# written under a temporary name and renamed: a file named sluice-*.rdb is
# whole. Expiry times are absolute in an RDB, so a restored key has the TTL
# it had less the time since the snapshot.
set -eu

REDIS_HOST=${REDIS_HOST:-redis}
REDIS_PORT=${REDIS_PORT:-6379}
REDIS_CLUSTER=${REDIS_CLUSTER:-0}
BACKUP_DIR=${BACKUP_DIR:-/backups}
KEEP=${KEEP:-24}
INTERVAL_S=${INTERVAL_S:-3600}

# redis-cli's arguments for host:port, or the socket.
target() {
    if [ -n "${REDIS_SOCKET:-}" ]; then
        set -- -s "$REDIS_SOCKET"
    else
        set -- -h "$1" -p "$2"
    fi
    [ -z "${REDIS_USER:-}" ] || set -- "$@" --user "$REDIS_USER"
    printf '%s\n' "$@"
}

# One snapshot of the node at $1:$2 into $3 (a file name).
snapshot() {
    tmp="$BACKUP_DIR/.$3.tmp"
    # shellcheck disable=SC2046 # one argument per line of `target`
    if redis-cli $(target "$1" "$2") --rdb "$tmp" >/dev/null 2>"$tmp.err"; then
        mv "$tmp" "$BACKUP_DIR/$3"
        rm -f "$tmp.err"
        echo "backup: $BACKUP_DIR/$3 ($(wc -c <"$BACKUP_DIR/$3") bytes)"
    else
        echo "backup: $1:$2 failed: $(cat "$tmp.err")" >&2
        rm -f "$tmp" "$tmp.err"
        return 1
    fi
}

# The primaries of the cluster the node at REDIS_HOST:REDIS_PORT is in.
primaries() {
    # shellcheck disable=SC2046
    redis-cli $(target "$REDIS_HOST" "$REDIS_PORT") cluster nodes |
        awk '$3 ~ /master/ && $3 !~ /fail/ { sub(/@.*/, "", $2); print $2 }'
}

# Keep the newest KEEP snapshots (a cluster's files of one time count once).
prune() {
    ls "$BACKUP_DIR" | sed -n 's/^sluice-\([^-]*\).*\.rdb$/\1/p' | sort -ru |
        tail -n +"$((KEEP + 1))" | while read -r old; do
            rm -f "$BACKUP_DIR"/sluice-"$old".rdb "$BACKUP_DIR"/sluice-"$old"-*.rdb
            echo "backup: removed the snapshot of $old"
        done
}

once() {
    stamp=${STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}
    mkdir -p "$BACKUP_DIR"
    failed=0
    if [ "$REDIS_CLUSTER" = 1 ]; then
        nodes=$(primaries)
        [ -n "$nodes" ] || { echo "backup: no primary in CLUSTER NODES" >&2; return 1; }
        for node in $nodes; do
            host=${node%:*} port=${node##*:}
            snapshot "$host" "$port" "sluice-$stamp-$host-$port.rdb" || failed=1
        done
    else
        snapshot "$REDIS_HOST" "$REDIS_PORT" "sluice-$stamp.rdb" || failed=1
    fi
    # A failed round removes nothing: the last good snapshots stay.
    [ "$failed" = 1 ] || prune
    return "$failed"
}

if [ "${1:-}" = --once ]; then
    once
else
    while :; do
        once || echo "backup: this round failed; the next in ${INTERVAL_S}s" >&2
        sleep "$INTERVAL_S"
    done
fi
