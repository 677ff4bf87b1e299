#!/usr/bin/env bash
# Builds a real Git repository of upstream packages with one tag per revision (v1, v2), as a
# package catalog would publish them. Usage: make-repo.sh DEST
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=$1
rm -rf "$dest"; mkdir -p "$dest"
git -C "$dest" init -q -b main
for v in v1 v2; do
  find "$dest" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
  cp -r "$here/$v/." "$dest/"
  git -C "$dest" add -A
  GIT_AUTHOR_DATE="2026-01-01T00:00:00Z" GIT_COMMITTER_DATE="2026-01-01T00:00:00Z" \
    git -C "$dest" -c user.name=catalog -c user.email=catalog@example.net commit -q -m "nginx package $v"
  git -C "$dest" tag "$v"
done
