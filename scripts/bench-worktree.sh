#!/usr/bin/env bash
# A one-cluster render with a work tree next to the same render into a bare repository, at N
# clusters (default 10,000; the issue's target: the work tree within 1.5x the bare one).
# Both repositories get a full render of the same generated fleet first; then one cluster's
# labels change (which changes its package) and each renders that change. Prints wall time,
# CPU and peak RSS from /usr/bin/time, and how many files the work tree holds.
set -euo pipefail
n="${1:-10000}"
cd "$(dirname "$0")/.."
cargo build --release -q -p atoll
atoll="$PWD/target/release/atoll"
work="$(mktemp -d "${TMPDIR:-/tmp}/atoll-worktree.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$atoll" bench gen "$work/gen" -n "$n" >/dev/null
export SOURCE_DATE_EPOCH=1700000000 ATOLL_UPSTREAM_ROOTS="$work/gen"
fleet="$work/gen/fleet"
timed() { # label, then the command
  local label="$1"; shift
  /usr/bin/time -o "$work/time" -f "%e s wall, %U + %S s CPU, %M KiB peak RSS" "$@" >/dev/null
  printf '| %s | %s |\n' "$label" "$(cat "$work/time")"
}
echo "work tree vs bare, $n clusters ($(nproc) cores, $(date -u +%F))"
echo "| render | measured |"
echo "|---|---|"
timed "full render, bare" "$atoll" render "$fleet" --repo "$work/bare" --bare
timed "full render, work tree" "$atoll" render "$fleet" --repo "$work/tree"
echo "| files in the work tree | $(find "$work/tree" -path "$work/tree/.git" -prune -o -type f -print | wc -l) |"
# One cluster's labels: the first cluster of eu-west moves to the other format and to staging.
f="$fleet/clusters/eu-west.yaml"
awk 'BEGIN{d=0} /^    format:/ && !d {print "    format: other"; next} /^    env:/ && !d {print "    env: staging"; d=1; next} {print}' "$f" > "$f.new"
mv "$f.new" "$f"
for i in 1 2 3; do
  timed "one cluster's labels, bare (run $i)" "$atoll" render "$fleet" --repo "$work/bare" -m "one site"
  timed "one cluster's labels, work tree (run $i)" "$atoll" render "$fleet" --repo "$work/tree" -m "one site"
  # Back and forth, so that every run is a real change.
  if grep -q "env: staging" "$f"; then sed -i '0,/env: staging/s//env: prod/' "$f"; else sed -i '0,/env: prod/s//env: staging/' "$f"; fi
done
