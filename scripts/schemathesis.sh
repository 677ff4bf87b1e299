#!/usr/bin/env bash
# Runs schemathesis (from PyPI, into an ignored venv) against a running `atoll serve`:
# every operation of /openapi.json, generated and fuzzed requests, stateful sequences; fails
# on any 5xx. Usage: scripts/schemathesis.sh URL TOKEN
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.cache/venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q 'schemathesis==4.32.5' >&2
fi
exec "$venv/bin/st" run "$1/openapi.json" -H "Authorization: Bearer $2" \
  --checks not_a_server_error --max-examples "${ST_EXAMPLES:-10}" --workers 2 --seed 1
