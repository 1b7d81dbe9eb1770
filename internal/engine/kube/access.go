package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// The engine's rights inside a project's namespace come from a RoleBinding
// it creates there, to the ClusterRole projectRole (deploy/kubernetes/
// rbac.yaml), once it has made and labelled the namespace: its cluster-wide
// role holds no right to pods' specs, secrets or config maps. The binding
// keeps a finalizer until Purge has released every pod, so the engine keeps
// its rights while the namespace is being deleted.
const (
	projectRole   = "coligo-project"
	accessBinding = "coligo-engine"
	accessFinal   = "coligo.dev/keep-access"
	quotaName     = "coligo-project"
)

// whoAmI is the engine's own identity as a RoleBinding subject.
func (e *Engine) whoAmI(ctx context.Context) (rbacv1.Subject, error) {
	r, err := e.client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return rbacv1.Subject{}, fmt.Errorf("who the engine is to the cluster: %w", opaque(err))
	}
	name := r.Status.UserInfo.Username
	if rest, ok := strings.CutPrefix(name, "system:serviceaccount:"); ok {
		if ns, sa, ok := strings.Cut(rest, ":"); ok {
			return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}, nil
		}
	}
	return rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}, nil
}

// grantAccess binds the engine to projectRole in namespace ns unless it is,
// and waits until the cluster's authorizer grants it.
func (e *Engine) grantAccess(ctx context.Context, ns string) error {
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: accessBinding, Namespace: ns, Labels: map[string]string{labelManaged: managedBy}, Finalizers: []string{accessFinal}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: projectRole},
		Subjects:   []rbacv1.Subject{e.subject},
	}
	_, err := e.client.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("bind the engine's role in %s: %w", ns, opaque(err))
	}
	// The authorizer sees a new binding through its own cache a moment
	// later.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := e.client.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: "create", Resource: "pods"}}}, metav1.CreateOptions{})
		if last = err; err == nil && !r.Status.Allowed {
			last = errors.New("not granted yet")
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the engine's role in %s is not in force (%v, last check: %v): is the ClusterRole %s of deploy/kubernetes/rbac.yaml installed?", ns, err, opaque(last), projectRole)
	}
	return nil
}

// inProject reports whether the project's namespace exists, and makes
// sure, once per process, that the engine holds its rights there (a
// namespace made by a version of coligo that bound none gets its binding
// now). False: there is nothing of the project to find or change.
func (e *Engine) inProject(ctx context.Context, project string) (bool, error) {
	ns := Namespace(project)
	e.mu.Lock()
	ok := e.ready[ns] || e.bound[ns]
	e.mu.Unlock()
	if ok {
		return true, nil
	}
	got, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get namespace %s: %w", ns, opaque(err))
	}
	if got.Labels[labelManaged] != managedBy || got.Labels[labelProject] != project {
		return false, fmt.Errorf("namespace %s exists and is not coligo's for project %s: it is left alone", ns, project)
	}
	if got.DeletionTimestamp != nil {
		return true, nil // Purge holds the binding until the pods are gone
	}
	if err := e.grantAccess(ctx, ns); err != nil {
		return false, err
	}
	e.mu.Lock()
	e.bound[ns] = true
	e.mu.Unlock()
	return true, nil
}

// releaseAccess lets the engine's RoleBinding in ns go with its namespace.
func (e *Engine) releaseAccess(ctx context.Context, ns string) error {
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	_, err := e.client.RbacV1().RoleBindings(ns).Patch(ctx, accessBinding, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("release the engine's role in %s: %w", ns, opaque(err))
	}
	return nil
}

// applyQuota keeps the namespace's ResourceQuota at the project quota: the
// cluster holds the instances of a project's job runs (which it schedules
// itself) and apps within it together.
func (e *Engine) applyQuota(ctx context.Context, ns string) error {
	q := e.cfg.Quota
	if q.Instances == 0 {
		return nil
	}
	hard := corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(int64(q.Instances), resource.DecimalSI)}
	if q.MilliCPU > 0 {
		hard[corev1.ResourceLimitsCPU] = *resource.NewMilliQuantity(q.MilliCPU, resource.DecimalSI)
	}
	if q.Memory > 0 {
		hard[corev1.ResourceLimitsMemory] = *resource.NewQuantity(q.Memory, resource.DecimalSI)
	}
	if q.Ephemeral > 0 {
		hard[corev1.ResourceLimitsEphemeralStorage] = *resource.NewQuantity(q.Ephemeral, resource.DecimalSI)
	}
	want := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: quotaName, Namespace: ns, Labels: map[string]string{labelManaged: managedBy}},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	quotas := e.client.CoreV1().ResourceQuotas(ns)
	cur, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = quotas.Create(ctx, want, metav1.CreateOptions{})
	case err == nil && !sameQuantities(cur.Spec.Hard, hard):
		cur.Spec.Hard = hard
		_, err = quotas.Update(ctx, cur, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("resource quota of %s: %w", ns, opaque(err))
	}
	// The cluster refuses pods in the namespace until its quota controller
	// has counted what the namespace holds.
	var last error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cur, err := quotas.Get(ctx, quotaName, metav1.GetOptions{})
		if last = err; err == nil && !sameQuantities(cur.Status.Hard, hard) {
			last = errors.New("not counted yet")
		}
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the resource quota of %s is not counted (%v, last check: %v): does the cluster run its resourcequota controller?", ns, err, opaque(last))
	}
	return nil
}

func sameQuantities(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || v.Cmp(w) != 0 {
			return false
		}
	}
	return true
}
