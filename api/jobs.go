package api

import (
	"context"
	"io"
	"net/http"
	"strconv"
)

// Resource types of jobs and job runs.
const (
	ResourceTypeJob    = "job_v2"
	ResourceTypeJobRun = "job_run_v2"
)

// EnvVar is an entry of run_env_variables.
type EnvVar struct {
	Type      string `json:"type,omitempty"`
	Name      string `json:"name,omitempty"`
	Value     string `json:"value,omitempty"`
	Reference string `json:"reference,omitempty"`
	Key       string `json:"key,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
}

// RunSpec holds the run_* and scale_* fields that jobs and job runs share.
// In a prototype or patch every field is optional.
type RunSpec struct {
	Build                          string        `json:"build,omitempty"`
	BuildRun                       string        `json:"build_run,omitempty"`
	ImageReference                 string        `json:"image_reference,omitempty"`
	ImageSecret                    string        `json:"image_secret,omitempty"`
	RunArguments                   []string      `json:"run_arguments,omitempty"`
	RunCommands                    []string      `json:"run_commands,omitempty"`
	RunAsUser                      *int          `json:"run_as_user,omitempty"`
	RunComputeResourceTokenEnabled *bool         `json:"run_compute_resource_token_enabled,omitempty"`
	RunEnvVariables                []EnvVar      `json:"run_env_variables,omitempty"`
	RunVolumeMounts                []VolumeMount `json:"run_volume_mounts,omitempty"`
	RunMode                        string        `json:"run_mode,omitempty"`
	RunServiceAccount              string        `json:"run_service_account,omitempty"`
	ScaleArraySpec                 string        `json:"scale_array_spec,omitempty"`
	ScaleCPULimit                  string        `json:"scale_cpu_limit,omitempty"`
	ScaleMemoryLimit               string        `json:"scale_memory_limit,omitempty"`
	ScaleEphemeralStorageLimit     string        `json:"scale_ephemeral_storage_limit,omitempty"`
	ScaleMaxExecutionTime          *int          `json:"scale_max_execution_time,omitempty"`
	ScaleRetryLimit                *int          `json:"scale_retry_limit,omitempty"`
}

// JobPrototype is the body of POST /projects/{id}/jobs.
type JobPrototype struct {
	Name string `json:"name"`
	RunSpec
}

// Job is a job template.
type Job struct {
	CreatedAt            string   `json:"created_at"`
	EntityTag            string   `json:"entity_tag"`
	Href                 string   `json:"href"`
	ID                   string   `json:"id"`
	Name                 string   `json:"name"`
	ProjectID            string   `json:"project_id"`
	Region               string   `json:"region"`
	ResourceType         string   `json:"resource_type"`
	ComputedEnvVariables []EnvVar `json:"computed_env_variables"`
	RunSpec
}

// JobList is a page of jobs.
type JobList struct {
	Limit int      `json:"limit"`
	First *PageRef `json:"first,omitempty"`
	Next  *PageRef `json:"next,omitempty"`
	Jobs  []Job    `json:"jobs"`
}

// JobRunPrototype is the body of POST /projects/{id}/job_runs.
type JobRunPrototype struct {
	Name                           string `json:"name,omitempty"`
	JobName                        string `json:"job_name,omitempty"`
	ScaleArraySizeVariableOverride *int   `json:"scale_array_size_variable_override,omitempty"`
	RunSpec
}

// IndexDetails is the state of one array index of a run.
type IndexDetails struct {
	Status            string `json:"status"`
	Retries           int    `json:"retries"`
	StartedAt         string `json:"started_at,omitempty"`
	FinishedAt        string `json:"finished_at,omitempty"`
	LastFailureReason string `json:"last_failure_reason,omitempty"`
}

// JobRunStatusDetails counts a run's indices by status.
type JobRunStatusDetails struct {
	Requested        int                     `json:"requested"`
	Pending          int                     `json:"pending"`
	Running          int                     `json:"running"`
	Succeeded        int                     `json:"succeeded"`
	Failed           int                     `json:"failed"`
	Unknown          int                     `json:"unknown"`
	PendingIndices   string                  `json:"pending_indices,omitempty"`
	RunningIndices   string                  `json:"running_indices,omitempty"`
	SucceededIndices string                  `json:"succeeded_indices,omitempty"`
	FailedIndices    string                  `json:"failed_indices,omitempty"`
	UnknownIndices   string                  `json:"unknown_indices,omitempty"`
	StartTime        string                  `json:"start_time,omitempty"`
	CompletionTime   string                  `json:"completion_time,omitempty"`
	Reason           string                  `json:"reason,omitempty"`
	IndicesDetails   map[string]IndexDetails `json:"indices_details,omitempty"`
}

// JobRun is one execution of a job.
type JobRun struct {
	CreatedAt                      string              `json:"created_at"`
	Href                           string              `json:"href"`
	ID                             string              `json:"id"`
	Name                           string              `json:"name"`
	JobName                        string              `json:"job_name,omitempty"`
	ProjectID                      string              `json:"project_id"`
	Region                         string              `json:"region"`
	ResourceType                   string              `json:"resource_type"`
	ComputedEnvVariables           []EnvVar            `json:"computed_env_variables"`
	ScaleArraySizeVariableOverride *int                `json:"scale_array_size_variable_override,omitempty"`
	Status                         string              `json:"status"`
	StatusDetails                  JobRunStatusDetails `json:"status_details"`
	RunSpec
}

// JobRunList is a page of job runs.
type JobRunList struct {
	Limit   int      `json:"limit"`
	First   *PageRef `json:"first,omitempty"`
	Next    *PageRef `json:"next,omitempty"`
	JobRuns []JobRun `json:"job_runs"`
}

// CreateJob creates a job.
func (c *Client) CreateJob(ctx context.Context, project string, j JobPrototype) (*Job, error) {
	return call[Job](ctx, c, http.MethodPost, "/projects/"+esc(project)+"/jobs", nil, j)
}

// GetJob returns a job.
func (c *Client) GetJob(ctx context.Context, project, name string) (*Job, error) {
	return call[Job](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/jobs/"+esc(name), nil, nil)
}

// ListJobs returns one page of jobs.
func (c *Client) ListJobs(ctx context.Context, project string, o ListOptions) (*JobList, error) {
	return call[JobList](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/jobs", o.query(), nil)
}

// UpdateJob applies a merge patch (a map or a struct) to a job if its entity
// tag still is ifMatch.
func (c *Client) UpdateJob(ctx context.Context, project, name, ifMatch string, body any) (*Job, error) {
	return patch[Job](ctx, c, resourcePath(project, "jobs", name), ifMatch, body)
}

// DeleteJob deletes a job and its runs.
func (c *Client) DeleteJob(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/projects/"+esc(project)+"/jobs/"+esc(name), nil, nil, nil, nil)
	return err
}

// CreateJobRun submits a job run.
func (c *Client) CreateJobRun(ctx context.Context, project string, r JobRunPrototype) (*JobRun, error) {
	return call[JobRun](ctx, c, http.MethodPost, "/projects/"+esc(project)+"/job_runs", nil, r)
}

// GetJobRun returns a job run.
func (c *Client) GetJobRun(ctx context.Context, project, name string) (*JobRun, error) {
	return call[JobRun](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/job_runs/"+esc(name), nil, nil)
}

// ListJobRuns returns one page of job runs, optionally of one job.
func (c *Client) ListJobRuns(ctx context.Context, project string, o ListOptions, job string) (*JobRunList, error) {
	q := o.query()
	if job != "" {
		q.Set("job_name", job)
	}
	return call[JobRunList](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/job_runs", q, nil)
}

// DeleteJobRun deletes a job run and stops its instances.
func (c *Client) DeleteJobRun(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/projects/"+esc(project)+"/job_runs/"+esc(name), nil, nil, nil, nil)
	return err
}

// JobRunLogs streams the logs of a run's index (the latest attempt) to w;
// index < 0 means every index. A coligo addition to the API.
func (c *Client) JobRunLogs(ctx context.Context, project, name string, index int, opts LogOptions, w io.Writer) error {
	q := opts.query()
	if index >= 0 {
		q.Set("index", strconv.Itoa(index))
	}
	return c.stream(ctx, "/projects/"+esc(project)+"/job_runs/"+esc(name)+"/logs", q, w)
}

// AllJobs lists every job of a project, following every page.
func (c *Client) AllJobs(ctx context.Context, project string) ([]Job, error) {
	return all(func(o ListOptions) ([]Job, *PageRef, error) {
		page, err := c.ListJobs(ctx, project, o)
		return page.Jobs, page.Next, err
	})
}

// AllJobRuns lists every job run of a project (of job, if not ""),
// following every page.
func (c *Client) AllJobRuns(ctx context.Context, project, job string) ([]JobRun, error) {
	return all(func(o ListOptions) ([]JobRun, *PageRef, error) {
		page, err := c.ListJobRuns(ctx, project, o, job)
		return page.JobRuns, page.Next, err
	})
}
