package apiserver

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

func toAPISpec(s core.RunSpec) api.RunSpec {
	out := api.RunSpec{
		Build: s.Build, BuildRun: s.BuildRun, ImageReference: s.ImageReference, ImageSecret: s.ImageSecret, RunArguments: s.RunArguments, RunCommands: s.RunCommands,
		RunAsUser: &s.RunAsUser, RunComputeResourceTokenEnabled: &s.RunComputeResourceTokenEnabled, RunMode: s.RunMode, RunServiceAccount: s.RunServiceAccount, ScaleArraySpec: s.ScaleArraySpec,
		ScaleCPULimit: s.ScaleCPULimit, ScaleMemoryLimit: s.ScaleMemoryLimit, ScaleEphemeralStorageLimit: s.ScaleEphemeralStorageLimit,
		RunEnvVariables: []api.EnvVar{},
	}
	for _, e := range s.RunEnvVariables {
		out.RunEnvVariables = append(out.RunEnvVariables, api.EnvVar(e))
	}
	for _, m := range s.RunVolumeMounts {
		out.RunVolumeMounts = append(out.RunVolumeMounts, api.VolumeMount(m))
	}
	if s.RunMode == core.ModeTask {
		out.ScaleMaxExecutionTime, out.ScaleRetryLimit = &s.ScaleMaxExecutionTime, &s.ScaleRetryLimit
	}
	return out
}

// overlay applies the fields set in a prototype or patch onto s.
func overlay(s *core.RunSpec, in api.RunSpec) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&s.Build, in.Build)
	set(&s.BuildRun, in.BuildRun)
	set(&s.ImageReference, in.ImageReference)
	set(&s.ImageSecret, in.ImageSecret)
	set(&s.RunMode, in.RunMode)
	set(&s.RunServiceAccount, in.RunServiceAccount)
	set(&s.ScaleArraySpec, in.ScaleArraySpec)
	set(&s.ScaleCPULimit, in.ScaleCPULimit)
	set(&s.ScaleMemoryLimit, in.ScaleMemoryLimit)
	set(&s.ScaleEphemeralStorageLimit, in.ScaleEphemeralStorageLimit)
	if in.RunArguments != nil {
		s.RunArguments = in.RunArguments
	}
	if in.RunCommands != nil {
		s.RunCommands = in.RunCommands
	}
	if in.RunAsUser != nil {
		s.RunAsUser = *in.RunAsUser
	}
	if in.RunComputeResourceTokenEnabled != nil {
		s.RunComputeResourceTokenEnabled = *in.RunComputeResourceTokenEnabled
	}
	if in.RunEnvVariables != nil {
		s.RunEnvVariables = nil
		for _, e := range in.RunEnvVariables {
			if e.Type == "" {
				e.Type = core.EnvLiteral
			}
			s.RunEnvVariables = append(s.RunEnvVariables, core.EnvVar(e))
		}
	}
	if in.RunVolumeMounts != nil {
		s.RunVolumeMounts = nil
		for _, m := range in.RunVolumeMounts {
			s.RunVolumeMounts = append(s.RunVolumeMounts, core.VolumeMount(m))
		}
	}
	if in.ScaleMaxExecutionTime != nil {
		s.ScaleMaxExecutionTime = *in.ScaleMaxExecutionTime
	}
	if in.ScaleRetryLimit != nil {
		s.ScaleRetryLimit = *in.ScaleRetryLimit
	}
}

// finishSpec applies defaults for fields left unset, by mode, and validates.
func finishSpec(s *core.RunSpec, in api.RunSpec, base bool) error {
	s.Defaults()
	if s.RunMode == core.ModeTask && base {
		if in.ScaleMaxExecutionTime == nil && s.ScaleMaxExecutionTime == 0 {
			s.ScaleMaxExecutionTime = core.DefaultMaxExecutionTime
		}
		if in.ScaleRetryLimit == nil && s.ScaleRetryLimit == 0 {
			s.ScaleRetryLimit = core.DefaultRetryLimit
		}
	}
	if s.RunMode == core.ModeTask && s.ScaleMaxExecutionTime == 0 {
		return core.Invalid("scale_max_execution_time", "must be from 1 to %d seconds", core.MaxExecutionTime)
	}
	if err := core.ValidateRunSpec(*s); err != nil {
		return err
	}
	b, _ := json.Marshal(s)
	if len(b) > core.MaxJobDefinitionBytes {
		return core.Invalid("job", "definition is %d bytes; the limit is %d (commands, arguments and literal variables count)", len(b), core.MaxJobDefinitionBytes)
	}
	return nil
}

