package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/regclient"
	"github.com/google/go-containerregistry/pkg/name"
)

// Labels and annotations coligo puts on what it creates.
const (
	labelManaged  = "app.kubernetes.io/managed-by" // = coligo, on every object
	labelProject  = "coligo.dev/project"           // the project id, on namespaces
	labelInstance = "coligo.dev/instance"          // on an instance's pod and its files
	labelPull     = "coligo.dev/pull"              // on pull secrets
	annotLabels   = "coligo.dev/labels"            // the instance's labels, as JSON
	annotServer   = "coligo.dev/registry"          // a pull secret's registry
	finalizer     = "coligo.dev/keep-status"       // keeps a stopped pod's exit until Remove
	networkCM     = "coligo-network"               // the names ProjectNetwork maps to the gateway
	managedBy     = "coligo"
	container     = "main"
)

// Config is how the engine reaches its cluster.
type Config struct {
	// Kubeconfig is a kubeconfig file; empty means the in-cluster config of
	// the pod coligo runs in.
	Kubeconfig string
	// Gateway is where pods reach coligo (its router's internal
	// endpoints), and PodCIDR the cluster's pod network, which holds it.
	Gateway netip.Addr
	PodCIDR netip.Prefix
	// RouterNamespace is the namespace coligo runs in when it runs in the
	// cluster: its pods may reach every project. Default "coligo".
	RouterNamespace string
	// InsecureRegistries are host:port served over plain HTTP.
	InsecureRegistries []string
	// Quota is each project's quota, kept as a ResourceQuota in its
	// namespace; zero Instances: none.
	Quota quota.Amount
	Log   *slog.Logger
}

// Engine implements engine.Engine on a cluster.
type Engine struct {
	cfg     Config
	client  kubernetes.Interface
	log     *slog.Logger
	subject rbacv1.Subject // the engine's identity, bound to its role in each project's namespace

	// registries are reached from coligo's own pod, never at inward
	// addresses but those of --insecure-registry (netguard).
	registries *regclient.Client

	mu          sync.Mutex
	subs        map[chan engine.Event]struct{}
	pods        cache.SharedIndexInformer // pods coligo made; see ensureWatch
	policyReady bool
	stop        chan struct{}             // ends the pod informer
	ready       map[string]bool           // namespaces known to exist with their policy
	bound       map[string]bool           // namespaces the engine is known to hold its rights in
	sets        map[string]*sync.Mutex    // by namespace/set: see setLock
	names       map[string][]string       // by namespace: the names of ProjectNetwork
	egress      map[string][]netip.Prefix // by namespace: allowed outbound destinations (SetEgress)
}

// warnings logs the API server's warnings at debug level.
type warnings struct{ log *slog.Logger }

func (w warnings) HandleWarningHeader(_ int, _ string, text string) {
	if w.log != nil {
		w.log.Debug("kubernetes warning", "text", text)
	}
}

