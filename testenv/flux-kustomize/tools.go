//go:build tools

// Package tools pins Flux's kustomize-controller (built with `go build
// github.com/fluxcd/kustomize-controller`) for atoll's delivery tests.
package tools

import _ "github.com/fluxcd/kustomize-controller"
