#!/usr/bin/env bash
# Starts `atoll serve` on the example fleet (examples/edge-fleet) with three tokens — an admin,
# a contributor and a reader of team `retail` — and prints where to open the web UI.
#   scripts/serve-example.sh [--port 8080] [--dir out/serve] [--atoll target/debug/atoll]
# Prints `key=value` lines (url, admin, contributor, reader, pid, log); the server runs in the
# background until killed (`kill <pid>`). Everything it writes is under --dir and target/.
set -euo pipefail
cd "$(dirname "$0")/.."
port=8080 dir=out/serve atoll=""
while [ $# -gt 0 ]; do
  case "$1" in
    --port) port=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --atoll) atoll=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$atoll" ]; then
  cargo build -q -p atoll >&2
  atoll=target/debug/atoll
fi
bash examples/upstream-packages/make-repo.sh target/upstream-packages >&2
rm -rf "$dir" && mkdir -p "$dir"
db="sqlite:$dir/atoll.db"
admin=$($atoll token create --database "$db" --name alice --team platform --role admin)
contributor=$($atoll token create --database "$db" --name bob --team retail --role contributor)
reader=$($atoll token create --database "$db" --name carol --team retail --role reader)
$atoll serve --listen "127.0.0.1:$port" --database "$db" --repo "$dir/fleet" \
  --upstream-base examples/edge-fleet --upstream-root target/upstream-packages \
  > "$dir/serve.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fs "$url/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
  sleep 0.2
done
# The example fleet as one change, applied as a task; wait for its commit.
task=$(for f in examples/edge-fleet/*.yaml; do cat "$f"; echo ---; done |
  curl -fs -X POST -H "Authorization: Bearer $admin" -H 'Content-Type: application/yaml' \
    --data-binary @- "$url/api/v1/apply?message=the+example+fleet" | sed 's/.*"status":"\([^"]*\)".*/\1/')
for _ in $(seq 1 600); do
  state=$(curl -fs -H "Authorization: Bearer $admin" "$url$task" | sed 's/.*"state":"\([a-z]*\)".*/\1/')
  [ "$state" = running ] || break
  sleep 0.2
done
if [ "$state" != succeeded ]; then
  curl -s -H "Authorization: Bearer $admin" "$url$task" >&2
  kill $pid
  exit 1
fi
echo "url=$url/ui/"
echo "admin=$admin"
echo "contributor=$contributor"
echo "reader=$reader"
echo "pid=$pid"
echo "log=$dir/serve.log"
