#!/usr/bin/env bash
# Builds real Kubernetes parts for the tests from their pinned Go modules and prints the
# folder of the binaries. Each family is a Go module of its own, built into
# .cache/testenv/<family>-<key>/bin where the key hashes its go.mod, go.sum and mains, so a
# rebuild happens only when a pin changes:
#   build.sh        kube-apiserver, etcd, kubectl, selector-check, gitserver (testenv/)
#   build.sh flux   Flux source-controller and kustomize-controller v1.9.6 (testenv/flux-*)
#   build.sh capi   Cluster API v1.14.2 core, kubeadm bootstrap, kubeadm control plane and the
#                   Docker provider v1.14.4 (in-memory backend), with their CRDs and webhook
#                   registrations (testenv/capi)
# Safe to run concurrently (tests start it in parallel): one build per family at a time holds
# a lock, the others wait for it and then find the result.
set -euo pipefail
# The whole script is one function, read before it runs: editing this file while a build
# runs does not change what that build does.
main() {
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
family="${1:-core}"
case "$family" in
  core)
    mods=("$here")
    bins=(kube-apiserver etcd kubectl selector-check gitserver)
    ;;
  flux)
    mods=("$here/flux-source" "$here/flux-kustomize")
    bins=(source-controller kustomize-controller)
    ;;
  capi)
    mods=("$here/capi")
    bins=(capi-core capi-kubeadm-bootstrap capi-kubeadm-control-plane capd)
    ;;
  *) echo "unknown family $family (core, flux, capi)" >&2; exit 2 ;;
esac
files=()
for m in "${mods[@]}"; do
  files+=("$m/go.mod" "$m/go.sum")
  for f in "$m"/*.go "$m"/cmd/*/*.go; do [[ -e "$f" ]] && files+=("$f"); done
done
key="$(cat "${files[@]}" | sha256sum | cut -c1-16)"
out="$root/.cache/testenv/$family-$key/bin"
ready() { for b in "${bins[@]}"; do [[ -x "$out/$b" ]] || return 1; done; }
if ready; then echo "$out"; exit 0; fi
mkdir -p "$root/.cache/testenv"
exec 9>"$root/.cache/testenv/$family-$key.lock"
flock 9
if ready; then echo "$out"; exit 0; fi
tmp="$(mktemp -d "$root/.cache/testenv/$family-$key.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
export GOFLAGS="${GOFLAGS:--trimpath}" CGO_ENABLED=0
export GOCACHE="${GOCACHE:-$root/.cache/go-build}"
case "$family" in
  core)
    # kube-apiserver must say its version: Cluster API refuses v0.0.0 servers.
    v=k8s.io/component-base/version
    ( cd "$here" && go build -ldflags="-s -w -X $v.gitVersion=v1.36.3 -X $v.gitMajor=1 -X $v.gitMinor=36" -o "$tmp/" ./cmd/... ) >&2
    ;;
  flux)
    ( cd "$here/flux-source" && go build -ldflags="-s -w" -o "$tmp/source-controller" github.com/fluxcd/source-controller ) >&2
    ( cd "$here/flux-kustomize" && go build -ldflags="-s -w" -o "$tmp/kustomize-controller" github.com/fluxcd/kustomize-controller ) >&2
    # Their own CRDs, from the same module versions.
    mkdir -p "$tmp/crds"
    cp "$(cd "$here/flux-source" && go list -m -f '{{.Dir}}' github.com/fluxcd/source-controller)"/config/crd/bases/*.yaml "$tmp/crds/"
    cp "$(cd "$here/flux-kustomize" && go list -m -f '{{.Dir}}' github.com/fluxcd/kustomize-controller)"/config/crd/bases/*.yaml "$tmp/crds/"
    chmod -R u+w "$tmp/crds"
    ;;
  capi)
    m="$here/capi"
    capi="sigs.k8s.io/cluster-api"
    # Both kubeadm mains are called kubeadm: each gets its own -o FILE.
    for pair in capi-core:$capi/core capi-kubeadm-bootstrap:$capi/bootstrap/kubeadm \
      capi-kubeadm-control-plane:$capi/controlplane/kubeadm capd:$capi/test/infrastructure/docker; do
      ( cd "$m" && go build -tags=fieldsv1string -ldflags="-s -w" -o "$tmp/${pair%%:*}" "${pair#*:}" ) >&2
    done
    # CRDs and webhook registrations from the same module versions, one folder per manager.
    core="$(cd "$m" && go list -m -f '{{.Dir}}' $capi)"
    docker="$(cd "$m" && go list -m -f '{{.Dir}}' $capi/test)/infrastructure/docker"
    for pair in capi-core:"$core/core" capi-kubeadm-bootstrap:"$core/bootstrap/kubeadm" \
      capi-kubeadm-control-plane:"$core/controlplane/kubeadm" capd:"$docker"; do
      d="$tmp/config/${pair%%:*}"
      mkdir -p "$d/crds"
      cp "${pair#*:}"/config/crd/bases/*.yaml "$d/crds/"
      cp "${pair#*:}"/config/webhook/manifests.yaml "$d/webhooks.yaml"
    done
    chmod -R u+w "$tmp/config"
    ;;
esac
rm -rf "$out" && mkdir -p "$(dirname "$out")" && mv "$tmp" "$out"
trap - EXIT
echo "$out"
}
main "$@"
