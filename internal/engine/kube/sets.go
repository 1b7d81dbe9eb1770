package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coligo/coligo/internal/engine"
)

// The instances of a set (an app revision's) are the pods of one
// ReplicaSet, named after the set, whose replica count Run and Stop move by
// one: Run scales up and claims the new pod for the instance (the label
// coligo.dev/instance); Stop deletes the instance's pod and scales down. The
// ReplicaSet recreates a pod that a node loses, even while coligo is down;
// coligo adopts such a pod under its pod name.
const (
	labelSet  = "coligo.dev/set"
	annotSpec = "coligo.dev/spec-hash" // of the template, to notice a changed environment
)

// setLock serializes the scaling of one set, so that each scale-up claims
// the pod it made and each scale-down counts the pod it deleted; set "" is
// the namespace's set-up (ensureProject).
func (e *Engine) setLock(ns, set string) func() {
	e.mu.Lock()
	l, ok := e.sets[ns+"/"+set]
	if !ok {
		l = &sync.Mutex{}
		e.sets[ns+"/"+set] = l
	}
	e.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// runInSet starts an instance as one more pod of its set's ReplicaSet.
func (e *Engine) runInSet(ctx context.Context, spec engine.Spec, pull []corev1.LocalObjectReference) (engine.Instance, error) {
	ns := Namespace(spec.Project)
	unlock := e.setLock(ns, spec.Set)
	pod, err := e.scaleUp(ctx, ns, spec, pull)
	unlock()
	if err != nil {
		return engine.Instance{}, err
	}
	return e.waitStarted(ctx, spec.Project, pod)
}

func (e *Engine) scaleUp(ctx context.Context, ns string, spec engine.Spec, pull []corev1.LocalObjectReference) (*corev1.Pod, error) {
	rs, err := e.ensureSet(ctx, ns, spec, pull)
	if err != nil {
		return nil, err
	}
	if err := e.resize(ctx, ns, rs.Name, rs, +1); err != nil {
		return nil, err
	}
	// Claim the pod the ReplicaSet makes: the one of the set no instance
	// has (or one it made before, for a pod a node lost). An unclaimed pod
	// of an older template (a secret since changed) is deleted instead: the
	// ReplicaSet replaces it from the current one.
	hash := rs.Spec.Template.Annotations[annotSpec]
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelSet + "=" + spec.Set})
		if err != nil {
			return nil, fmt.Errorf("list pods of set %s: %w", spec.Set, opaque(err))
		}
		for i := range list.Items {
			p := &list.Items[i]
			if p.Labels[labelInstance] != "" || p.DeletionTimestamp != nil {
				continue
			}
			if p.Annotations[annotSpec] != hash {
				if err := e.client.CoreV1().Pods(ns).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return nil, fmt.Errorf("remove outdated pod %s: %w", p.Name, opaque(err))
				}
				continue
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{labelInstance: spec.ID}}})
			claimed, err := e.client.CoreV1().Pods(ns).Patch(ctx, p.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			if err != nil {
				return nil, fmt.Errorf("claim pod %s for instance %s: %w", p.Name, spec.ID, opaque(err))
			}
			return claimed, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("set %s made no pod for instance %s within a minute", spec.Set, spec.ID)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ensureSet creates the set's ReplicaSet, or updates its pod template when
// the instances' spec changed (a secret or config map they use): pods made
// from then on have the new one.
func (e *Engine) ensureSet(ctx context.Context, ns string, spec engine.Spec, pull []corev1.LocalObjectReference) (*appsv1.ReplicaSet, error) {
	// Every pod of the set shares one environment: HOSTNAME is each pod's own.
	env := slices.DeleteFunc(slices.Clone(spec.Env), func(kv string) bool { return strings.HasPrefix(kv, "HOSTNAME=") })
	st := stage(ns, spec.Set, map[string]string{labelSet: spec.Set}, env, spec.Mounts)
	meta, err := instanceMeta(ns, spec.Set, spec.Labels)
	if err != nil {
		return nil, err
	}
	delete(meta.Labels, labelInstance)
	meta.Labels[labelSet] = spec.Set
	ps := podSpec(spec, pull, st, e.hostAliases(ctx, ns))
	ps.RestartPolicy = corev1.RestartPolicyAlways // a ReplicaSet's pods must; an exit is reported by its restart
	b, _ := json.Marshal(ps)
	h := sha256.Sum256(append(b, st.sum...)) // a changed secret changes the template
	hash := hex.EncodeToString(h[:8])
	meta.Annotations[annotSpec] = hash
	sets := e.client.AppsV1().ReplicaSets(ns)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: spec.Set, Namespace: ns, Labels: map[string]string{labelManaged: managedBy, labelSet: spec.Set},
			Annotations: map[string]string{annotSpec: hash}},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{labelSet: spec.Set}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: meta.Labels, Annotations: meta.Annotations}, Spec: ps},
		},
	}
	// The Secrets are written only when the template changes: a scale-up
	// of an unchanged set costs no write of them.
	cur, err := sets.Get(ctx, spec.Set, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && cur.Annotations[annotSpec] != hash {
		if err := e.write(ctx, st); err != nil {
			return nil, err
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		created, err := sets.Create(ctx, rs, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("create set %s: %w", spec.Set, opaque(err))
		}
		return created, nil
	case err != nil:
		return nil, fmt.Errorf("get set %s: %w", spec.Set, opaque(err))
	case cur.Annotations[annotSpec] != hash:
		cur.Annotations[annotSpec] = hash
		cur.Spec.Template = rs.Spec.Template
		updated, err := sets.Update(ctx, cur, metav1.UpdateOptions{})
		if err != nil {
			return nil, fmt.Errorf("update set %s: %w", spec.Set, opaque(err))
		}
		return updated, nil
	}
	return cur, nil
}

// resize moves a ReplicaSet's replica count by delta, starting from rs
// when the caller has it (nil: read it), reading it again on a conflict.
func (e *Engine) resize(ctx context.Context, ns, name string, rs *appsv1.ReplicaSet, delta int32) error {
	sets := e.client.AppsV1().ReplicaSets(ns)
	for {
		if rs == nil {
			var err error
			if rs, err = sets.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("get set %s: %w", name, opaque(err))
			}
		}
		rs = rs.DeepCopy()
		rs.Spec.Replicas = new(max(0, *rs.Spec.Replicas+delta))
		_, err := sets.Update(ctx, rs, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			rs = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("scale set %s: %w", name, opaque(err))
		}
		return nil
	}
}

