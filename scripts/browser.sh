#!/usr/bin/env bash
# What the web UI's browser tests need, installed when missing: Debian's chromium (apt) and
# playwright-core + axe-core from npm into ui-tests/node_modules (versions pinned by
# ui-tests/package-lock.json). Safe to run from several tests at once. Not needed to build or
# run atoll itself.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache
exec 9>.cache/browser.lock
flock 9
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
fi
if [ ! -f ui-tests/node_modules/.package-lock.json ] ||
   ! cmp -s ui-tests/package-lock.json ui-tests/node_modules/.atoll-installed; then
  (cd ui-tests && npm ci --no-audit --no-fund --loglevel=error >&2)
  cp ui-tests/package-lock.json ui-tests/node_modules/.atoll-installed
fi
command -v chromium
