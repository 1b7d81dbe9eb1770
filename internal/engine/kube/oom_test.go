package kube

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestOOMKilled(t *testing.T) {
	limited := corev1.PodSpec{Containers: []corev1.Container{{Name: container,
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}}}}
	unlimited := corev1.PodSpec{Containers: []corev1.Container{{Name: container}}}
	now := metav1.Now()
	tests := []struct {
		name     string
		spec     corev1.PodSpec
		deleting bool
		reason   string // the pod's
		exit     int32
		term     string // the container's
		want     bool
	}{
		{"the kubelet says OOMKilled", limited, false, "", 137, "OOMKilled", true},
		{"exit handled before the OOM event", limited, false, "", 137, "Error", true},
		{"no memory limit", unlimited, false, "", 137, "Error", false},
		{"killed by its deletion", limited, true, "", 137, "Error", false},
		{"evicted", limited, false, "Evicted", 137, "Error", false},
		{"past its deadline", limited, false, "DeadlineExceeded", 137, "Error", false},
		{"an ordinary failure", limited, false, "", 1, "Error", false},
		{"success", limited, false, "", 0, "Completed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: tt.spec, Status: corev1.PodStatus{Reason: tt.reason}}
			if tt.deleting {
				pod.DeletionTimestamp = &now
			}
			got := oomKilled(pod, &corev1.ContainerStateTerminated{ExitCode: tt.exit, Reason: tt.term})
			if got != tt.want {
				t.Errorf("oomKilled = %v, want %v", got, tt.want)
			}
		})
	}
}
