#!/usr/bin/env bash
# Coverage-guided fuzzing of the YAML loader and the selector parser with libFuzzer, on stable
# Rust (the sanitizer-coverage instrumentation cargo-fuzz adds, given as plain codegen flags).
# Usage: scripts/fuzz.sh [SECONDS per target, default 60]. A crash, a hang (over 10 s per
# input) or an allocation over 2 GiB fails the run; the input is left in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_FUZZ:-$PWD/../target/fuzz}"
# With an explicit --target, RUSTFLAGS reach only the fuzzed code, not build scripts.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --quiet --bins --target "$host"
bin="$CARGO_TARGET_DIR/$host/release"
for t in yaml_loader selector; do
  mkdir -p "artifacts/$t" "$CARGO_TARGET_DIR/corpus/$t"
  echo "fuzzing $t for ${secs}s"
  "$bin/$t" "$CARGO_TARGET_DIR/corpus/$t" "corpus/$t" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 2>&1 | tail -n 12
done
