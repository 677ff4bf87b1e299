#!/usr/bin/env bash
# Builds the pinned kube-apiserver, etcd and kubectl from their Go modules into
# .cache/testenv/<key>/bin and prints that directory. The key hashes go.mod,
# go.sum and the mains, so a rebuild happens only when a pin changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
key="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -c1-16)"
out="$root/.cache/testenv/$key/bin"
if [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" ]]; then
  echo "$out"; exit 0
fi
mkdir -p "$out.tmp"
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$root/.cache/go-build}"
( cd "$here" && go build -ldflags='-s -w' -o "$out.tmp/" ./cmd/... ) >&2
rm -rf "$out" && mv "$out.tmp" "$out"
echo "$out"
