package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coligo/coligo/internal/engine"
)

// FuzzInstance feeds what the engine decodes from a pod it reads back (the
// labels annotation, the array and set labels, the container's exit) to
// instance: whatever the cluster holds, it must not panic, an instance is
// named by its label in an array or set and by its pod otherwise, and an
// ended container is an exited instance with its code.
func FuzzInstance(f *testing.F) {
	f.Add(`{"coligo.kind":"app"}`, "web-00001-a", "web-00001", "", "coligo.index", "3", int32(2), "OOMKilled", "Evicted", "ephemeral local storage")
	f.Add(`not json`, "", "", "run", "", "", int32(0), "", "", "")
	f.Fuzz(func(t *testing.T, labels, instanceID, set, run, indexLabel, index string, exit int32, reason, podReason, message string) {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "coligo-x",
				Labels:      map[string]string{labelInstance: instanceID, labelSet: set, labelRun: run, labelIndex: index},
				Annotations: map[string]string{annotLabels: labels, annotIndexLabel: indexLabel}},
			Status: corev1.PodStatus{Reason: podReason, Message: message, ContainerStatuses: []corev1.ContainerStatus{{
				Name: container, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: exit, Reason: reason}},
			}}},
		}
		in := (&Engine{}).instance("x", pod)
		if owned := set != "" || run != ""; owned && instanceID != "" && in.ID != instanceID || !(owned && instanceID != "") && in.ID != "p" {
			t.Errorf("instance of pod p (instance label %q, set %q, run %q) is named %q", instanceID, set, run, in.ID)
		}
		if in.State != engine.StateExited || in.ExitCode != int(exit) && !(in.Evicted != "" && exit == 0) {
			t.Errorf("terminated pod (exit %d): %+v", exit, in)
		}
		unclaimedGoing(pod)
	})
}
