#!/bin/bash
# The postgres image's start-up contract, as the Compose stack uses it: a first start creates
# the cluster with POSTGRES_USER as superuser, the password from POSTGRES_PASSWORD_FILE
# (password auth from other hosts) and the database POSTGRES_DB; every start then runs the
# server as the postgres user, listening on all of the container's addresses.
set -euo pipefail
bin=/usr/lib/postgresql/15/bin
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

install -d -o postgres -g postgres -m 700 "$PGDATA"
install -d -o postgres -g postgres -m 2775 /run/postgresql
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  pwfile=$(mktemp)
  chown postgres "$pwfile"
  printf '%s\n' "$(< "$POSTGRES_PASSWORD_FILE")" > "$pwfile"
  as_postgres "$bin/initdb" --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
    | as_postgres "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  "$bin/postgres" -D "$PGDATA" -c listen_addresses='*'