func (a *API) computedEnv(p core.Project, extra ...api.EnvVar) []api.EnvVar {
	return append(apiEnv(core.PlatformEnv(a.platform(), p)), extra...)
}

func (a *API) jobView(r *http.Request, p core.Project, rec core.Record, j core.Job) api.Job {
	return api.Job{
		CreatedAt: rfc3339(j.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/jobs/" + j.Name,
		ID: j.ID, Name: j.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeJob,
		ComputedEnvVariables: a.computedEnv(p, api.EnvVar{Type: "literal", Name: "CE_JOB", Value: j.Name}),
		RunSpec:              toAPISpec(j.RunSpec),
	}
}

func (a *API) createJob(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.JobPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	if err := core.ValidateJobName(in.Name); err != nil {
		return err
	}
	j := core.Job{ID: uuid.NewString(), Name: in.Name, CreatedAt: a.cfg.Now().UTC()}
	overlay(&j.RunSpec, in.RunSpec)
	if err := finishSpec(&j.RunSpec, in.RunSpec, true); err != nil {
		return err
	}
	if err := a.checkImage(j.ImageReference); err != nil {
		return err
	}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindJob, Name: j.Name}, j, a.cfg.Quotas.Jobs, func(rec core.Record) any { return a.jobView(r, p, rec, j) })
}

func (a *API) getJob(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, j, err := loadRecord[core.Job](a, r, core.Ref{Project: p.ID, Kind: core.KindJob, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, a.jobView(r, p, rec, j))
	return nil
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindJob, func(p core.Project, rec core.Record, l *api.JobList) (bool, error) {
		j, err := unmarshalRecord[core.Job](rec)
		if err != nil {
			return false, err
		}
		l.Jobs = append(l.Jobs, a.jobView(r, p, rec, j))
		return true, nil
	}, func(l *api.JobList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Jobs == nil {
			l.Jobs = []api.Job{}
		}
	})
}

// updateJob applies an RFC 7386 merge patch to a job.
func (a *API) updateJob(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindJob, Name: r.PathValue("name")}
	_, j, err := loadRecord[core.Job](a, r, ref)
	if err != nil {
		return err
	}
	spec, err := applyPatch[api.RunSpec](toAPISpec(j.RunSpec), patch)
	if err != nil {
		return err
	}
	j.RunSpec = core.RunSpec{}
	overlay(&j.RunSpec, spec)
	if err := finishSpec(&j.RunSpec, spec, true); err != nil {
		return err
	}
	if err := a.checkImage(j.ImageReference); err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, j, version, func(rec core.Record) any { return a.jobView(r, p, rec, j) })
}

// readPatch reads the If-Match and the JSON merge patch (RFC 7396) of a
// PATCH request, which may not rename the resource.
func readPatch(r *http.Request) (uint64, []byte, error) {
	version, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	var patch map[string]any
	if err := decode(r, &patch); err != nil {
		return 0, nil, err
	}
	if _, ok := patch["name"]; ok {
		return 0, nil, core.Invalid("name", "cannot be changed")
	}
	b, err := json.Marshal(patch)
	return version, b, err
}

// applyPatch merges patch into cur (the fields as the API shows them) as RFC
// 7396 says, null removes a field, objects merge, anything else replaces,
// and decodes the result as strictly as a request body.
func applyPatch[T any](cur any, patch []byte) (T, error) {
	var out T
	curJSON, err := json.Marshal(cur)
	if err != nil {
		return out, err
	}
	merged, err := jsonpatch.MergePatch(curJSON, patch)
	if err != nil {
		return out, badRequest("merge patch: " + err.Error())
	}
	return out, DecodeJSON(merged, &out)
}

