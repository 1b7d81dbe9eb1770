// Package itest gives integration tests the real parts that scripts/test.sh
// started (containerd, CNI plugins, a registry with basic auth) and the test
// images they run. When CI or COLIGO_REQUIRE_INTEGRATION is set, a missing
// part fails the test instead of skipping it.
package itest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/imagebuild"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Parts are the addresses of the real parts.
type Parts struct {
	Containerd string
	CNIBinDir  string
	Registry   string // host:port, plain HTTP, basic auth
	User       string
	Password   string
	Binary     string // the built coligo binary
}

// Missing skips the test for want of a part msg names, or fails it in CI
// (CI or COLIGO_REQUIRE_INTEGRATION set), where every part must be there.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" || os.Getenv("COLIGO_REQUIRE_INTEGRATION") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Need returns the parts, or skips (fails in CI) when one is missing.
func Need(t testing.TB) Parts {
	t.Helper()
	p := Parts{
		Containerd: os.Getenv("COLIGO_TEST_CONTAINERD"),
		CNIBinDir:  os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
		Registry:   os.Getenv("COLIGO_TEST_REGISTRY"),
		User:       os.Getenv("COLIGO_TEST_REGISTRY_USER"),
		Password:   os.Getenv("COLIGO_TEST_REGISTRY_PASSWORD"),
		Binary:     os.Getenv("COLIGO_BIN"),
	}
	if p.Containerd == "" || p.CNIBinDir == "" || p.Registry == "" || p.Binary == "" {
		msg := "integration parts missing: run through 'make test' (COLIGO_TEST_CONTAINERD, COLIGO_TEST_CNI_BIN_DIR, COLIGO_TEST_REGISTRY, COLIGO_BIN)"
		Missing(t, msg)
	}
	return p
}

// Auth is the registry's credentials as an engine sees them.
func (p Parts) Auth() *engine.RegistryAuth {
	return &engine.RegistryAuth{Server: p.Registry, Username: p.User, Password: p.Password}
}

var (
	busyboxOnce sync.Once
	busyboxRef  string
	busyboxErr  error
)

// TestPage is what /www/index.html of the busybox image holds.
const TestPage = "coligo-test-page"

// BusyboxImage pushes (once per test binary) an image with Debian's static
// busybox, /bin/testprog and /www/index.html to the test registry and returns
// its reference.
func (p Parts) BusyboxImage(t testing.TB) string {
	t.Helper()
	busyboxOnce.Do(func() {
		files, err := imagebuild.Busybox()
		if err != nil {
			busyboxErr = err
			return
		}
		prog, err := imagebuild.GoProgram(filepath.Join(moduleRoot(), "internal", "itest", "testprog"))
		if err != nil {
			busyboxErr = err
			return
		}
		files = append(files,
			imagebuild.File{Path: "www/index.html", Data: []byte(TestPage + "\n"), Mode: 0o644},
			imagebuild.File{Path: "bin/testprog", Data: prog, Mode: 0o755})
		img, err := imagebuild.Image(files, []string{"/bin/sh"}, nil)
		if err != nil {
			busyboxErr = err
			return
		}
		ref := p.Registry + "/coligo-test/busybox:1"
		if _, err := imagebuild.Push(context.Background(), ref, img, p.User, p.Password, true); err != nil {
			busyboxErr = err
			return
		}
		busyboxRef = ref
	})
	if busyboxErr != nil {
		t.Fatalf("test image: %v", busyboxErr)
	}
	return busyboxRef
}

// moduleRoot is the repository's root, found from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Registry is a registry with basic auth that a test starts and stops itself.
type Registry struct {
	Addr, User, Password string
	cmd                  *exec.Cmd
}

// StartRegistry starts Debian's docker-registry with htpasswd auth on a free
// loopback port; it stops when the test ends.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	r := &Registry{Addr: addr, User: "private", Password: "pw-" + filepath.Base(dir)}
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(r.User+":"+string(hash)+"\n"), 0o600)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: private\n    path: %s/htpasswd\n", dir, addr, dir)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	r.cmd = exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(r.Stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("registry did not start")
		}
	}
}

