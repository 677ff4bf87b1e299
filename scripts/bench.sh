#!/usr/bin/env bash
# Reproduces the README's benchmark report in one command: builds atoll in release mode and
# runs `atoll bench run` (fleets of 1,000 and 10,000 clusters, kubectl kustomize side by side).
# Arguments are passed on, e.g. `scripts/bench.sh -n 1000 --kustomize-sample 200`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p atoll
kubectl_bin="$(command -v kubectl || true)"
if [[ -z "$kubectl_bin" ]]; then
  # No kubectl here: the real one, built from its Go module by testenv/.
  kubectl_bin="$(testenv/build.sh)/kubectl"
fi
exec target/release/atoll bench run --kubectl "$kubectl_bin" --report target/bench/report.md "$@"
