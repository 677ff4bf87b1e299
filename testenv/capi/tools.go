//go:build tools

// Package tools pins Cluster API v1.14 (core, kubeadm bootstrap, kubeadm control plane) and
// its Docker provider with the in-memory backend, built with `go build` for atoll's
// lifecycle tests.
package tools

import (
	_ "sigs.k8s.io/cluster-api/bootstrap/kubeadm"
	_ "sigs.k8s.io/cluster-api/controlplane/kubeadm"
	_ "sigs.k8s.io/cluster-api/core"
	_ "sigs.k8s.io/cluster-api/test/infrastructure/docker"
)