func (a *API) deleteJob(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindJob, Name: name}); err != nil {
		return err
	}
	if err := a.unbindAll(r, p.ID, core.BindingComponent{Name: name, ResourceType: "job_v2"}); err != nil {
		return err
	}
	// Code Engine deletes the job's runs with it unless told to orphan them.
	if r.URL.Query().Get("orphan_job_runs") != "true" {
		for r2, err := range store.Records(r.Context(), a.cfg.Store, p.ID, core.KindJobRun) {
			if err != nil {
				return err
			}
			run, err := unmarshalRecord[core.JobRun](r2)
			if err == nil && run.JobName == name {
				if err := a.cfg.Store.Delete(r.Context(), r2.Ref); err != nil && !isNotFound(err) {
					return err
				}
			}
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (a *API) jobRunView(r *http.Request, p core.Project, run core.JobRun) api.JobRun {
	extra := []api.EnvVar{{Type: "literal", Name: "CE_JOBRUN", Value: run.Name}}
	if run.JobName != "" {
		extra = append(extra, api.EnvVar{Type: "literal", Name: "CE_JOB", Value: run.JobName})
	}
	out := api.JobRun{
		CreatedAt: rfc3339(run.CreatedAt), Href: a.linkBase + "/v2/projects/" + p.ID + "/job_runs/" + run.Name,
		ID: run.ID, Name: run.Name, JobName: run.JobName, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeJobRun,
		ComputedEnvVariables: a.computedEnv(p, extra...), Status: string(run.Status), RunSpec: toAPISpec(run.RunSpec),
	}
	if run.ArraySizeVariableOverride > 0 {
		out.ScaleArraySizeVariableOverride = &run.ArraySizeVariableOverride
	}
	d := &out.StatusDetails
	d.Requested, d.Reason = len(run.Indices), run.Reason
	d.IndicesDetails = map[string]api.IndexDetails{}
	for i, s := range run.Indices {
		det := api.IndexDetails{Status: string(s.Status), Retries: s.Retries, LastFailureReason: s.LastFailureReason}
		if !s.StartedAt.IsZero() {
			det.StartedAt = rfc3339(s.StartedAt)
		}
		if !s.FinishedAt.IsZero() {
			det.FinishedAt = rfc3339(s.FinishedAt)
		}
		d.IndicesDetails[strconv.Itoa(i)] = det
	}
	for status, idx := range run.Counts() {
		switch status {
		case core.IndexPending:
			d.Pending, d.PendingIndices = len(idx), core.FormatIndices(idx)
		case core.IndexRunning:
			d.Running, d.RunningIndices = len(idx), core.FormatIndices(idx)
		case core.IndexSucceeded:
			d.Succeeded, d.SucceededIndices = len(idx), core.FormatIndices(idx)
		case core.IndexFailed:
			d.Failed, d.FailedIndices = len(idx), core.FormatIndices(idx)
		}
	}
	if !run.StartTime.IsZero() {
		d.StartTime = rfc3339(run.StartTime)
	}
	if !run.CompletionTime.IsZero() {
		d.CompletionTime = rfc3339(run.CompletionTime)
	}
	return out
}

func (a *API) createJobRun(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.JobRunPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	run := core.JobRun{ID: uuid.NewString(), Name: in.Name, JobName: in.JobName, CreatedAt: a.cfg.Now().UTC(), Status: core.RunPending}
	defer func() { nameForAudit(r, run.Name) }() // a run of a job may get its name below
	base := true
	if in.JobName != "" {
		if in.RunServiceAccount != "" {
			return core.Invalid("run_service_account", "cannot be set on a run of a job")
		}
		rec, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: core.KindJob, Name: in.JobName})
		if isNotFound(err) {
			return core.Invalid("job_name", "job %q does not exist", clipTag(in.JobName))
		}
		if err != nil {
			return err
		}
		j, err := unmarshalRecord[core.Job](rec)
		if err != nil {
			return err
		}
		run.RunSpec, base = j.RunSpec, false
		if run.Name == "" {
			run.Name = in.JobName + "-jobrun-" + randomSuffix()
		}
		// A run that switches its job to daemon mode drops the task-only limits.
		if in.RunMode == core.ModeDaemon && in.ScaleRetryLimit == nil && in.ScaleMaxExecutionTime == nil {
			run.ScaleRetryLimit, run.ScaleMaxExecutionTime = 0, 0
		}
		if in.RunMode == core.ModeTask && run.RunMode == core.ModeDaemon {
			base = true
		}
	} else if in.Name == "" || in.ImageReference == "" {
		return core.Invalid("job_name", "a run without job_name needs name and image_reference")
	}
	if err := core.ValidateJobRunName(run.Name); err != nil {
		return err
	}
	overlay(&run.RunSpec, in.RunSpec)
	if err := finishSpec(&run.RunSpec, in.RunSpec, base); err != nil {
		return err
	}
	if err := a.checkImage(run.ImageReference); err != nil {
		return err
	}
	if in.ScaleArraySizeVariableOverride != nil {
		if *in.ScaleArraySizeVariableOverride < 1 || *in.ScaleArraySizeVariableOverride > core.MaxArrayIndices {
			return core.Invalid("scale_array_size_variable_override", "must be from 1 to %d", core.MaxArrayIndices)
		}
		run.ArraySizeVariableOverride = *in.ScaleArraySizeVariableOverride
	}
	run.SetIndices()
	b, _ := json.Marshal(run)
	if _, err := a.cfg.Store.Create(r.Context(), core.Ref{Project: p.ID, Kind: core.KindJobRun, Name: run.Name}, b, a.cfg.Quotas.JobRuns); err != nil {
		return err
	}
	a.log.Info("job run submitted", "project", p.ID, "jobrun", run.Name, "indices", len(run.Indices))
	writeJSON(w, http.StatusAccepted, a.jobRunView(r, p, run))
	return nil
}