// Stop ends the registry process.
func (r *Registry) Stop() {
	if r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// PushBusybox pushes the busybox test image to the registry as repo:tag.
func (r *Registry) PushBusybox(t testing.TB, ref string) {
	t.Helper()
	files, err := imagebuild.Busybox()
	if err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Image(files, []string{"/bin/sh"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := imagebuild.Push(context.Background(), ref, img, r.User, r.Password, true); err != nil {
		t.Fatal(err)
	}
}

// Kube is the test cluster that scripts/kube.sh started.
type Kube struct {
	Kubeconfig string // an admin kubeconfig
	// EngineKubeconfig is user coligo-engine's; see Kube.Engine.
	EngineKubeconfig string
	Gateway          netip.Addr // the node's address on the pod network
	PodCIDR          netip.Prefix
}

// NeedKube returns the test cluster, or skips (fails in CI) when there is none.
func NeedKube(t testing.TB) Kube {
	t.Helper()
	cfg, gw := os.Getenv("COLIGO_TEST_KUBECONFIG"), os.Getenv("COLIGO_TEST_KUBE_GATEWAY")
	eng := os.Getenv("COLIGO_TEST_KUBE_ENGINE_KUBECONFIG")
	addr, err := netip.ParseAddr(gw)
	if cfg == "" || eng == "" || err != nil {
		msg := "test cluster missing: run through 'make test' (COLIGO_TEST_KUBECONFIG, COLIGO_TEST_KUBE_GATEWAY)"
		Missing(t, msg)
	}
	return Kube{Kubeconfig: cfg, EngineKubeconfig: eng, Gateway: addr, PodCIDR: netip.PrefixFrom(addr, 24).Masked()}
}

var engineRole sync.Once

// Engine returns the kubeconfig of user coligo-engine after giving it
// (once per test binary) what deploy/kubernetes/rbac.yaml gives coligo's
// service account: its ClusterRoles, the binding of coligo-engine, and the
// admission policy that confines it, aimed at this user. The engine under
// test has exactly the rights an operator grants coligo.
func (k Kube) Engine(t testing.TB) string {
	t.Helper()
	var err error
	engineRole.Do(func() { err = bindEngineRole(k.Kubeconfig, k.EngineKubeconfig) })
	if err != nil {
		t.Fatalf("bind the engine's ClusterRole: %v", err)
	}
	return k.EngineKubeconfig
}

func bindEngineRole(kubeconfig, engineKubeconfig string) error {
	b, err := os.ReadFile(filepath.Join(moduleRoot(), "deploy", "kubernetes", "rbac.yaml"))
	if err != nil {
		return err
	}
	// The test's engine is user coligo-engine, not the service account.
	b = []byte(strings.ReplaceAll(string(b), "'system:serviceaccount:coligo:coligo'", "'coligo-engine'"))
	var (
		roles    []rbacv1.ClusterRole
		policy   admissionv1.ValidatingAdmissionPolicy
		pbinding admissionv1.ValidatingAdmissionPolicyBinding
	)
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("rbac.yaml: %w", err)
		}
		var into any
		switch meta.Kind {
		case "ClusterRole":
			roles = append(roles, rbacv1.ClusterRole{})
			into = &roles[len(roles)-1]
		case "ValidatingAdmissionPolicy":
			into = &policy
		case "ValidatingAdmissionPolicyBinding":
			into = &pbinding
		default:
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			return fmt.Errorf("rbac.yaml: %s: %w", meta.Kind, err)
		}
	}
	if len(roles) != 2 || policy.Name == "" || pbinding.Name == "" {
		return errors.New("rbac.yaml lacks the ClusterRoles coligo-engine and coligo-project or the admission policy")
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	kc, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	// Test binaries run at once against the cluster: what exists is
	// updated in place, never deleted under another binary's engine.
	for _, role := range roles {
		if cur, err := kc.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); err == nil {
			cur.Rules = role.Rules
			if _, err := kc.RbacV1().ClusterRoles().Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return err
			}
		} else if _, err := kc.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	vaps := kc.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	if cur, err := vaps.Get(ctx, policy.Name, metav1.GetOptions{}); err == nil {
		cur.Spec = policy.Spec
		if _, err := vaps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
	} else if _, err := vaps.Create(ctx, &policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := kc.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &pbinding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "coligo-engine-test"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "coligo-engine"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "coligo-engine"}}}
	if _, err := kc.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// The API server's authorizer sees a new role and binding through its
	// own cache, a moment later: wait until it grants what the engine
	// first asks for (a CI run once failed its first pod get on this).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		sar, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "coligo-engine", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Resource: "namespaces"}}}, metav1.CreateOptions{})
		if err == nil && sar.Status.Allowed {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the engine's role is not in force after 30 s: %v %+v", err, sar)
		}
	}
	// The admission policy, likewise: wait until it refuses the engine a
	// namespace without coligo's labels (a dry run: nothing is made).
	erc, err := clientcmd.BuildConfigFromFlags("", engineKubeconfig)
	if err != nil {
		return err
	}
	ekc, err := kubernetes.NewForConfig(erc)
	if err != nil {
		return err
	}
	probe := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "coligo-policy-probe"}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := ekc.CoreV1().Namespaces().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "coligo's engine may only") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the admission policy coligo-engine-scope is not in force after 30 s: %v", err)
		}
	}
}

