package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/coligo/coligo/internal/imagebuild"
	"github.com/coligo/coligo/internal/itest"
)

// TestDeployOnKubernetes runs coligo as deploy/kubernetes describes it, from
// its own image (built as `make image` builds it, pushed to the test
// registry), in the test cluster: namespace.yaml (Pod Security
// "restricted"), rbac.yaml's service account and binding, and coligo.yaml's
// Deployment (non-root, read-only root, all capabilities dropped). The pod
// becomes ready only once its /readyz answers, which it does once the
// kubernetes engine is connected with the service account's rights. What the
// test cluster lacks is stood in for, and nothing else is changed: there is
// no storage provisioner (the data volume is an emptyDir) and no kube-proxy
// (the pod reaches the API server through a proxy this test runs at the
// node's address, named kubernetes.default.svc by a host alias).
func TestDeployOnKubernetes(t *testing.T) {
	parts := itest.Need(t)
	k := itest.NeedKube(t)
	k.Engine(t) // the ClusterRoles of rbac.yaml, shared with the other tests
	rc, err := clientcmd.BuildConfigFromFlags("", k.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc := kubernetes.NewForConfigOrDie(rc)
	ctx := context.Background()

	// The image.
	bin := staticColigo(t)
	coligo, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	initBin, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "coligo-init"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Coligo(coligo, initBin, nil)
	if err != nil {
		t.Fatal(err)
	}
	repo := parts.Registry + "/coligo-test/coligo"
	digest, err := imagebuild.Push(ctx, repo+":e2e", img, parts.User, parts.Password, true)
	if err != nil {
		t.Fatal(err)
	}

	// The API server, at the node's address on the pod network.
	api, err := url.Parse(rc.Host)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpProxy(t, net.JoinHostPort(k.Gateway.String(), "0"), api.Host)
	_, proxyPort, _ := net.SplitHostPort(proxy)

	// The manifests, as an operator applies them.
	docs := manifests(t, "namespace.yaml", "rbac.yaml", "coligo.yaml")
	var ns corev1.Namespace
	decode(t, docs["Namespace/coligo"], &ns)
	if err := kc.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err == nil {
		waitGone(t, func() error { _, err := kc.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); return err })
	}
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	var sa corev1.ServiceAccount
	decode(t, docs["ServiceAccount/coligo"], &sa)
	if _, err := kc.CoreV1().ServiceAccounts(ns.Name).Create(ctx, &sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var crb rbacv1.ClusterRoleBinding
	decode(t, docs["ClusterRoleBinding/coligo-engine"], &crb)
	kc.RbacV1().ClusterRoleBindings().Delete(ctx, crb.Name, metav1.DeleteOptions{})
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kc.RbacV1().ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{})
	})
	auth, _ := json.Marshal(map[string]any{"auths": map[string]any{parts.Registry: map[string]string{"username": parts.User, "password": parts.Password}}})
	if _, err := kc.CoreV1().Secrets(ns.Name).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: auth}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	var dep appsv1.Deployment
	decode(t, docs["Deployment/coligo"], &dep)
	pod := &dep.Spec.Template.Spec
	c := &pod.Containers[0]
	c.Image = repo + "@" + digest
	for i, a := range c.Args {
		if strings.HasPrefix(a, "--kube-pod-cidr=") {
			c.Args[i] = "--kube-pod-cidr=" + k.PodCIDR.String()
		}
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "KUBERNETES_SERVICE_HOST", Value: "kubernetes.default.svc"},
		corev1.EnvVar{Name: "KUBERNETES_SERVICE_PORT", Value: proxyPort})
	pod.HostAliases = []corev1.HostAlias{{IP: k.Gateway.String(), Hostnames: []string{"kubernetes.default.svc"}}}
	pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "data" {
			pod.Volumes[i].VolumeSource = corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
		}
	}
	if _, err := kc.AppsV1().Deployments(ns.Name).Create(ctx, &dep, metav1.CreateOptions{}); err != nil {
		t.Fatalf("the Deployment (under Pod Security %q): %v", ns.Labels["pod-security.kubernetes.io/enforce"], err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pods, err := kc.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=coligo"})
		if err == nil && len(pods.Items) == 1 && podReady(&pods.Items[0]) {
			p := pods.Items[0]
			if p.Spec.Containers[0].Image != c.Image || p.Status.ContainerStatuses[0].RestartCount != 0 {
				t.Errorf("the ready pod: image %s, restarts %d", p.Spec.Containers[0].Image, p.Status.ContainerStatuses[0].RestartCount)
			}
			// Its API answers on the pod network, over TLS.
			itest.OnThisHost(t, p.Status.PodIP)
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}, Timeout: 10 * time.Second}
			resp, err := hc.Get("https://" + net.JoinHostPort(p.Status.PodIP, "7070") + "/readyz")
			if err != nil || resp.StatusCode != 200 {
				t.Errorf("coligo's /readyz in the cluster: %v %v", resp, err)
			} else {
				resp.Body.Close()
			}
			break
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			if err == nil && len(pods.Items) > 0 {
				p := pods.Items[0]
				fmt.Fprintf(&b, "pod %s: %+v\n", p.Name, p.Status)
				if rc, err := kc.CoreV1().Pods(ns.Name).GetLogs(p.Name, &corev1.PodLogOptions{}).Stream(ctx); err == nil {
					io.Copy(&b, rc)
					rc.Close()
				}
			}
			t.Fatalf("coligo's pod is not ready after 3 minutes: %v\n%s", err, b.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// staticColigo is the static coligo binary (make test's bin/coligo), or one
// built for the test.
func staticColigo(t *testing.T) string {
	if bin := os.Getenv("COLIGO_STATIC_BIN"); bin != "" {
		return bin
	}
	dir := t.TempDir()
	for _, cmd := range []string{"coligo", "coligo-init"} {
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, cmd), "../../cmd/"+cmd)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", cmd, err, out)
		}
	}
	return filepath.Join(dir, "coligo")
}

// manifests reads deploy/kubernetes files into their objects by Kind/name.
func manifests(t *testing.T, files ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", f))
		if err != nil {
			t.Fatal(err)
		}
		for doc := range strings.SplitSeq(string(b), "\n---\n") {
			var meta struct {
				Kind     string            `json:"kind"`
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if meta.Kind != "" {
				out[meta.Kind+"/"+meta.Metadata.Name] = []byte(doc)
			}
		}
	}
	return out
}

func decode(t *testing.T, doc []byte, into any) {
	t.Helper()
	if doc == nil {
		t.Fatal("deploy/kubernetes lacks an object the test applies")
	}
	if err := yaml.UnmarshalStrict(doc, into); err != nil {
		t.Fatal(err)
	}
}

func waitGone(t *testing.T, get func() error) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		if err := get(); apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("an object of an earlier run is still there after 2 minutes")
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// tcpProxy forwards connections made to listen (a port is chosen when it
// ends in :0) to target until the test ends, and returns its address.
func tcpProxy(t *testing.T, listen, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			pipe := func(dst, src net.Conn) { io.Copy(dst, src); dst.Close(); src.Close() }
			go pipe(out, in)
			go pipe(in, out)
		}
	}()
	return ln.Addr().String()
}
