package jobrun

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
)

// failure is why an index did not start: a failure of the index, (wait)
// something it needs that is missing now and may exist later, or (later) an
// instance that containerd is still creating from before a crash.
type failure struct {
	reason string
	wait   bool
	later  bool
}

// template is the spec every instance of a run shares: all but its name,
// index, retry count and the variables that carry them.
func (c *Controller) template(ctx context.Context, p core.Project, run *core.JobRun) (engine.Spec, *runenv.Failure) {
	auth, fail := runenv.PullAuth(ctx, c.cfg.Store, p.ID, run.ImageSecret)
	if fail != nil {
		return engine.Spec{}, fail
	}
	image, err := c.pin(ctx, p.ID, run, auth)
	if errors.Is(err, engine.ErrUnavailable) {
		c.log.Warn("the engine is unavailable; the run waits", "project", p.ID, "run", run.Name, "err", err)
		return engine.Spec{}, &runenv.Failure{Reason: "waiting for the engine, which does not answer", Wait: true}
	}
	if err != nil {
		reason := engine.PullFailed
		if pe, ok := engine.IsPullError(err); ok {
			reason = pe.Reason
		}
		c.log.Warn("image not resolved", "project", p.ID, "run", run.Name, "reason", reason, "err", err)
		return engine.Spec{}, &runenv.Failure{Reason: reason}
	}
	vars, fail := runenv.UserEnv(ctx, c.cfg.Store, p.ID, run.RunEnvVariables)
	if fail == nil && run.JobName != "" {
		vars, fail = runenv.WithBindings(ctx, c.cfg.Store, p.ID, core.KindJob, run.JobName, vars)
	}
	if fail != nil {
		return engine.Spec{}, fail
	}
	mounts, buckets, fail := runenv.Mounts(ctx, c.cfg.Store, p.ID, run.RunVolumeMounts, c.cfg.ObjectStorage)
	if fail != nil {
		return engine.Spec{}, fail
	}
	size := quota.Instance(run.ScaleCPULimit, run.ScaleMemoryLimit, run.ScaleEphemeralStorageLimit)
	arraySize := len(run.Indices)
	if run.ArraySizeVariableOverride > 0 {
		arraySize = run.ArraySizeVariableOverride
	}
	for _, e := range core.PlatformEnv(c.cfg.Platform, p) {
		vars = append(vars, e.Name+"="+e.Value)
	}
	vars = append(vars, "CE_JOBRUN="+run.Name, "JOB_ARRAY_SIZE="+strconv.Itoa(arraySize),
		"JOB_MODE="+run.RunMode, "JOB_RETRY_LIMIT="+strconv.Itoa(run.ScaleRetryLimit))
	if run.JobName != "" {
		vars = append(vars, "CE_JOB="+run.JobName)
	}
	spec := engine.Spec{
		Project: p.ID, Image: image, Auth: auth,
		Command: run.RunCommands, Args: run.RunArguments, Env: vars, UID: run.RunAsUser, Mounts: mounts, Buckets: buckets,
		MilliCPU: size.MilliCPU, MemoryBytes: size.Memory, EphemeralBytes: size.Ephemeral,
		Labels: map[string]string{LabelKind: kindJobRunV, LabelRun: run.Name, LabelJob: run.JobName},
	}
	if run.RunComputeResourceTokenEnabled {
		updates, _ := c.cfg.Engine.(engine.FileUpdater)
		if fail := runenv.ComputeToken(ctx, c.cfg.ComputeTokens, updates, c.cfg.ComputeTokenLife, c.cfg.Now(), &spec, "jobrun/"+run.Name); fail != nil {
			return engine.Spec{}, fail
		}
	}
	return spec, nil
}

// pin resolves a run's image against its registry with the run's own
// credentials, once per run (a manifest HEAD; cached layers are reused),
// and returns it pinned to its digest: a private image that an earlier run
// of the project pulled never runs for a run without valid credentials.
func (c *Controller) pin(ctx context.Context, project string, run *core.JobRun, auth *engine.RegistryAuth) (string, error) {
	k := key{project, run.Name}
	c.mu.Lock()
	pinned, ok := c.pinned[k]
	c.mu.Unlock()
	if ok {
		return pinned, nil
	}
	ctx, cancel := context.WithTimeout(ctx, engineStartTimeout)
	defer cancel()
	pinned, err := c.cfg.Engine.Pull(ctx, project, run.ImageReference, auth)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.pinned[k] = pinned
	c.mu.Unlock()
	return pinned, nil
}

