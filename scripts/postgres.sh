#!/usr/bin/env bash
# Starts a local PostgreSQL server for the tests (Debian's cluster, installing PostgreSQL when
# missing) and prints a connection URL for a superuser `atoll`. Idempotent.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  (apt-get update -qq && apt-get install -y -qq postgresql) >&2
fi
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$ver main"; then
  pg_createcluster "$ver" main >&2
fi
if ! pg_lsclusters -h | grep -q "^$ver main .* online"; then
  pg_ctlcluster "$ver" main start >&2
fi
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 50); do
  runuser -u postgres -- psql -p "$port" -tAc "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.2
done
runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -tAc \
  "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'atoll') THEN CREATE ROLE atoll LOGIN SUPERUSER PASSWORD 'atoll'; END IF; END \$\$;" >&2
echo "postgres://atoll:atoll@127.0.0.1:$port/postgres"
