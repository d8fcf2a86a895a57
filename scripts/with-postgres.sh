#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server, for the fleet tests.
#
# Installs PostgreSQL from Debian's packages if it is missing, creates a cluster in a temporary
# directory, starts it listening only on a Unix socket in that directory (no TCP port, nothing
# shared with the machine), exports FOURFOLD_TEST_POSTGRES (libpq key-value form, without a
# database name: the tests make a database each), runs the command, and removes the cluster.
# PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user.
set -euo pipefail

find_bin() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
    echo "== apt-get install postgresql" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -q >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
    BIN="$(find_bin)"
fi

DIR="$(mktemp -d /tmp/fourfold-pg.XXXXXX)"
AS=()
if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$DIR"
    AS=(runuser -u postgres --)
fi

cleanup() {
    "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

"${AS[@]}" "$BIN/initdb" -D "$DIR/data" --auth=trust -U postgres -E UTF8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
"${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
    -o "-k $DIR -c listen_addresses='' -c max_connections=400 -c fsync=off -c synchronous_commit=off" \
    start >/dev/null \
    || { cat "$DIR/server.log" >&2; exit 1; }

export FOURFOLD_TEST_POSTGRES="host=$DIR user=postgres"
echo "== PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on $DIR" >&2
"$@"