func randomSuffix() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 5)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func (a *API) getJobRun(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	_, run, err := loadRecord[core.JobRun](a, r, core.Ref{Project: p.ID, Kind: core.KindJobRun, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.jobRunView(r, p, run))
	return nil
}

func (a *API) listJobRuns(w http.ResponseWriter, r *http.Request) error {
	job := r.URL.Query().Get("job_name")
	return listRecords(a, w, r, core.KindJobRun, func(p core.Project, rec core.Record, l *api.JobRunList) (bool, error) {
		run, err := unmarshalRecord[core.JobRun](rec)
		if err != nil || (job != "" && run.JobName != job) {
			return false, err
		}
		l.JobRuns = append(l.JobRuns, a.jobRunView(r, p, run))
		return true, nil
	}, func(l *api.JobRunList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.JobRuns == nil {
			l.JobRuns = []api.JobRun{}
		}
	})
}

func (a *API) deleteJobRun(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindJobRun)
}

// jobRunLogs writes the logs of a run's indices (latest attempt of each) as
// plain text; ?index=N picks one, ?follow=true keeps streaming (see
// logOptions).
func (a *API) jobRunLogs(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	if a.cfg.Logs == nil {
		return fmt.Errorf("no engine is configured: %w", core.ErrUnavailable)
	}
	_, run, err := loadRecord[core.JobRun](a, r, core.Ref{Project: p.ID, Kind: core.KindJobRun, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	want := -1
	if s := r.URL.Query().Get("index"); s != "" {
		if want, err = strconv.Atoi(s); err != nil || run.Indices[want] == nil {
			return core.Invalid("index", "%q is not an index of this run", clipTag(s))
		}
	}
	opts, err := logOptions(r, want >= 0)
	if err != nil {
		return err
	}
	release, err := a.stream(w, r, opts.Follow)
	if err != nil {
		return err
	}
	defer release()
	indices, _ := core.ParseArraySpec(run.ScaleArraySpec)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := flushWriter{w}
	for _, i := range indices {
		s := run.Indices[i]
		if (want >= 0 && i != want) || s == nil || s.Status == core.IndexPending {
			continue
		}
		if want < 0 {
			fmt.Fprintf(fw, "==> index %d (attempt %d) <==\n", i, s.Retries)
		}
		err := a.cfg.Logs.Logs(r.Context(), p.ID, core.InstanceName(run.Name, i, s.Retries), fw, opts)
		if err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// flushWriter flushes after every write so that followed logs arrive live.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
