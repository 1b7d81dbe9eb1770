package kube

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/coligo/coligo/internal/engine"
)

// Events implements engine.Engine with one pod informer for the engine,
// shared by every caller: an exit is reported when a pod's container is
// first seen terminated after the informer's initial list.
func (e *Engine) Events(ctx context.Context) (<-chan engine.Event, error) {
	if err := e.ensureWatch(); err != nil {
		return nil, err
	}
	ch := make(chan engine.Event, 256)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

// ensureWatch starts the engine's pod informer once.
func (e *Engine) ensureWatch() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pods != nil {
		return nil
	}
	f := informers.NewSharedInformerFactoryWithOptions(e.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labelManaged + "=" + managedBy }))
	inf := f.Core().V1().Pods().Informer()
	err := inf.AddIndexers(cache.Indexers{indexIP: func(obj any) ([]string, error) {
		if pod, ok := obj.(*corev1.Pod); ok && pod.Status.PodIP != "" {
			return []string{pod.Status.PodIP}, nil
		}
		return nil, nil
	}})
	if err != nil {
		return fmt.Errorf("watch pods: %w", opaque(err))
	}
	_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(oldObj, newObj any) {
			old, ok1 := oldObj.(*corev1.Pod)
			pod, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			project, ok := strings.CutPrefix(pod.Namespace, "coligo-")
			if !ok {
				return
			}
			was, now := e.instance(project, old), e.instance(project, pod)
			if was.State != engine.StateExited && now.State == engine.StateExited {
				e.publish(engine.Event{Project: project, ID: now.ID, ExitCode: now.ExitCode, OOMKilled: now.OOMKilled, At: now.FinishedAt})
			}
		},
	})
	if err != nil {
		return fmt.Errorf("watch pods: %w", opaque(err))
	}
	// Exits are reported from now on: the initial list only sets the
	// baseline (updates, not adds, are reported). The informer lives as
	// long as the engine.
	f.Start(e.stop)
	e.pods = inf
	return nil
}

const indexIP = "ip"

// ProjectOf tells which project the instance at addr belongs to: the
// router asks it of callers of the project-only endpoints, as every
// project's pods share the cluster's pod network. A pod that has just
// started can call before the kubelet has reported its address: an
// unknown address is looked for again for up to 3 s.
func (e *Engine) ProjectOf(addr netip.Addr) (string, bool) {
	if err := e.ensureWatch(); err != nil {
		return "", false
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		objs, _ := e.pods.GetIndexer().ByIndex(indexIP, addr.String())
		if project, ok := projectOfPods(objs); ok || time.Now().After(deadline) {
			return project, ok
		}
	}
}

func projectOfPods(objs []any) (string, bool) {
	for _, obj := range objs {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			continue
		}
		if project, ok := strings.CutPrefix(pod.Namespace, "coligo-"); ok {
			return project, true
		}
	}
	return "", false
}

func (e *Engine) publish(ev engine.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.log.Warn("exit event dropped: a subscriber is behind", "project", ev.Project, "instance", ev.ID)
		}
	}
}
