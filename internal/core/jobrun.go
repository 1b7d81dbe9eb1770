package core

import (
	"fmt"
	"slices"
	"time"
)

// JobRun statuses. A run goes
//
//	pending ──► running ──► completed   (every index succeeded)
//	   │           │
//	   └───────────┴──────► failed      (every index finished, one or more failed,
//	                                      or scale_max_execution_time passed)
//
// A daemon run stays running until it is deleted.
const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
)

// RunStatus is a job run's status.
type RunStatus string

// Index statuses.
const (
	IndexPending   IndexStatus = "pending"
	IndexRunning   IndexStatus = "running"
	IndexSucceeded IndexStatus = "succeeded"
	IndexFailed    IndexStatus = "failed"
)

// IndexStatus is the status of one array index of a run.
type IndexStatus string

// Failure reasons of an index.
const (
	ReasonMaxExecutionTime = "MaxExecutionTimeExceeded"
	ReasonOOMKilled        = "OOMKilled"
	ReasonEphemeralStorage = "EphemeralStorageExceeded"
)

// ReasonExitCode is the reason of an index whose container exited with code.
func ReasonExitCode(code int) string { return fmt.Sprintf("ContainerExitedCode%d", code) }

// IndexState is what is known of one array index of a run.
type IndexState struct {
	Status            IndexStatus `json:"status"`
	Retries           int         `json:"retries"` // the attempt now running or last run, from 0
	StartedAt         time.Time   `json:"started_at,omitzero"`
	FinishedAt        time.Time   `json:"finished_at,omitzero"`
	LastFailureReason string      `json:"last_failure_reason,omitempty"`
}

// JobRun is one execution of a job (or a stand-alone run).
type JobRun struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	JobName   string    `json:"job_name,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	RunSpec
	ArraySizeVariableOverride int `json:"scale_array_size_variable_override,omitempty"`

	Status         RunStatus           `json:"status"`
	Reason         string              `json:"reason,omitempty"` // why a run waits or failed as a whole
	StartTime      time.Time           `json:"start_time,omitzero"`
	CompletionTime time.Time           `json:"completion_time,omitzero"`
	Indices        map[int]*IndexState `json:"indices"`
	// Subscription is the cron subscription whose event started the run;
	// such runs are deleted 10 minutes after they end, as in Code Engine.
	Subscription string `json:"subscription,omitempty"`
}

// SetIndices gives the run a pending state for each index of its array
// spec.
func (r *JobRun) SetIndices() {
	indices, _ := ParseArraySpec(r.ScaleArraySpec)
	r.Indices = make(map[int]*IndexState, len(indices))
	for _, i := range indices {
		r.Indices[i] = &IndexState{Status: IndexPending}
	}
}

// InstanceName names the instance of one attempt of an index.
func InstanceName(run string, index, retry int) string {
	return fmt.Sprintf("%s-%d-%d", run, index, retry)
}

// Finished reports whether the run is completed or failed.
func (r *JobRun) Finished() bool { return r.Status == RunCompleted || r.Status == RunFailed }

// Summarize recomputes the run's status from its indices.
func (r *JobRun) Summarize(now time.Time) {
	if r.Finished() {
		return
	}
	var running, done, failed int
	for _, s := range r.Indices {
		switch s.Status {
		case IndexRunning:
			running++
		case IndexSucceeded:
			done++
		case IndexFailed:
			done++
			failed++
		}
	}
	switch {
	case len(r.Indices) > 0 && done == len(r.Indices):
		r.Status, r.CompletionTime = RunCompleted, now
		if failed > 0 {
			r.Status = RunFailed
		}
	case running > 0 || done > 0:
		r.Status = RunRunning
	default:
		r.Status = RunPending
	}
}

// Counts returns the indices in each status, sorted.
func (r *JobRun) Counts() map[IndexStatus][]int {
	out := map[IndexStatus][]int{}
	for i, s := range r.Indices {
		out[s.Status] = append(out[s.Status], i)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}
