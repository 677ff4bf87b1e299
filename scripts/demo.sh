#!/usr/bin/env bash
# Builds atoll, renders examples/edge-fleet into a new Git repository (out/fleet), and plans
# adding a site. Everything it writes is under out/ and target/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p atoll
atoll=target/debug/atoll
bash examples/upstream-packages/make-repo.sh target/upstream-packages   # the kpt package catalog (tags v1, v2)
rm -rf out/fleet
echo "== plan: examples/edge-fleet against an empty repository"
$atoll plan examples/edge-fleet --repo out/fleet | tail -n 16
echo "== render"
$atoll render examples/edge-fleet --repo out/fleet
echo "== render again: nothing changed, no commit"
$atoll render examples/edge-fleet --repo out/fleet
echo "== plan: what happens if we add the site in examples/what-if?"
$atoll plan examples/edge-fleet examples/what-if --repo out/fleet