// New connects to the cluster and checks that it answers.
func New(cfg Config) (*Engine, error) {
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", opaque(err))
	}
	rc.QPS, rc.Burst = 100, 200
	rc.UserAgent = "coligo"
	// Pod Security's "restricted" warnings (the namespaces warn on it) are
	// for the cluster's operators; coligo logs them at debug, not to stderr.
	rc.WarningHandler = warnings{cfg.Log}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", opaque(err))
	}
	if _, err := client.Discovery().ServerVersion(); err != nil {
		return nil, fmt.Errorf("kubernetes API server: %w", opaque(err))
	}
	if cfg.RouterNamespace == "" {
		cfg.RouterNamespace = "coligo"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if !cfg.Gateway.IsValid() || !cfg.PodCIDR.Contains(cfg.Gateway) {
		return nil, fmt.Errorf("kubernetes engine: the gateway %s must be an address in the pod network %s", cfg.Gateway, cfg.PodCIDR)
	}
	e := &Engine{cfg: cfg, client: client, log: cfg.Log, subs: map[chan engine.Event]struct{}{}, ready: map[string]bool{}, bound: map[string]bool{}, sets: map[string]*sync.Mutex{}, names: map[string][]string{}, egress: map[string][]netip.Prefix{}, stop: make(chan struct{}),
		registries: regclient.New(cfg.InsecureRegistries)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if e.subject, err = e.whoAmI(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// Close stops watching the cluster.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	return nil
}

// Namespace is the namespace of a project.
func Namespace(project string) string { return "coligo-" + project }

// ensureProject creates the project's namespace and NetworkPolicy unless
// they exist.
func (e *Engine) ensureProject(ctx context.Context, project string) error {
	ns := Namespace(project)
	e.mu.Lock()
	ok := e.ready[ns]
	e.mu.Unlock()
	if ok {
		return nil
	}
	// One set-up of a namespace at a time (the lock of its set ""): two
	// would each create its policy and quota, and one would fail.
	defer e.setLock(ns, "")()
	e.mu.Lock()
	ok = e.ready[ns]
	e.mu.Unlock()
	if ok {
		return nil
	}
	_, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		labelManaged: managedBy, labelProject: project,
		// Instances need nothing more than the baseline profile allows; what
		// the restricted one would refuse is reported.
		"pod-security.kubernetes.io/enforce": "baseline",
		"pod-security.kubernetes.io/warn":    "restricted",
		"pod-security.kubernetes.io/audit":   "restricted",
	}}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		if err := e.ours(ctx, ns, project); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, opaque(err))
	}
	if err := e.grantAccess(ctx, ns); err != nil {
		return err
	}
	if err := e.applyPolicy(ctx, ns); err != nil {
		return err
	}
	if err := e.applyQuota(ctx, ns); err != nil {
		return err
	}
	e.mu.Lock()
	e.ready[ns] = true
	e.mu.Unlock()
	return nil
}

// ours checks that an existing namespace is the project's, made by coligo,
// and not on its way out: coligo never adopts or deletes another namespace.
func (e *Engine) ours(ctx context.Context, ns, project string) error {
	got, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, opaque(err))
	}
	if got.Labels[labelManaged] != managedBy || got.Labels[labelProject] != project {
		return fmt.Errorf("namespace %s exists and is not coligo's for project %s: it is left alone", ns, project)
	}
	if got.DeletionTimestamp != nil {
		return fmt.Errorf("namespace %s is being deleted", ns)
	}
	return nil
}

// policy admits traffic to a project's pods only from pods of the same
// project, from coligo's own namespace and from the gateway (coligo's
// router when it runs outside the cluster), and lets them send only as
// egressRules says.
func (e *Engine) policy(ns string) *networkingv1.NetworkPolicy {
	e.mu.Lock()
	allowed, ok := e.egress[ns]
	e.mu.Unlock()
	if !ok {
		allowed = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} // Code Engine's default
	}
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "coligo-project", Namespace: ns, Labels: map[string]string{labelManaged: managedBy}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Egress:      egressRules(allowed, e.cfg.PodCIDR, e.cfg.Gateway),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{
				{PodSelector: &metav1.LabelSelector{}},
				{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": e.cfg.RouterNamespace}}},
				{IPBlock: &networkingv1.IPBlock{CIDR: netip.PrefixFrom(e.cfg.Gateway, e.cfg.Gateway.BitLen()).String()}},
			}}},
		},
	}
}

// ProjectNetwork implements engine.Engine. The pods of every project share
// the cluster's pod network: the subnet is the pod network, and the router
// tells a caller's project by ProjectOf. The names are kept in a ConfigMap
// of the namespace and become host aliases of the pods started after the
// call: a pod's /etc/hosts is fixed when it starts.
func (e *Engine) ProjectNetwork(ctx context.Context, project string, names []string) (netip.Addr, netip.Prefix, error) {
	if err := e.ensureProject(ctx, project); err != nil {
		return netip.Addr{}, netip.Prefix{}, err
	}
	ns := Namespace(project)
	want := strings.Join(names, " ")
	cms := e.client.CoreV1().ConfigMaps(ns)
	cur, err := cms.Get(ctx, networkCM, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: networkCM, Namespace: ns, Labels: map[string]string{labelManaged: managedBy}},
			Data: map[string]string{"names": want}}, metav1.CreateOptions{})
	case err == nil && cur.Data["names"] != want:
		cur.Data = map[string]string{"names": want}
		_, err = cms.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("record the names of project %s: %w", project, opaque(err))
	}
	e.mu.Lock()
	e.names[ns] = slices.Clone(names)
	e.mu.Unlock()
	return e.cfg.Gateway, e.cfg.PodCIDR, nil
}