// stopInSet ends a pod of a set: it deletes the pod with the grace period
// (the kubelet cannot shorten a grace period it has begun, so the
// ReplicaSet must not pick the pod itself), then scales the ReplicaSet down
// by one. Should the ReplicaSet make a replacement in between, the
// scale-down removes that one again: a pod not yet started ranks first.
func (e *Engine) stopInSet(ctx context.Context, pod *corev1.Pod, grace time.Duration) error {
	ns, set := pod.Namespace, pod.Labels[labelSet]
	unlock := e.setLock(ns, set)
	defer unlock()
	secs := int64(math.Ceil(grace.Seconds()))
	err := e.client.CoreV1().Pods(ns).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stop pod %s: %w", pod.Name, opaque(err))
	}
	return e.resize(ctx, ns, set, nil, -1)
}

// dropEmptySet removes a set's ReplicaSet (with any pod it made that no
// instance claimed) and its files once no instance is left.
func (e *Engine) dropEmptySet(ctx context.Context, ns, set string) error {
	unlock := e.setLock(ns, set)
	defer unlock()
	rs, err := e.client.AppsV1().ReplicaSets(ns).Get(ctx, set, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get set %s: %w", set, opaque(err))
	}
	pods, err := e.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labelSet + "=" + set + "," + labelInstance})
	if err != nil {
		return fmt.Errorf("list pods of set %s: %w", set, opaque(err))
	}
	if *rs.Spec.Replicas > 0 || len(pods.Items) > 0 {
		return nil
	}
	bg := metav1.DeletePropagationBackground
	if err := e.client.AppsV1().ReplicaSets(ns).Delete(ctx, set, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove set %s: %w", set, opaque(err))
	}
	err = e.client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelSet + "=" + set})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the files of set %s: %w", set, opaque(err))
	}
	return nil
}

// unclaimedGoing reports a pod that its ReplicaSet made and removes again
// before any instance claimed it: not an instance.
func unclaimedGoing(pod *corev1.Pod) bool {
	return pod.Labels[labelSet] != "" && pod.Labels[labelInstance] == "" && pod.DeletionTimestamp != nil
}
