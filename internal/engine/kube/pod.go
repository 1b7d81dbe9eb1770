package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/coligo/coligo/internal/engine"
)

// podSpec is the pod of an instance: one container with the spec's image,
// command, user and limits, its environment and files from its Secrets
// (files read-only), and nothing of the cluster's own (no service account
// token, no service links).
//
// The container is confined as on the local engine: the runtime's default
// seccomp profile, every capability dropped but Docker's defaults less
// NET_RAW and MKNOD, no privilege escalation. A workload with registry
// credentials pulls Always, so an image a node cached for another project
// does not run without the registry accepting these credentials.
func podSpec(spec engine.Spec, pull []corev1.LocalObjectReference, st stored, aliases []corev1.HostAlias) corev1.PodSpec {
	policy := corev1.PullIfNotPresent
	if spec.Auth != nil {
		policy = corev1.PullAlways
	}
	c := corev1.Container{
		Name: container, Image: spec.Image, Command: spec.Command, Args: spec.Args,
		ImagePullPolicy: policy, VolumeMounts: st.mounts,
		Resources: resources(spec),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: defaultCaps},
		},
	}
	if st.env != "" {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: st.env}}}}
	}
	if spec.UID > 0 {
		c.SecurityContext.RunAsUser = new(int64(spec.UID))
	}
	grace := int64(30)
	return corev1.PodSpec{
		Containers:                    []corev1.Container{c},
		RestartPolicy:                 corev1.RestartPolicyNever,
		ImagePullSecrets:              pull,
		Volumes:                       st.vols,
		HostAliases:                   aliases,
		AutomountServiceAccountToken:  new(false),
		EnableServiceLinks:            new(false),
		DNSPolicy:                     corev1.DNSDefault,
		TerminationGracePeriodSeconds: &grace,
	}
}

// defaultCaps are Docker's default capabilities less NET_RAW and MKNOD: all
// within Pod Security's baseline profile.
var defaultCaps = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETFCAP", "SETPCAP",
	"NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"}

// podFor is the pod of an instance.
func podFor(spec engine.Spec, pull []corev1.LocalObjectReference, st stored, aliases []corev1.HostAlias) (*corev1.Pod, error) {
	if errs := validation.IsDNS1123Subdomain(spec.ID); len(errs) > 0 {
		return nil, fmt.Errorf("instance name %q: %s", spec.ID, strings.Join(errs, "; "))
	}
	meta, err := instanceMeta(Namespace(spec.Project), spec.ID, spec.Labels)
	if err != nil {
		return nil, err
	}
	meta.Finalizers = []string{finalizer}
	return &corev1.Pod{ObjectMeta: meta, Spec: podSpec(spec, pull, st, aliases)}, nil
}

// instanceMeta names an instance's object and carries its labels: as an
// annotation (coligo's labels may hold any value) and, where they are valid
// Kubernetes labels, as labels too, for the cluster's operators.
func instanceMeta(ns, name string, labels map[string]string) (metav1.ObjectMeta, error) {
	b, err := json.Marshal(labels)
	if err != nil {
		return metav1.ObjectMeta{}, fmt.Errorf("labels of %s: %w", name, opaque(err))
	}
	kl := map[string]string{labelManaged: managedBy, labelInstance: name}
	for k, v := range labels {
		if len(validation.IsQualifiedName(k)) == 0 && len(validation.IsValidLabelValue(v)) == 0 {
			kl[k] = v
		}
	}
	return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: kl, Annotations: map[string]string{annotLabels: string(b)}}, nil
}

// resources makes the limits requests too: an instance gets what it is
// allowed, as on Code Engine.
func resources(spec engine.Spec) corev1.ResourceRequirements {
	l := corev1.ResourceList{}
	if spec.MilliCPU > 0 {
		l[corev1.ResourceCPU] = *resource.NewMilliQuantity(spec.MilliCPU, resource.DecimalSI)
	}
	if spec.MemoryBytes > 0 {
		l[corev1.ResourceMemory] = *resource.NewQuantity(spec.MemoryBytes, resource.BinarySI)
	}
	if spec.EphemeralBytes > 0 {
		l[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(spec.EphemeralBytes, resource.BinarySI)
	}
	if len(l) == 0 {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{Limits: l, Requests: l.DeepCopy()}
}

// stored is what a pod takes from Secrets of its owner (an instance, a job
// run or a set): its environment and its files. Pod specs, Job and
// ReplicaSet templates then hold no value of the environment, only names.
type stored struct {
	env     string // the Secret with the environment; "" when there is none
	vols    []corev1.Volume
	mounts  []corev1.VolumeMount
	sum     string           // of the environment and the files, to notice a change
	secrets []*corev1.Secret // to write before a pod uses them
}

// stage lays out the environment and the files of an owner as its Secrets,
// labelled so that they go with it; write stores them.
func stage(ns, owner string, labels map[string]string, env []string, ms []engine.Mount) stored {
	var st stored
	h := sha256.New()
	secret := func(name string) *corev1.Secret {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{labelManaged: managedBy}},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{}}
		for k, v := range labels {
			s.Labels[k] = v
		}
		st.secrets = append(st.secrets, s)
		return s
	}
	if len(env) > 0 {
		s := secret(owner + "-env")
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			s.Data[k] = []byte(v)
			fmt.Fprintf(h, "%q=%q\n", k, v)
		}
		st.env = s.Name
	}
	for i, m := range ms {
		s := secret(owner + "-files-" + strconv.Itoa(i))
		var items []corev1.KeyToPath
		keys := make([]string, 0, len(m.Files))
		for k := range m.Files {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for j, k := range keys {
			key := "f" + strconv.Itoa(j) // file names need not be valid keys
			s.Data[key] = m.Files[k]
			items = append(items, corev1.KeyToPath{Key: key, Path: k})
			fmt.Fprintf(h, "%d %q %q\n", i, k, m.Files[k])
		}
		vol := "files-" + strconv.Itoa(i)
		st.vols = append(st.vols, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: s.Name, Items: items, DefaultMode: new(int32(0o444)),
		}}})
		st.mounts = append(st.mounts, corev1.VolumeMount{Name: vol, MountPath: m.Dir, ReadOnly: true})
	}
	st.sum = hex.EncodeToString(h.Sum(nil)[:8])
	return st
}

// write stores the Secrets of st.
func (e *Engine) write(ctx context.Context, st stored) error {
	for _, s := range st.secrets {
		if err := e.put(ctx, s); err != nil {
			return fmt.Errorf("store secret %s: %w", s.Name, err)
		}
	}
	return nil
}

// put creates a Secret, or replaces the one of that name.
func (e *Engine) put(ctx context.Context, s *corev1.Secret) error {
	_, err := e.client.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = e.client.CoreV1().Secrets(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
	}
	if err != nil {
		return opaque(err)
	}
	return nil
}
