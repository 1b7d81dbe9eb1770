package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/itest"
	"github.com/coligo/coligo/internal/quota"
)

func newEngine(t *testing.T, parts itest.Parts, k itest.Kube) *Engine {
	t.Helper()
	e, err := New(Config{Kubeconfig: k.Engine(t), Gateway: k.Gateway, PodCIDR: k.PodCIDR,
		InsecureRegistries: []string{parts.Registry, "127.0.0.1:1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// setup gives a test the real parts, the test cluster, the test image, an
// engine with the rights of deploy/kubernetes/rbac.yaml and a fresh project.
func setup(t *testing.T) (itest.Parts, itest.Kube, string, *Engine, string) {
	t.Helper()
	parts, k := itest.Need(t), itest.NeedKube(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts, k)
	return parts, k, image, e, enginetest.Project(t, e)
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
	parts, k, image, e, p := setup(t)
	ctx := context.Background()
	if _, err := e.Run(ctx, engine.Spec{ID: "a", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "1000"},
		Env: []string{"TOKEN=s3cr3t-in-env"}, Mounts: []engine.Mount{{Dir: "/etc/x", Files: map[string][]byte{"k": []byte("v")}}}}); err != nil {
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
	// Egress: allow-all by default, without the private ranges; an allowed
	// destination takes effect in the policy at once.
	if len(pol.Spec.Egress) != 4 || pol.Spec.Egress[3].To[0].IPBlock.CIDR != "0.0.0.0/0" || !slices.Contains(pol.Spec.Egress[3].To[0].IPBlock.Except, "10.0.0.0/8") {
		t.Errorf("egress of a new project: %+v", pol.Spec.Egress)
	}
	if err := e.SetEgress(ctx, p, []netip.Prefix{netip.MustParsePrefix("10.250.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	pol, err = e.client.NetworkingV1().NetworkPolicies(Namespace(p)).Get(ctx, "coligo-project", metav1.GetOptions{})
	if err != nil || len(pol.Spec.Egress) != 4 || pol.Spec.Egress[3].To[0].IPBlock.CIDR != "10.250.0.0/24" {
		t.Errorf("egress after SetEgress: %+v %v", pol.Spec.Egress, err)
	}
	pod, err := e.client.CoreV1().Pods(Namespace(p)).Get(ctx, "a", metav1.GetOptions{})
	if err != nil || len(pod.Spec.ImagePullSecrets) != 1 || *pod.Spec.AutomountServiceAccountToken {
		t.Fatalf("pod: %+v %v", pod.Spec, err)
	}
	if sc := pod.Spec.Containers[0].SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 ||
		sc.Capabilities.Drop[0] != "ALL" || slices.Contains(sc.Capabilities.Add, "NET_RAW") || slices.Contains(sc.Capabilities.Add, "MKNOD") {
		t.Errorf("the container is not confined: %+v", sc)
	}
	if pod.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("a workload with registry credentials pulls %s, want Always", pod.Spec.Containers[0].ImagePullPolicy)
	}
	if ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || ns.Labels["pod-security.kubernetes.io/warn"] != "restricted" {
		t.Errorf("namespace pod security labels: %v", ns.Labels)
	}
	if b, _ := json.Marshal(pod); bytes.Contains(b, []byte("s3cr3t-in-env")) || len(pod.Spec.Containers[0].EnvFrom) != 1 {
		t.Errorf("the pod spec holds an environment value, or takes it from no Secret: %s", b)
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

// TestEngineBoundary: Kubernetes errors do not leave the engine, and a
// namespace coligo did not make is neither adopted nor deleted.
func TestEngineBoundary(t *testing.T) {
	parts, k, image, e, p := setup(t)
	ctx := context.Background()
	var se apierrors.APIStatus
	if err := e.Stop(ctx, p, "missing", 0); !errors.Is(err, core.ErrNotFound) || errors.As(err, &se) {
		t.Errorf("stop of a missing instance: %v (%T), want core.ErrNotFound only", err, errors.Unwrap(err))
	}
	err := e.RunArray(ctx, engine.Array{Name: "Not_A_Name", Project: p, Indices: []int{0}, Template: engine.Spec{Project: p, Image: image, Auth: parts.Auth()}})
	if err == nil || errors.As(err, &se) {
		t.Errorf("an array the API refuses: %v, want an error that is not the API's type", err)
	}
	// A namespace of the same name that coligo did not label is left alone.
	admin, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(admin)
	foreign := "f" + p[1:]
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace(foreign)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kc.CoreV1().Namespaces().Delete(context.Background(), Namespace(foreign), metav1.DeleteOptions{})
	})
	if _, err := e.Run(ctx, engine.Spec{ID: "x", Project: foreign, Image: image, Auth: parts.Auth(), Command: []string{"true"}}); err == nil || !strings.Contains(err.Error(), "not coligo's") {
		t.Errorf("run in a foreign namespace: %v", err)
	}
	if err := e.Purge(ctx, foreign); err == nil {
		t.Error("purge deleted a namespace coligo did not make")
	}
	if ns, err := kc.CoreV1().Namespaces().Get(ctx, Namespace(foreign), metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("the foreign namespace after run and purge: %v", err)
	}
}

// TestArrayIsOneIndexedJob runs a gapped array (1,3,5-7) with one retry:
// one Indexed Job whose pods get the JOB_INDEX of their completion index,
// their retry count and their instance name, and show in List as the job
// run controller names them.
func TestArrayIsOneIndexedJob(t *testing.T) {
	parts, _, image, e, p := setup(t)
	ctx := context.Background()
	a := engine.Array{Name: "gaps", Project: p, Indices: []int{1, 3, 5, 6, 7}, Parallelism: 2, RetryLimit: 1,
		Deadline: time.Hour, IndexLabel: "coligo.index", RetryLabel: "coligo.retry",
		Template: engine.Spec{Project: p, Image: image, Auth: parts.Auth(), Env: []string{"A=b"}, Labels: map[string]string{"coligo.jobrun": "gaps"},
			Command: []string{"sh", "-c", `echo "i=$JOB_INDEX r=$JOB_INDEX_RETRY_COUNT h=$HOSTNAME"; [ "$JOB_INDEX$JOB_INDEX_RETRY_COUNT" = 50 ] && exit 2; exit 0`}}}
	if err := e.RunArray(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := e.RunArray(ctx, a); err != nil { // idempotent
		t.Fatal(err)
	}
	job, err := e.client.BatchV1().Jobs(Namespace(p)).Get(ctx, "gaps", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *job.Spec.CompletionMode != "Indexed" || *job.Spec.Completions != 5 || *job.Spec.Parallelism != 2 ||
		*job.Spec.BackoffLimitPerIndex != 1 || *job.Spec.ActiveDeadlineSeconds != 3600 {
		t.Errorf("job spec %+v", job.Spec)
	}
	want := map[string]int{"gaps-1-0": 0, "gaps-3-0": 0, "gaps-5-0": 2, "gaps-5-1": 0, "gaps-6-0": 0, "gaps-7-0": 0}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ins, err := e.List(ctx, p, map[string]string{"coligo.jobrun": "gaps"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, in := range ins {
			if in.State == engine.StateExited {
				got[in.ID] = in.ExitCode
				if in.Labels["coligo.index"]+"-"+in.Labels["coligo.retry"] != strings.TrimPrefix(in.ID, "gaps-") {
					t.Fatalf("instance %s has labels %v", in.ID, in.Labels)
				}
			}
		}
		if maps.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exited instances %v, want %v", got, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out bytes.Buffer
	if err := e.Logs(ctx, p, "gaps-5-1", &out, engine.LogOptions{}); err != nil || strings.TrimSpace(out.String()) != "i=5 r=1 h=gaps-5-1" {
		t.Errorf("logs of the retry of index 5: %q %v", out.String(), err)
	}
	if err := e.RemoveArray(ctx, p, "gaps"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ins, _ := e.List(ctx, p, nil)
		if len(ins) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances of a removed array: %+v", ins)
		}
	}
}

// TestSetIsAReplicaSet runs instances of one set as the pods of a
// ReplicaSet whose count follows Run and Stop: the stopped instance is the
// pod that goes, an exit shows as the instance's though the pod restarts
// its container, and the ReplicaSet goes with the last instance.
func TestSetIsAReplicaSet(t *testing.T) {
	parts, _, image, e, p := setup(t)
	ctx := context.Background()
	ns := Namespace(p)
	spec := func(id string, cmd ...string) engine.Spec {
		return engine.Spec{ID: id, Project: p, Set: "web-00001", Image: image, Auth: parts.Auth(), Command: cmd,
			Env: []string{"HOSTNAME=" + id}, Labels: map[string]string{"coligo.revision": "web-00001"}}
	}
	for _, id := range []string{"web-00001-a", "web-00001-b", "web-00001-c"} {
		in, err := e.Run(ctx, spec(id, "sleep", "1000"))
		if err != nil || in.ID != id || in.State != engine.StateRunning || in.IP == "" {
			t.Fatalf("run %s: %+v %v", id, in, err)
		}
	}
	rs, err := e.client.AppsV1().ReplicaSets(ns).Get(ctx, "web-00001", metav1.GetOptions{})
	if err != nil || *rs.Spec.Replicas != 3 {
		t.Fatalf("replica set: %+v %v", rs, err)
	}
	pod, err := e.findPod(ctx, ns, "web-00001-b")
	if err != nil || len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].Kind != "ReplicaSet" || !*pod.OwnerReferences[0].Controller {
		t.Fatalf("pod of instance b: %+v %v", pod.OwnerReferences, err)
	}
	if err := e.Stop(ctx, p, "web-00001-b", time.Second); err != nil {
		t.Fatal(err)
	}
	states := func() map[string]engine.State {
		ins, err := e.List(ctx, p, map[string]string{"coligo.revision": "web-00001"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]engine.State{}
		for _, in := range ins {
			out[in.ID] = in.State
		}
		return out
	}
	if got := states(); got["web-00001-a"] != engine.StateRunning || got["web-00001-c"] != engine.StateRunning || got["web-00001-b"] == engine.StateRunning {
		t.Errorf("after stopping b: %v", got) // a set's stopped pod goes, or shows as exited while it does
	}
	if rs, _ := e.client.AppsV1().ReplicaSets(ns).Get(ctx, "web-00001", metav1.GetOptions{}); *rs.Spec.Replicas != 2 {
		t.Errorf("replicas after stopping b: %d", *rs.Spec.Replicas)
	}
	// An instance whose process exits: reported once, with its code.
	events, err := e.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(ctx, spec("web-00001-d", "sh", "-c", "sleep 1; exit 3")); err != nil {
		t.Fatal(err)
	}
	// Other tests' projects share the cluster: their exits are skipped.
	for timeout := time.After(30 * time.Second); ; {
		select {
		case ev := <-events:
			if ev.Project != p {
				continue
			}
			if ev.ID != "web-00001-d" || ev.ExitCode != 3 {
				t.Errorf("exit event %+v, want d's with code 3", ev)
			}
		case <-timeout:
			t.Fatal("no exit event for d")
		}
		break
	}
	for _, id := range []string{"web-00001-a", "web-00001-b", "web-00001-c", "web-00001-d"} {
		if err := e.Remove(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.client.AppsV1().ReplicaSets(ns).Get(ctx, "web-00001", metav1.GetOptions{}); err == nil {
		t.Error("the replica set remains after its last instance")
	}
	for deadline := time.Now().Add(20 * time.Second); len(states()) > 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond) // pods of the removed set go
	}
	if got := states(); len(got) != 0 {
		pods, _ := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			t.Logf("pod %s labels %v deleting %v phase %s", p.Name, p.Labels, p.DeletionTimestamp, p.Status.Phase)
		}
		t.Errorf("instances after removing all: %v", got)
	}
}

// TestEngineScope: the engine's rights over pods, secrets and the rest hold
// only in the namespaces it made, labelled and bound itself in
// (deploy/kubernetes/rbac.yaml): elsewhere it can neither read a secret nor
// start a pod, bind itself, make an unlabelled namespace or delete another.
// A project's namespace holds its quota.
func TestEngineScope(t *testing.T) {
	parts, k, image, e, p := setup(t)
	ctx := context.Background()
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	admin := kubernetes.NewForConfigOrDie(rc)
	other := "coligo-t-scope-" + p[1:9]
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{}) })
	if _, err := admin.CoreV1().Secrets(other).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// In its own project's namespace the engine works...
	if _, err := e.Run(ctx, engine.Spec{ID: "mine", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "1000"}, MilliCPU: 100, MemoryBytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	rb, err := admin.RbacV1().RoleBindings(Namespace(p)).Get(ctx, accessBinding, metav1.GetOptions{})
	if err != nil || rb.RoleRef.Name != projectRole || len(rb.Subjects) != 1 || rb.Subjects[0].Name != "coligo-engine" {
		t.Fatalf("the engine's binding in its namespace: %+v %v", rb, err)
	}
	// ...and elsewhere it cannot.
	type attempt struct {
		what string
		err  error
	}
	var denied []attempt
	_, err = e.client.CoreV1().Secrets(other).Get(ctx, "theirs", metav1.GetOptions{})
	denied = append(denied, attempt{"read a secret", err})
	_, err = e.client.CoreV1().Pods(other).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: image}}}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	denied = append(denied, attempt{"create a pod", err})
	_, err = e.client.RbacV1().RoleBindings(other).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: accessBinding},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: projectRole}, Subjects: []rbacv1.Subject{e.subject}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	denied = append(denied, attempt{"bind itself", err})
	_, err = e.client.RbacV1().RoleBindings(Namespace(p)).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "wider"},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "coligo-engine"}, Subjects: []rbacv1.Subject{e.subject}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	denied = append(denied, attempt{"bind itself another role in its own namespace", err})
	_, err = e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other + "-2"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	denied = append(denied, attempt{"make an unlabelled namespace", err})
	err = e.client.CoreV1().Namespaces().Delete(ctx, other, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
	denied = append(denied, attempt{"delete another namespace", err})
	for _, d := range denied {
		if d.err == nil {
			t.Errorf("the engine could %s outside its projects", d.what)
		}
	}
	if _, err := admin.CoreV1().Secrets(other).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("the other namespace's secret: %v", err)
	}

	// A project's quota is a ResourceQuota of its namespace: the cluster
	// holds the third instance of a 2-instance quota back.
	eq, err := New(Config{Kubeconfig: k.Engine(t), Gateway: k.Gateway, PodCIDR: k.PodCIDR, InsecureRegistries: []string{parts.Registry},
		Quota: quota.Amount{Instances: 2, MilliCPU: 1000, Memory: 1 << 30, Ephemeral: 1 << 30}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	pq := enginetest.Project(t, eq)
	for i := range 3 {
		_, err := eq.Run(ctx, engine.Spec{ID: "q" + strconv.Itoa(i), Project: pq, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "1000"},
			MilliCPU: 100, MemoryBytes: 64 << 20, EphemeralBytes: 64 << 20})
		if i < 2 && err != nil {
			t.Fatalf("instance %d within the quota: %v", i, err)
		}
		if i == 2 && err == nil {
			t.Error("a third instance started beyond a quota of two")
		}
	}
	rq, err := admin.CoreV1().ResourceQuotas(Namespace(pq)).Get(ctx, quotaName, metav1.GetOptions{})
	if err != nil || rq.Spec.Hard.Pods().Value() != 2 || rq.Spec.Hard.Name(corev1.ResourceLimitsCPU, resource.DecimalSI).MilliValue() != 1000 {
		t.Errorf("the project's resource quota: %+v %v", rq, err)
	}
}