// hostAliases maps the project's names (see ProjectNetwork) to the gateway:
// those this process recorded, else (after a restart) those of the ConfigMap.
func (e *Engine) hostAliases(ctx context.Context, ns string) []corev1.HostAlias {
	e.mu.Lock()
	names, ok := e.names[ns]
	e.mu.Unlock()
	if !ok {
		cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, networkCM, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil // not known now; asked again at the next start
		}
		if err == nil {
			names = strings.Fields(cm.Data["names"])
		}
		e.mu.Lock()
		e.names[ns] = names
		e.mu.Unlock()
	}
	if len(names) == 0 {
		return nil
	}
	return []corev1.HostAlias{{IP: e.cfg.Gateway.String(), Hostnames: names}}
}

// Run implements engine.Engine: it checks the image with its registry (so
// that a pull failure is an error of Run, as on the local engine), creates
// the pod and waits until it has an address and its process started.
func (e *Engine) Run(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	if err := noBuckets(spec); err != nil {
		return engine.Instance{}, err
	}
	ns := Namespace(spec.Project)
	pods := e.client.CoreV1().Pods(ns)
	// The engine's rights in a namespace come with the project's set-up:
	// the first instance of a project may be its first call (a function's
	// pre-warmed instance pulls nothing first).
	if spec.Image != "" {
		if err := e.ensureProject(ctx, spec.Project); err != nil {
			return engine.Instance{}, err
		}
	}
	if pod, err := e.findPod(ctx, ns, spec.ID); err == nil {
		return e.instance(spec.Project, pod), nil
	} else if !apierrors.IsNotFound(err) {
		return engine.Instance{}, fmt.Errorf("get instance %s: %w", spec.ID, opaque(err))
	}
	if spec.Image == "" {
		return engine.Instance{}, fmt.Errorf("instance %s: %w", spec.ID, core.ErrNotFound)
	}
	pull, err := e.pullSecrets(ctx, spec.Project, spec.Image, spec.Auth)
	if err != nil {
		return engine.Instance{}, err
	}
	if spec.Set != "" {
		return e.runInSet(ctx, spec, pull)
	}
	st := stage(ns, spec.ID, map[string]string{labelInstance: spec.ID}, spec.Env, spec.Mounts)
	if err := e.write(ctx, st); err != nil {
		return engine.Instance{}, err
	}
	pod, err := podFor(spec, pull, st, e.hostAliases(ctx, ns))
	if err != nil {
		return engine.Instance{}, err
	}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = pods.Get(ctx, spec.ID, metav1.GetOptions{})
	}
	if err != nil {
		return engine.Instance{}, fmt.Errorf("create instance %s: %w", spec.ID, opaque(err))
	}
	return e.waitStarted(ctx, spec.Project, created)
}

// waitStarted waits until the pod has an address and its container is
// running or has ended.
func (e *Engine) waitStarted(ctx context.Context, project string, pod *corev1.Pod) (engine.Instance, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	pods := e.client.CoreV1().Pods(pod.Namespace)
	for {
		cs := containerStatus(pod)
		if msg := startFailure(cs); noCommand(msg) {
			return e.instance(project, pod), fmt.Errorf("instance %s: %w: %s", pod.Name, engine.ErrNoCommand, msg)
		}
		switch {
		case cs != nil && (cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil):
			return e.instance(project, pod), nil
		case cs != nil && cs.State.Running != nil && pod.Status.PodIP != "":
			return e.instance(project, pod), nil
		case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
			return e.instance(project, pod), nil
		}
		select {
		case <-ctx.Done():
			return e.instance(project, pod), nil // still starting: List follows it
		case <-time.After(50 * time.Millisecond):
		}
		p, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return e.instance(project, pod), nil
			}
			return engine.Instance{}, fmt.Errorf("get instance %s: %w", pod.Name, opaque(err))
		}
		pod = p
	}
}

// findPod finds an instance's pod: the pod of that name, or the pod of an
// array or set that carries the name as its instance label.
func (e *Engine) findPod(ctx context.Context, ns, id string) (*corev1.Pod, error) {
	pod, err := e.client.CoreV1().Pods(ns).Get(ctx, id, metav1.GetOptions{})
	if err == nil || !apierrors.IsNotFound(err) {
		return pod, err
	}
	list, lerr := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelInstance + "=" + id})
	if lerr != nil {
		return nil, lerr
	}
	if len(list.Items) == 0 {
		return nil, err
	}
	return &list.Items[0], nil
}

