package jobrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// failure is why an index did not start: a failure of the index, (wait)
// something it needs that is missing now and may exist later, or (later) an
// instance that containerd is still creating from before a crash.
type failure struct {
	reason string
	wait   bool
	later  bool
}

// start starts the instances of indices, a bounded number at a time.
func (c *Controller) start(ctx context.Context, p core.Project, run *core.JobRun, indices []int) map[int]failure {
	auth, fail := c.pullAuth(ctx, p.ID, run)
	env, envFail := c.userEnv(ctx, p.ID, run.RunEnvVariables)
	out := map[int]failure{}
	if fail != nil || envFail != nil {
		f := fail
		if f == nil {
			f = envFail
		}
		for _, i := range indices {
			out[i] = *f
		}
		return out
	}
	milli, _ := core.ParseCPU(run.ScaleCPULimit)
	mem, _ := core.ParseBytes("scale_memory_limit", run.ScaleMemoryLimit)
	eph, _ := core.ParseBytes("scale_ephemeral_storage_limit", run.ScaleEphemeralStorageLimit)
	arraySize := len(run.Indices)
	if run.ArraySizeVariableOverride > 0 {
		arraySize = run.ArraySizeVariableOverride
	}
	var mu sync.Mutex
	sem := make(chan struct{}, c.cfg.Parallel)
	var wg sync.WaitGroup
	for _, i := range indices {
		s := run.Indices[i]
		id := core.InstanceName(run.Name, i, s.Retries)
		vars := append(append([]string{}, env...),
			"CE_JOBRUN="+run.Name, "CE_PROJECT_ID="+p.ID, "CE_SUBDOMAIN="+p.Subdomain, "CE_DOMAIN="+c.cfg.Domain,
			"CE_REGION="+c.cfg.Region, "CE_API_BASE_URL="+c.cfg.BaseURL,
			"JOB_INDEX="+strconv.Itoa(i), "JOB_ARRAY_SIZE="+strconv.Itoa(arraySize),
			"JOB_INDEX_RETRY_COUNT="+strconv.Itoa(s.Retries), "JOB_MODE="+run.RunMode,
			"JOB_RETRY_LIMIT="+strconv.Itoa(run.ScaleRetryLimit), "HOSTNAME="+id)
		if run.JobName != "" {
			vars = append(vars, "CE_JOB="+run.JobName)
		}
		spec := engine.Spec{
			ID: id, Project: p.ID, Image: run.ImageReference, Auth: auth,
			Command: run.RunCommands, Args: run.RunArguments, Env: vars, UID: run.RunAsUser,
			MilliCPU: milli, MemoryBytes: mem, EphemeralBytes: eph,
			Labels: map[string]string{LabelKind: kindJobRunV, LabelRun: run.Name, LabelJob: run.JobName,
				LabelIndex: strconv.Itoa(i), LabelRetry: strconv.Itoa(s.Retries)},
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := c.cfg.Engine.Run(ctx, spec)
			if err == nil {
				c.mu.Lock()
				delete(c.createFailures, id)
				c.mu.Unlock()
				return
			}
			f := failure{reason: "ContainerCreateFailed"}
			if pe, ok := engine.IsPullError(err); ok {
				f.reason = pe.Reason
			} else if c.createFailed(id, c.cfg.Now()) {
				// Often a create from before a restart that containerd is
				// still finishing or tearing down; the next pass tries again.
				f.later = true
			}
			c.log.Warn("instance did not start", "project", p.ID, "instance", id, "reason", f.reason, "retry_later", f.later, "err", err)
			mu.Lock()
			out[i] = f
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

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

// pullAuth reads the run's registry secret.
func (c *Controller) pullAuth(ctx context.Context, project string, run *core.JobRun) (*engine.RegistryAuth, *failure) {
	if run.ImageSecret == "" {
		return nil, nil
	}
	s, err := c.secret(ctx, project, run.ImageSecret)
	if errors.Is(err, core.ErrNotFound) {
		return nil, &failure{reason: "fetch_image_failed_missing_pull_secret"}
	}
	if err != nil || s.Format != core.FormatRegistry {
		return nil, &failure{reason: "fetch_image_failed_missing_pull_secret"}
	}
	return &engine.RegistryAuth{Server: s.Data["server"], Username: s.Data["username"], Password: s.Data["password"]}, nil
}

func (c *Controller) secret(ctx context.Context, project, name string) (core.Secret, error) {
	var s core.Secret
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindSecret, Name: name})
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(rec.Value, &s)
}

func (c *Controller) configMap(ctx context.Context, project, name string) (map[string]string, error) {
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindConfigMap, Name: name})
	if err != nil {
		return nil, err
	}
	var cm core.ConfigMap
	return cm.Data, json.Unmarshal(rec.Value, &cm)
}

// userEnv resolves run_env_variables with Code Engine's precedence: full
// references in order (the last wins), then literals and key references,
// which beat full references whatever their order.
func (c *Controller) userEnv(ctx context.Context, project string, vars []core.EnvVar) ([]string, *failure) {
	values := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := values[k]; !ok {
			order = append(order, k)
		}
		values[k] = v
	}
	load := func(typ, ref string) (map[string]string, *failure) {
		var data map[string]string
		var err error
		if typ == core.EnvSecretFull || typ == core.EnvSecretKey {
			var s core.Secret
			s, err = c.secret(ctx, project, ref)
			data = s.Data
		} else {
			data, err = c.configMap(ctx, project, ref)
		}
		if errors.Is(err, core.ErrNotFound) {
			return nil, &failure{reason: fmt.Sprintf("waiting for %s %q, which does not exist", kindWord(typ), ref), wait: true}
		}
		if err != nil {
			return nil, &failure{reason: fmt.Sprintf("read %s %q: %v", kindWord(typ), ref, err), wait: true}
		}
		return data, nil
	}
	for _, full := range []bool{true, false} {
		for _, v := range vars {
			switch {
			case full && (v.Type == core.EnvSecretFull || v.Type == core.EnvConfigMapFull):
				data, f := load(v.Type, v.Reference)
				if f != nil {
					return nil, f
				}
				keys := make([]string, 0, len(data))
				for k := range data {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					set(v.Prefix+k, data[k])
				}
			case !full && (v.Type == core.EnvLiteral || v.Type == ""):
				set(v.Name, v.Value)
			case !full && (v.Type == core.EnvSecretKey || v.Type == core.EnvConfigMapKey):
				data, f := load(v.Type, v.Reference)
				if f != nil {
					return nil, f
				}
				val, ok := data[v.Key]
				if !ok {
					return nil, &failure{reason: fmt.Sprintf("waiting for key %q in %s %q", v.Key, kindWord(v.Type), v.Reference), wait: true}
				}
				name := v.Name
				if name == "" {
					name = v.Key
				}
				set(name, val)
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+values[k])
	}
	return out, nil
}

func kindWord(typ string) string {
	if typ == core.EnvSecretFull || typ == core.EnvSecretKey {
		return "secret"
	}
	return "config map"
}
