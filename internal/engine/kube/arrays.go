package kube

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coligo/coligo/internal/engine"
)

// What an array's pods carry: the template's annotations name the run, the
// JOB_INDEX of each completion index and the labels coligo reads index and
// retry from; the admission policy adds each pod's instance name, index and
// retry count as labels.
const (
	labelRun        = "coligo.dev/run"
	labelIndex      = "coligo.dev/index"
	labelRetry      = "coligo.dev/retry"
	annotIndices    = "coligo.dev/indices"
	annotIndexLabel = "coligo.dev/index-label"
	annotRetryLabel = "coligo.dev/retry-label"
	policyName      = "coligo-job-index"
)

// indexPolicy is the MutatingAdmissionPolicy that gives each pod of an
// Indexed Job its JOB_INDEX from the run's array spec, which may have gaps
// ("1,3,5-7": completion index 2 runs JOB_INDEX 5), its retry count and its
// instance name. Kubernetes itself only numbers completions 0..n-1.
func indexPolicy() (*admissionv1.MutatingAdmissionPolicy, *admissionv1.MutatingAdmissionPolicyBinding) {
	fail := admissionv1.Fail
	env := func(name, value string) string {
		return `JSONPatch{op: "add", path: "/spec/containers/0/env/-", value: Object.spec.containers.env{name: "` + name + `", value: ` + value + `}}`
	}
	label := func(key, value string) string {
		return `JSONPatch{op: "add", path: "/metadata/labels/` + strings.ReplaceAll(key, "/", "~1") + `", value: ` + value + `}`
	}
	patch := "[" + strings.Join([]string{
		env("JOB_INDEX", "variables.index"), env("JOB_INDEX_RETRY_COUNT", "variables.retry"), env("HOSTNAME", "variables.id"),
		label(labelInstance, "variables.id"), label(labelIndex, "variables.index"), label(labelRetry, "variables.retry"),
	}, ", ") + "]"
	p := &admissionv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: policyName, Labels: map[string]string{labelManaged: managedBy}},
		Spec: admissionv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionv1.MatchResources{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{labelManaged: managedBy}},
				ResourceRules: []admissionv1.NamedRuleWithOperations{{RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
				}}},
			},
			MatchConditions: []admissionv1.MatchCondition{{Name: "coligo-array-pod",
				Expression: `has(object.metadata.annotations) && '` + annotIndices + `' in object.metadata.annotations && 'batch.kubernetes.io/job-completion-index' in object.metadata.annotations`}},
			Variables: []admissionv1.Variable{
				{Name: "ann", Expression: "object.metadata.annotations"},
				{Name: "index", Expression: `variables.ann['` + annotIndices + `'].split(',')[int(variables.ann['batch.kubernetes.io/job-completion-index'])]`},
				{Name: "retry", Expression: `'batch.kubernetes.io/job-index-failure-count' in variables.ann ? variables.ann['batch.kubernetes.io/job-index-failure-count'] : '0'`},
				{Name: "id", Expression: `variables.ann['` + labelRun + `'] + '-' + variables.index + '-' + variables.retry`},
			},
			Mutations:          []admissionv1.Mutation{{PatchType: admissionv1.PatchTypeJSONPatch, JSONPatch: &admissionv1.JSONPatch{Expression: patch}}},
			FailurePolicy:      &fail,
			ReinvocationPolicy: admissionv1.NeverReinvocationPolicy,
		},
	}
	b := &admissionv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policyName, Labels: map[string]string{labelManaged: managedBy}},
		Spec:       admissionv1.MutatingAdmissionPolicyBindingSpec{PolicyName: policyName},
	}
	return p, b
}

// ensurePolicy installs the index policy, or brings it up to date.
func (e *Engine) ensurePolicy(ctx context.Context, ns string) error {
	e.mu.Lock()
	done := e.policyReady
	e.mu.Unlock()
	if done {
		return nil
	}
	p, b := indexPolicy()
	api := e.client.AdmissionregistrationV1()
	if cur, err := api.MutatingAdmissionPolicies().Get(ctx, p.Name, metav1.GetOptions{}); err == nil {
		p.ResourceVersion = cur.ResourceVersion
		_, err = api.MutatingAdmissionPolicies().Update(ctx, p, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("update admission policy %s: %w", p.Name, opaque(err))
		}
	} else if _, err := api.MutatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create admission policy %s: %w", p.Name, opaque(err))
	}
	if _, err := api.MutatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create admission policy binding %s: %w", b.Name, opaque(err))
	}
	if err := e.checkPolicy(ctx, ns); err != nil {
		return err
	}
	e.mu.Lock()
	e.policyReady = true
	e.mu.Unlock()
	return nil
}