// startFailure is what the runtime said of a container that did not start
// (or ended), in any of its states.
func startFailure(cs *corev1.ContainerStatus) string {
	if cs == nil {
		return ""
	}
	var msgs []string
	for _, st := range []corev1.ContainerState{cs.State, cs.LastTerminationState} {
		if st.Terminated != nil {
			msgs = append(msgs, st.Terminated.Message)
		}
		if st.Waiting != nil {
			msgs = append(msgs, st.Waiting.Message)
		}
	}
	return strings.Join(msgs, "; ")
}

func noCommand(msg string) bool {
	return strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory: unknown")
}

// Prepare is not supported: a pod cannot be created without starting it.
func (e *Engine) Prepare(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	return engine.Instance{}, fmt.Errorf("prepare %s on kubernetes: %w", spec.ID, engine.ErrNotSupported)
}

// Stop implements engine.Engine by deleting the pod with the grace period:
// the kubelet sends SIGTERM, then SIGKILL (after at least 2 s), and the
// pod's finalizer keeps its exit in the API until Remove. Stop returns
// once the process has ended.
func (e *Engine) Stop(ctx context.Context, project, id string, grace time.Duration) error {
	ns := Namespace(project)
	pod, err := e.findPod(ctx, ns, id)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get instance %s: %w", id, opaque(err))
	}
	if e.instance(project, pod).State == engine.StateExited {
		return nil
	}
	if _, err := e.inProject(ctx, project); err != nil {
		return err
	}
	if pod.DeletionTimestamp == nil && pod.Labels[labelSet] != "" {
		if err := e.stopInSet(ctx, pod, grace); err != nil {
			return err
		}
	} else if pod.DeletionTimestamp == nil {
		secs := int64(math.Ceil(grace.Seconds()))
		err = e.client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("stop instance %s: %w", id, opaque(err))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, grace+15*time.Second)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stop instance %s: not ended after %s: %w", id, grace, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		pod, err := e.client.CoreV1().Pods(ns).Get(ctx, pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && e.instance(project, pod).State == engine.StateExited) {
			return nil
		}
	}
}

// Remove implements engine.Engine.
func (e *Engine) Remove(ctx context.Context, project, id string) error {
	ns := Namespace(project)
	if ok, err := e.inProject(ctx, project); !ok {
		return err
	}
	name, set := id, ""
	if pod, err := e.findPod(ctx, ns, id); err == nil {
		name, set = pod.Name, pod.Labels[labelSet]
		if set != "" && pod.DeletionTimestamp == nil {
			if err := e.stopInSet(ctx, pod, 0); err != nil {
				return err
			}
		}
	}
	if err := e.release(ctx, ns, name); err != nil {
		return err
	}
	zero := int64(0)
	if err := e.client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove instance %s: %w", id, opaque(err))
	}
	if set != "" {
		return e.dropEmptySet(ctx, ns, set)
	}
	err := e.client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelInstance + "=" + id})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the files of instance %s: %w", id, opaque(err))
	}
	return nil
}

// release drops the finalizer that keeps a pod's status.
func (e *Engine) release(ctx context.Context, ns, name string) error {
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	_, err := e.client.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release instance %s: %w", name, opaque(err))
	}
	return nil
}

// List implements engine.Engine.
func (e *Engine) List(ctx context.Context, project string, match map[string]string) ([]engine.Instance, error) {
	list, err := e.client.CoreV1().Pods(Namespace(project)).List(ctx, metav1.ListOptions{LabelSelector: labelManaged + "=" + managedBy})
	if err != nil {
		return nil, fmt.Errorf("list instances of project %s: %w", project, opaque(err))
	}
	var out []engine.Instance
	for i := range list.Items {
		if unclaimedGoing(&list.Items[i]) {
			continue
		}
		in := e.instance(project, &list.Items[i])
		if matches(in.Labels, match) {
			out = append(out, in)
		}
	}
	return out, nil
}