// start starts the instances of indices, a bounded number at a time.
func (c *Controller) start(ctx context.Context, p core.Project, run *core.JobRun, indices []int) map[int]failure {
	out := map[int]failure{}
	tmpl, fail := c.template(ctx, p, run)
	if fail != nil {
		for _, i := range indices {
			out[i] = failure{reason: fail.Reason, wait: fail.Wait}
		}
		return out
	}
	var mu sync.Mutex
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	for _, i := range indices {
		s := run.Indices[i]
		id := core.InstanceName(run.Name, i, s.Retries)
		spec := tmpl
		spec.ID = id
		spec.Env = append(append([]string{}, tmpl.Env...), "JOB_INDEX="+strconv.Itoa(i),
			"JOB_INDEX_RETRY_COUNT="+strconv.Itoa(s.Retries), "HOSTNAME="+id)
		spec.Labels = maps.Clone(tmpl.Labels)
		spec.Labels[LabelIndex], spec.Labels[LabelRetry] = strconv.Itoa(i), strconv.Itoa(s.Retries)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(ctx, engineStartTimeout)
			defer cancel()
			_, err := c.cfg.Engine.Run(ctx, spec)
			if err == nil {
				c.mu.Lock()
				delete(c.createFailures, id)
				c.mu.Unlock()
				return
			}
			f := c.startFailure(id, err)
			c.log.Warn("instance did not start", "project", p.ID, "instance", id, "reason", f.reason, "retry_later", f.later, "err", err)
			mu.Lock()
			out[i] = f
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// startFailure is what a failed start of instance (or array) id means.
func (c *Controller) startFailure(id string, err error) failure {
	f := failure{reason: "ContainerCreateFailed"}
	var me *engine.MountError
	if pe, ok := engine.IsPullError(err); ok {
		f.reason = pe.Reason
	} else if errors.As(err, &me) {
		f.reason = engine.MountFailed
	} else if errors.Is(err, engine.ErrNoCommand) {
		f.reason = "CommandNotFound"
	} else if c.createFailed(id, c.cfg.Now()) {
		// Often a create from before a restart that containerd is
		// still finishing or tearing down; the next pass tries again.
		f.later = true
	}
	return f
}

// startArray hands the whole run to an engine that runs arrays itself. A
// failure applies to every index that has not started.
func (c *Controller) startArray(ctx context.Context, arrays engine.Arrays, p core.Project, run *core.JobRun) *failure {
	tmpl, fail := c.template(ctx, p, run)
	if fail != nil {
		return &failure{reason: fail.Reason, wait: fail.Wait}
	}
	indices, _ := core.ParseArraySpec(run.ScaleArraySpec)
	a := engine.Array{Name: run.Name, Project: p.ID, Template: tmpl, Indices: indices,
		Parallelism: min(len(indices), c.cfg.MaxInstances), RetryLimit: run.ScaleRetryLimit, Daemon: run.RunMode == core.ModeDaemon,
		IndexLabel: LabelIndex, RetryLabel: LabelRetry}
	if run.RunMode == core.ModeTask {
		a.Deadline = time.Duration(run.ScaleMaxExecutionTime) * time.Second
	}
	if err := arrays.RunArray(ctx, a); err != nil {
		f := c.startFailure(run.Name, err)
		c.log.Warn("job run did not start", "project", p.ID, "jobrun", run.Name, "reason", f.reason, "retry_later", f.later, "err", err)
		return &f
	}
	c.mu.Lock()
	delete(c.createFailures, run.Name)
	c.mu.Unlock()
	return nil
}

// engineStartTimeout bounds an instance's start, its pull included.
const engineStartTimeout = 5 * time.Minute

// Creates of one instance that fail are tried again every createBackoff
// for createGiveUp, then its index fails with ContainerCreateFailed.
const (
	createBackoff = 2 * time.Second
	createGiveUp  = time.Minute
)

type createFailure struct{ first, next time.Time }

// createFailed records a failed create of an instance and reports whether
// to try again later.
func (c *Controller) createFailed(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.createFailures[id]
	if !ok {
		f.first = now
	}
	f.next = now.Add(createBackoff)
	c.createFailures[id] = f
	return now.Sub(f.first) < createGiveUp
}

// createWaiting reports whether an instance's create is backing off.
func (c *Controller) createWaiting(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.createFailures[id]
	return ok && now.Before(f.next)
}