// checkPolicy waits until the API server applies the index policy (it
// learns of a new policy a moment after it is created): a dry-run pod of
// an array must come back with its instance name.
func (e *Engine) checkPolicy(ctx context.Context, ns string) error {
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "coligo-policy-probe-", Namespace: ns, Labels: map[string]string{labelManaged: managedBy},
			Annotations: map[string]string{annotIndices: "7", labelRun: "probe", "batch.kubernetes.io/job-completion-index": "0"}},
		// The least a pod may ask for: the namespace's quota wants limits.
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: container, Image: "probe", Env: []corev1.EnvVar{{Name: "X", Value: "x"}},
			Resources: resources(engine.Spec{MilliCPU: 1, MemoryBytes: 1 << 20, EphemeralBytes: 1 << 20})}}},
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		got, err := e.client.CoreV1().Pods(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil && got.Labels[labelInstance] == "probe-7-0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("admission policy %s is not applied (MutatingAdmissionPolicy needs Kubernetes 1.36, or 1.34 with its feature gate): %v", policyName, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// RunArray implements engine.Arrays with one Indexed Job: completions and
// parallelism from the array, backoffLimitPerIndex from the retry limit,
// activeDeadlineSeconds from the deadline.
func (e *Engine) RunArray(ctx context.Context, a engine.Array) error {
	if err := noBuckets(a.Template); err != nil {
		return err
	}
	ns := Namespace(a.Project)
	if err := e.ensureProject(ctx, a.Project); err != nil {
		return err
	}
	jobs := e.client.BatchV1().Jobs(ns)
	if cur, err := jobs.Get(ctx, a.Name, metav1.GetOptions{}); err == nil {
		if cur.Spec.Suspend != nil && *cur.Spec.Suspend {
			if _, err := jobs.Patch(ctx, a.Name, types.MergePatchType, []byte(`{"spec":{"suspend":false}}`), metav1.PatchOptions{}); err != nil {
				return fmt.Errorf("resume job run %s: %w", a.Name, opaque(err))
			}
		}
		return nil
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("get job run %s: %w", a.Name, opaque(err))
	}
	if len(a.Indices) == 0 {
		return fmt.Errorf("job run %s has no indices", a.Name)
	}
	if err := e.ensurePolicy(ctx, ns); err != nil {
		return err
	}
	pull, err := e.pullSecrets(ctx, a.Project, a.Template.Image, a.Template.Auth)
	if err != nil {
		return err
	}
	st := stage(ns, a.Name, map[string]string{labelRun: a.Name}, a.Template.Env, a.Template.Mounts)
	if err := e.write(ctx, st); err != nil {
		return err
	}
	meta, err := instanceMeta(ns, a.Name, a.Template.Labels)
	if err != nil {
		return err
	}
	delete(meta.Labels, labelInstance) // each pod gets its own from the policy
	meta.Labels[labelRun] = a.Name
	idx := make([]string, len(a.Indices))
	for i, v := range a.Indices {
		idx[i] = strconv.Itoa(v)
	}
	meta.Annotations[annotIndices] = strings.Join(idx, ",")
	meta.Annotations[labelRun] = a.Name
	meta.Annotations[annotIndexLabel] = a.IndexLabel
	meta.Annotations[annotRetryLabel] = a.RetryLabel
	spec := podSpec(a.Template, pull, st, e.hostAliases(ctx, ns))
	// The policy appends JOB_INDEX and the others to the list (it sets no
	// value of the run's own environment, which comes from its Secret).
	spec.Containers[0].Env = []corev1.EnvVar{{Name: "CE_JOBRUN", Value: a.Name}}
	retries := int32(a.RetryLimit)
	if a.Daemon {
		retries = math.MaxInt32
	}
	mode := batchv1.IndexedCompletion
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: a.Name, Namespace: ns, Labels: map[string]string{labelManaged: managedBy, labelRun: a.Name}},
		Spec: batchv1.JobSpec{
			CompletionMode:       &mode,
			Completions:          new(int32(len(a.Indices))),
			Parallelism:          new(int32(max(1, a.Parallelism))),
			BackoffLimitPerIndex: &retries,
			Template:             corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: meta.Labels, Annotations: meta.Annotations}, Spec: spec},
		},
	}
	if a.Deadline > 0 {
		job.Spec.ActiveDeadlineSeconds = new(int64(math.Ceil(a.Deadline.Seconds())))
	}
	if _, err := jobs.Create(ctx, job, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create job run %s: %w", a.Name, opaque(err))
	}
	return nil
}

// StopArray implements engine.Arrays by suspending the Job: the job
// controller ends its running pods and starts no more.
func (e *Engine) StopArray(ctx context.Context, project, name string) error {
	if ok, err := e.inProject(ctx, project); !ok {
		return err
	}
	_, err := e.client.BatchV1().Jobs(Namespace(project)).Patch(ctx, name, types.MergePatchType, []byte(`{"spec":{"suspend":true}}`), metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("stop job run %s: %w", name, opaque(err))
	}
	return nil
}

// RemoveArray implements engine.Arrays.
func (e *Engine) RemoveArray(ctx context.Context, project, name string) error {
	ns := Namespace(project)
	if ok, err := e.inProject(ctx, project); !ok {
		return err
	}
	bg := metav1.DeletePropagationBackground
	if err := e.client.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove job run %s: %w", name, opaque(err))
	}
	err := e.client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: labelRun + "=" + name})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("remove the files of job run %s: %w", name, opaque(err))
	}
	return nil
}

// arrayLabels adds an array pod's index and retry count to its instance's
// labels, under the names the array asked for.
func arrayLabels(pod *corev1.Pod, labels map[string]string) map[string]string {
	il, rl := pod.Annotations[annotIndexLabel], pod.Annotations[annotRetryLabel]
	if il == "" || pod.Labels[labelIndex] == "" {
		return labels
	}
	out := map[string]string{}
	for k, v := range labels {
		out[k] = v
	}
	out[il] = pod.Labels[labelIndex]
	if rl != "" {
		out[rl] = pod.Labels[labelRetry]
	}
	return out
}

var _ engine.Arrays = (*Engine)(nil)