func matches(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Logs implements engine.Engine.
func (e *Engine) Logs(ctx context.Context, project, id string, w io.Writer, opts engine.LogOptions) error {
	pods := e.client.CoreV1().Pods(Namespace(project))
	var name string
	for {
		pod, err := e.findPod(ctx, Namespace(project), id)
		if apierrors.IsNotFound(err) {
			return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get instance %s: %w", id, opaque(err))
		}
		name = pod.Name
		cs := containerStatus(pod)
		if cs != nil && cs.State.Waiting == nil {
			break
		}
		if !opts.Follow {
			return nil // nothing written yet
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	if _, err := e.inProject(ctx, project); err != nil {
		return err
	}
	po := &corev1.PodLogOptions{Container: container, Follow: opts.Follow, Timestamps: opts.Timestamps}
	if opts.Tail > 0 {
		tail := int64(opts.Tail)
		po.TailLines = &tail
	}
	if !opts.Since.IsZero() {
		po.SinceTime = &metav1.Time{Time: opts.Since}
	}
	rc, err := pods.GetLogs(name, po).Stream(ctx)
	if err != nil {
		return fmt.Errorf("logs of instance %s: %w", id, opaque(err))
	}
	defer rc.Close()
	if _, err := io.Copy(w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of instance %s: %w", id, opaque(err))
	}
	return nil
}

// PruneImages implements engine.Engine. Images on the nodes are the
// kubelet's to collect; what the project keeps in the API are its pull
// secrets, and those no pod or job uses any more are removed. It removes
// no image reference, so it returns none.
func (e *Engine) PruneImages(ctx context.Context, project string, keep []string) ([]string, error) {
	ns := Namespace(project)
	if ok, err := e.inProject(ctx, project); !ok {
		return nil, err
	}
	secrets, err := e.client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: labelPull + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list pull secrets of project %s: %w", project, opaque(err))
	}
	used := map[string]bool{}
	pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list instances of project %s: %w", project, opaque(err))
	}
	for _, p := range pods.Items {
		for _, s := range p.Spec.ImagePullSecrets {
			used[s.Name] = true
		}
	}
	jobs, err := e.client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list job runs of project %s: %w", project, opaque(err))
	}
	for _, j := range jobs.Items {
		for _, s := range j.Spec.Template.Spec.ImagePullSecrets {
			used[s.Name] = true
		}
	}
	for _, s := range secrets.Items {
		if !used[s.Name] && !keptServer(s.Annotations[annotServer], keep) {
			if err := e.client.CoreV1().Secrets(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("remove pull secret %s: %w", s.Name, opaque(err))
			}
		}
	}
	return nil, nil
}

// keptServer reports whether an image in keep comes from server: its pull
// secret is still needed to start it again.
func keptServer(server string, keep []string) bool {
	for _, k := range keep {
		if ref, err := name.ParseReference(k, name.WithDefaultRegistry("docker.io")); err == nil && ref.Context().RegistryStr() == server {
			return true
		}
	}
	return false
}

