package kube

import (
	"context"
	"fmt"
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
	ch := make(chan engine.Event, 256)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	start := !e.watching
	e.watching = true
	e.mu.Unlock()
	if start {
		if err := e.watch(); err != nil {
			return nil, err
		}
	}
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
		close(ch)
	}()
	return ch, nil
}

func (e *Engine) watch() error {
	f := informers.NewSharedInformerFactoryWithOptions(e.client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = labelManaged + "=" + managedBy }))
	inf := f.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
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
		return fmt.Errorf("watch pods: %w", err)
	}
	// Exits are reported from now on: the initial list only sets the
	// baseline (updates, not adds, are reported). The informer lives as
	// long as the engine.
	f.Start(e.stop)
	return nil
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
