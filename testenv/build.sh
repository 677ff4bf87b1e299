#!/usr/bin/env bash
# Builds the pinned kube-apiserver, etcd and kubectl (and the small test helpers in cmd/)
# from their Go modules into .cache/testenv/<key>/bin and prints that directory. The key
# hashes go.mod, go.sum and the mains, so a rebuild happens only when a pin changes.
# Safe to run concurrently (tests start it in parallel): one build at a time holds a lock,
# the others wait for it and then find the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
key="$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -c1-16)"
out="$root/.cache/testenv/$key/bin"
ready() { [[ -x "$out/kube-apiserver" && -x "$out/etcd" && -x "$out/kubectl" && -x "$out/selector-check" ]]; }
if ready; then echo "$out"; exit 0; fi
mkdir -p "$root/.cache/testenv"
exec 9>"$root/.cache/testenv/$key.lock"
flock 9
if ready; then echo "$out"; exit 0; fi
tmp="$(mktemp -d "$root/.cache/testenv/$key.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$root/.cache/go-build}"
# kube-apiserver must say its version: Cluster API refuses v0.0.0 servers.
v=k8s.io/component-base/version
( cd "$here" && go build -ldflags="-s -w -X $v.gitVersion=v1.36.3 -X $v.gitMajor=1 -X $v.gitMinor=36" -o "$tmp/" ./cmd/... ) >&2
rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$tmp" "$out"
trap - EXIT
echo "$out"