// Purge implements engine.Engine: it deletes the project's namespace and
// waits until the cluster has removed it with everything in it.
func (e *Engine) Purge(ctx context.Context, project string) error {
	ns := Namespace(project)
	e.mu.Lock()
	delete(e.ready, ns)
	delete(e.bound, ns)
	delete(e.names, ns)
	e.mu.Unlock()
	got, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, opaque(err))
	}
	if got.Labels[labelManaged] != managedBy || got.Labels[labelProject] != project {
		return fmt.Errorf("namespace %s is not coligo's for project %s: it is left alone", ns, project)
	}
	if got.DeletionTimestamp == nil {
		// Sets would make new pods (that keep the finalizer) while the
		// namespace goes: remove them first, then release every pod, and
		// again while the namespace is being deleted.
		if err := e.grantAccess(ctx, ns); err != nil {
			return err
		}
		orphan := metav1.DeletePropagationOrphan
		if err := e.client.AppsV1().ReplicaSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: &orphan}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove the sets of project %s: %w", project, opaque(err))
		}
		if err := e.releaseAll(ctx, ns); err != nil {
			return err
		}
		bg := metav1.DeletePropagationBackground
		err = e.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &bg})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete namespace %s: %w", ns, opaque(err))
		}
	}
	released := false
	for {
		_, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("wait for namespace %s to go: %w", ns, opaque(err))
		}
		if !released {
			// Once every pod is gone, the engine's rights may go with the
			// rest; from then on it can only wait.
			left, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
			switch {
			case apierrors.IsForbidden(err):
				released = true // by an earlier Purge
			case err == nil && len(left.Items) == 0:
				if err := e.releaseAccess(ctx, ns); err != nil {
					return err
				}
				released = true
			default:
				if err := e.releaseAll(ctx, ns); err != nil {
					return err
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for namespace %s to go: %w", ns, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// releaseAll drops the finalizer of every pod of a namespace and deletes it.
func (e *Engine) releaseAll(ctx context.Context, ns string) error {
	pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("list pods of %s: %w", ns, opaque(err))
	}
	if pods == nil {
		return nil
	}
	zero := int64(0)
	for _, p := range pods.Items {
		if err := e.release(ctx, ns, p.Name); err != nil {
			return err
		}
		if err := e.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("remove pod %s: %w", p.Name, opaque(err))
		}
	}
	return nil
}

// instance is what the engine shows of a pod.
func (e *Engine) instance(project string, pod *corev1.Pod) engine.Instance {
	in := engine.Instance{ID: pod.Name, Project: project, IP: pod.Status.PodIP, CreatedAt: pod.CreationTimestamp.Time, State: engine.StateRunning}
	if s := pod.Annotations[annotLabels]; s != "" {
		json.Unmarshal([]byte(s), &in.Labels)
	}
	if id := pod.Labels[labelInstance]; id != "" && (pod.Labels[labelRun] != "" || pod.Labels[labelSet] != "") {
		in.ID, in.Labels = id, arrayLabels(pod, in.Labels)
	}
	cs := containerStatus(pod)
	switch {
	case cs != nil && (cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil):
		// A pod of a set restarts its container: the first exit is the
		// instance's.
		t := cs.State.Terminated
		if cs.LastTerminationState.Terminated != nil {
			t = cs.LastTerminationState.Terminated
		}
		in.State, in.ExitCode, in.FinishedAt = engine.StateExited, int(t.ExitCode), t.FinishedAt.Time
		in.OOMKilled = oomKilled(pod, t)
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		in.State, in.ExitCode = engine.StateExited, 137
		if pod.Status.Phase == corev1.PodSucceeded {
			in.ExitCode = 0
		}
	}
	if pod.Status.Reason == "Evicted" && strings.Contains(strings.ToLower(pod.Status.Message), "ephemeral") {
		in.Evicted = engine.EvictedEphemeralStorage
		if in.State == engine.StateExited && in.ExitCode == 0 {
			in.ExitCode = 137
		}
	}
	if in.State == engine.StateExited && in.FinishedAt.IsZero() && pod.DeletionTimestamp != nil {
		in.FinishedAt = pod.DeletionTimestamp.Time
	}
	return in
}

// oomKilled says whether a container's exit was the kernel's OOM killer.
// The kubelet says so in the reason, but containerd's CRI handles a task's
// exit and its OOM event apart, and when the exit comes first the reason
// stays "Error". A SIGKILL (137) that nobody sent the instance — its pod
// not being deleted, evicted or past a deadline — under a memory limit is
// then the OOM killer's; a process that sends itself SIGKILL reads as one.
func oomKilled(pod *corev1.Pod, t *corev1.ContainerStateTerminated) bool {
	if t.Reason == "OOMKilled" {
		return true
	}
	if t.ExitCode != 137 || t.Reason != "Error" || pod.DeletionTimestamp != nil || pod.Status.Reason != "" {
		return false
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			_, ok := c.Resources.Limits[corev1.ResourceMemory]
			return ok
		}
	}
	return false
}

func containerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == container {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// opaque keeps the words of an error from the Kubernetes API (or its
// client) but not its type: what leaves the engine is coligo's errors only.
// Context errors pass as they are.
func opaque(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return errors.New(err.Error())
}

// noBuckets refuses persistent data stores: on Kubernetes a bucket is
// mounted by a CSI driver of the cluster's, which this engine does not
// drive yet.
func noBuckets(spec engine.Spec) error {
	if len(spec.Buckets) == 0 {
		return nil
	}
	return &engine.MountError{Bucket: spec.Buckets[0].Name, Err: errors.New("persistent data stores are mounted by the local engine only, not on Kubernetes")}
}
