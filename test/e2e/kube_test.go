package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/coligo/coligo/internal/itest"
)

// TestKubeHardDeleteRemovesNamespace: on the kubernetes engine a project is
// a namespace holding its Indexed Jobs (job runs), ReplicaSets (app
// revisions), pull secrets and network policy; a hard delete removes the
// namespace with everything in it.
func TestKubeHardDeleteRemovesNamespace(t *testing.T) {
	k := itest.NeedKube(t)
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(rc)
	k.Engine(t)
	s := startServerOn(t, "kubernetes")
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "kshred")
	doneAndRunning(t, c, p.ID, image)
	deployApp(t, c, p.ID, testApp("web", image))
	ns := "coligo-" + p.ID
	rs, err := kc.AppsV1().ReplicaSets(ns).Get(ctx, "web-00001", metav1.GetOptions{})
	if err != nil || *rs.Spec.Replicas != 1 {
		t.Fatalf("replica set of revision web-00001: %+v %v", rs, err)
	}
	if pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "coligo.dev/set=web-00001"}); err != nil ||
		len(pods.Items) != 1 || pods.Items[0].OwnerReferences[0].Name != "web-00001" {
		t.Fatalf("pods of revision web-00001: %+v %v", pods, err)
	}
	got, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Labels["coligo.dev/project"] != p.ID {
		t.Fatalf("namespace %s: %v %v", ns, got, err)
	}
	jobs, err := kc.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 2 {
		t.Fatalf("jobs in %s: %d %v", ns, len(jobs.Items), err)
	}
	secrets, err := kc.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "coligo.dev/pull=true"})
	if err != nil || len(secrets.Items) != 1 || secrets.Items[0].Type != "kubernetes.io/dockerconfigjson" {
		t.Fatalf("pull secrets in %s: %+v %v", ns, secrets, err)
	}
	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	if _, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after the hard delete: %v", ns, err)
	}
	pods, err := kc.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "coligo.dev/run=running"})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("pods of the deleted project remain: %d %v", len(pods.Items), err)
	}
}

// running is what the engine of s runs for a project now: the containerd
// tasks of its namespace (local), or its pods that are running and not on
// their way out (kubernetes).
func running(t *testing.T, s *server, project string) []string {
	t.Helper()
	ns := "coligo-" + project
	if s.engine != "kubernetes" {
		out, _ := exec.Command("ctr", "--address", os.Getenv("COLIGO_TEST_CONTAINERD"), "-n", ns, "tasks", "ls").Output()
		var ids []string
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[2] == "RUNNING" {
				ids = append(ids, f[0])
			}
		}
		return ids
	}
	rc, err := clientcmd.BuildConfigFromFlags("", itest.NeedKube(t).Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := kubernetes.NewForConfigOrDie(rc).CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == "Running" {
			names = append(names, p.Name)
		}
	}
	return names
}
