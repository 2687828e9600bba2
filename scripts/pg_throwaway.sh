#!/usr/bin/env bash
# A throwaway PostgreSQL for tests and benchmarks: a fresh cluster (initdb, trust auth on loopback, fsync off) on a
# free port, run by the unprivileged `postgres` user when started as root (PostgreSQL refuses to run as root).
# Prints the URL on stdout; everything else goes to stderr.
#   export SEMCODER_TEST_POSTGRES_URL=$(bash scripts/pg_throwaway.sh)      # start
#   bash scripts/pg_throwaway.sh stop                                       # stop the last one started
set -euo pipefail
state=/tmp/semcoder-pg-throwaway.dir
initdb=$(command -v initdb || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
bin=$(dirname "$(readlink -f "${initdb:-/nonexistent/initdb}")")
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ "${1:-}" = stop ]; then
    [ -f "$state" ] && as_owner "$bin/pg_ctl" -D "$(cat "$state")/data" -m immediate stop >&2 || true
    exit 0
fi
[ -x "$bin/initdb" ] || { echo "pg_throwaway: no initdb (apt-get install postgresql)" >&2; exit 1; }
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home postgres
fi
dir=$(mktemp -d /tmp/semcoder-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner "$bin/initdb" -D "$dir/data" -A trust -U semcoder -E UTF8 --no-sync >&2
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
echo "$dir" > "$state"
echo "postgresql://semcoder@127.0.0.1:$port/postgres"
