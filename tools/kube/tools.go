//go:build tools

// Package tools pins the Kubernetes test components this project builds from Go modules.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
