//go:build tools

// Package tools pins Flux's source-controller (built with `go build
// github.com/fluxcd/source-controller`) for atoll's delivery tests.
package tools

import _ "github.com/fluxcd/source-controller"
