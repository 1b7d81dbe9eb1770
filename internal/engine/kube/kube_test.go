package kube

import (
	"context"
	"io"
	"log/slog"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/itest"
)

func newEngine(t *testing.T, parts itest.Parts, k itest.Kube) *Engine {
	t.Helper()
	e, err := New(Config{Kubeconfig: k.Kubeconfig, Gateway: k.Gateway, PodCIDR: k.PodCIDR,
		InsecureRegistries: []string{parts.Registry}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestConformance(t *testing.T) {
	parts, k := itest.Need(t), itest.NeedKube(t)
	image := parts.BusyboxImage(t)
	enginetest.Run(t, enginetest.Harness{
		New:         func(t *testing.T) engine.Engine { return newEngine(t, parts, k) },
		Image:       image,
		Auth:        parts.Auth(),
		Missing:     parts.Registry + "/coligo-test/busybox:no-such-tag",
		Unreachable: "127.0.0.1:1/coligo-test/busybox:1",
		NoPrepare:   true, HostsFixedAtStart: true, NodeImages: true, IsolationByPolicy: true,
	})
}

// TestProjectObjects checks what a project is in the cluster: a labelled
// namespace whose NetworkPolicy admits only the project, coligo and the
// gateway (the test cluster's bridge does not enforce it), pull secrets of
// type dockerconfigjson, and nothing left after a purge.
func TestProjectObjects(t *testing.T) {
	parts, k := itest.Need(t), itest.NeedKube(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts, k)
	ctx := context.Background()
	p := enginetest.Project(t, e)
	if _, err := e.Run(ctx, engine.Spec{ID: "a", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "1000"},
		Mounts: []engine.Mount{{Dir: "/etc/x", Files: map[string][]byte{"k": []byte("v")}}}}); err != nil {
		t.Fatal(err)
	}
	ns, err := e.client.CoreV1().Namespaces().Get(ctx, Namespace(p), metav1.GetOptions{})
	if err != nil || ns.Labels[labelProject] != p {
		t.Fatalf("namespace of the project: %v %v", ns.Labels, err)
	}
	pol, err := e.client.NetworkingV1().NetworkPolicies(Namespace(p)).Get(ctx, "coligo-project", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.Spec.PodSelector.MatchLabels) != 0 || len(pol.Spec.Ingress) != 1 || len(pol.Spec.Ingress[0].From) != 3 ||
		pol.Spec.Ingress[0].From[0].PodSelector == nil || pol.Spec.Ingress[0].From[0].NamespaceSelector != nil ||
		pol.Spec.Ingress[0].From[2].IPBlock.CIDR != k.Gateway.String()+"/32" {
		t.Errorf("network policy %+v", pol.Spec)
	}
	pod, err := e.client.CoreV1().Pods(Namespace(p)).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || len(pod.Spec.ImagePullSecrets) != 1 || *pod.Spec.AutomountServiceAccountToken {
		t.Fatalf("pod: %+v %v", pod.Spec, err)
	}
	s, err := e.client.CoreV1().Secrets(Namespace(p)).Get(ctx, pod.Spec.ImagePullSecrets[0].Name, metav1.GetOptions{})
	if err != nil || s.Type != "kubernetes.io/dockerconfigjson" {
		t.Fatalf("pull secret: %v %v", s.Type, err)
	}
	if err := e.Remove(ctx, p, "a"); err != nil {
		t.Fatal(err)
	}
	if l, _ := e.client.CoreV1().Secrets(Namespace(p)).List(ctx, metav1.ListOptions{LabelSelector: labelInstance + "=a"}); len(l.Items) != 0 {
		t.Errorf("the files of a removed instance remain: %d secrets", len(l.Items))
	}
	if err := e.Purge(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CoreV1().Namespaces().Get(ctx, Namespace(p), metav1.GetOptions{}); err == nil {
		t.Error("the namespace remains after purge")
	}
}