// OnThisHost fails the test unless ip is routed to this machine itself or
// straight to one of its interfaces (a bridge the test run made), never
// through a gateway: a probe of an instance or pod must not leave the
// machine when the network it lives on went away.
func OnThisHost(t testing.TB, ip string) {
	t.Helper()
	out, err := exec.Command("ip", "-o", "route", "get", ip).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get %s: %v: %s", ip, err, out)
	}
	if strings.Contains(string(out), " via ") {
		t.Fatalf("%s is routed through a gateway (%s): its network is gone, and a probe would leave this machine", ip, strings.TrimSpace(string(out)))
	}
}

// NeedBuildKit returns the test buildkitd's address and the bridge it puts
// build steps on, or skips (fails in CI) when there is none.
func NeedBuildKit(t testing.TB) (addr, bridge string) {
	t.Helper()
	addr, bridge = os.Getenv("COLIGO_TEST_BUILDKIT"), os.Getenv("COLIGO_TEST_BUILDKIT_BRIDGE")
	if addr == "" || bridge == "" {
		Missing(t, "buildkitd missing: run through 'make test' (COLIGO_TEST_BUILDKIT, COLIGO_TEST_BUILDKIT_BRIDGE)")
	}
	return addr, bridge
}

// Image is an image of the test registry as ImageFiles reads it.
type Image struct {
	Digest string
	Config []byte            // the config file, as stored
	Files  map[string][]byte // its layers, flattened
}

// ImageFiles reads an image of the test registry (128 MiB of files at
// most); it fails the test when it cannot.
func (p Parts) ImageFiles(t testing.TB, image string) Image {
	t.Helper()
	ref, err := name.ParseReference(image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: p.User, Password: p.Password})))
	if err != nil {
		t.Fatalf("read %s: %v", image, err)
	}
	var out Image
	d, err := img.Digest()
	if err == nil {
		out.Config, err = img.RawConfigFile()
	}
	if err != nil {
		t.Fatal(err)
	}
	out.Digest = d.String()
	rc := mutate.Extract(img)
	defer rc.Close()
	if out.Files, err = bundle.Read(rc, bundle.Source); err != nil {
		t.Fatalf("the files of %s: %v", image, err)
	}
	return out
}
