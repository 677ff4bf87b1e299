#!/usr/bin/env bash
# Builds a `kubectl` stand-in that runs real kustomize (sigs.k8s.io/kustomize/kustomize/v5)
# from the Go module proxy into .cache/bin, for machines without kubectl.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .cache/bin .cache/go
if [ ! -x .cache/bin/kustomize ]; then
  GOBIN="$PWD/.cache/bin" GOPATH="$PWD/.cache/go" GOFLAGS=-modcacherw go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
fi
cat > .cache/bin/kubectl <<'SH'
#!/usr/bin/env bash
# `kubectl kustomize DIR` -> `kustomize build DIR`
[ "$1" = kustomize ] || { echo "only 'kubectl kustomize' is provided here" >&2; exit 2; }
shift; exec "$(dirname "$0")/kustomize" build "$@"
SH
chmod +x .cache/bin/kubectl
