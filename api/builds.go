package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// ResourceTypeBuild is a build's resource_type.
const ResourceTypeBuild = "build_v2"

// BuildParam is one of run_build_params: a Dockerfile ARG, literal or from
// a key of a secret or config map.
type BuildParam struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	Reference string `json:"reference,omitempty"`
	Key       string `json:"key,omitempty"`
}

// BuildSpec holds a build's output_*, source_*, strategy_*, timeout and
// run_build_params fields. In a prototype or patch every field is
// optional.
type BuildSpec struct {
	OutputImage      string       `json:"output_image,omitempty"`
	OutputSecret     string       `json:"output_secret,omitempty"`
	StrategyType     string       `json:"strategy_type,omitempty"`
	StrategySize     string       `json:"strategy_size,omitempty"`
	StrategySpecFile string       `json:"strategy_spec_file,omitempty"`
	SourceType       string       `json:"source_type,omitempty"`
	SourceURL        string       `json:"source_url,omitempty"`
	SourceRevision   string       `json:"source_revision,omitempty"`
	SourceSecret     string       `json:"source_secret,omitempty"`
	SourceContextDir string       `json:"source_context_dir,omitempty"`
	Timeout          *int         `json:"timeout,omitempty"`
	RunBuildParams   []BuildParam `json:"run_build_params,omitempty"`
}

// BuildPrototype creates a build.
type BuildPrototype struct {
	Name string `json:"name"`
	BuildSpec
}

// BuildStatusDetails says why a build has its status.
type BuildStatusDetails struct {
	Reason string `json:"reason"`
}

// Build is a build configuration.
type Build struct {
	CreatedAt     string             `json:"created_at"`
	EntityTag     string             `json:"entity_tag"`
	Href          string             `json:"href"`
	ID            string             `json:"id"`
	Name          string             `json:"name"`
	ProjectID     string             `json:"project_id"`
	Region        string             `json:"region"`
	ResourceType  string             `json:"resource_type"`
	Status        string             `json:"status"`
	StatusDetails BuildStatusDetails `json:"status_details"`
	BuildSpec
}

// BuildList is a page of builds.
type BuildList struct {
	Limit  int      `json:"limit"`
	First  *PageRef `json:"first,omitempty"`
	Next   *PageRef `json:"next,omitempty"`
	Builds []Build  `json:"builds"`
}

// CreateBuild creates a build.
func (c *Client) CreateBuild(ctx context.Context, project string, b BuildPrototype) (*Build, error) {
	return call[Build](ctx, c, http.MethodPost, resourcePath(project, "builds"), nil, b)
}

// GetBuild reads a build.
func (c *Client) GetBuild(ctx context.Context, project, name string) (*Build, error) {
	return call[Build](ctx, c, http.MethodGet, resourcePath(project, "builds", name), nil, nil)
}

// ListBuilds lists a page of builds.
func (c *Client) ListBuilds(ctx context.Context, project string, o ListOptions) (*BuildList, error) {
	return call[BuildList](ctx, c, http.MethodGet, resourcePath(project, "builds"), o.query(), nil)
}

// UpdateBuild applies a merge patch (any JSON object) to a build.
func (c *Client) UpdateBuild(ctx context.Context, project, name, ifMatch string, body any) (*Build, error) {
	return patch[Build](ctx, c, resourcePath(project, "builds", name), ifMatch, body)
}

// DeleteBuild deletes a build.
func (c *Client) DeleteBuild(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "builds", name), nil, nil, nil, nil)
	return err
}

// ResourceTypeBuildRun is a build run's resource_type.
const ResourceTypeBuildRun = "build_run_v2"

// BuildRunPrototype submits a build run: of a build (build_name, whose
// fields the run's own override), or stand-alone.
type BuildRunPrototype struct {
	BuildName      string `json:"build_name,omitempty"`
	Name           string `json:"name,omitempty"`
	ServiceAccount string `json:"service_account,omitempty"`
	// SourceImage is a local source's files as an image in the registry of
	// the output (coligo's; coligo buildrun submit --source DIR pushes it).
	SourceImage string `json:"source_image,omitempty"`
	BuildSpec
}

// BuildRunStatusDetails tells what a build run did.
type BuildRunStatusDetails struct {
	Reason          string `json:"reason"`
	Message         string `json:"message,omitempty"`
	StartTime       string `json:"start_time,omitempty"`
	CompletionTime  string `json:"completion_time,omitempty"`
	OutputDigest    string `json:"output_digest,omitempty"`
	GitCommitSHA    string `json:"git_commit_sha,omitempty"`
	GitCommitAuthor string `json:"git_commit_author,omitempty"`
	GitBranchName   string `json:"git_branch_name,omitempty"`
	SourceTimestamp string `json:"source_timestamp,omitempty"`
}

// BuildRun is a build run.
type BuildRun struct {
	BuildName      string                `json:"build_name"`
	CreatedAt      string                `json:"created_at"`
	Href           string                `json:"href"`
	ID             string                `json:"id"`
	Name           string                `json:"name"`
	ProjectID      string                `json:"project_id"`
	Region         string                `json:"region"`
	ResourceType   string                `json:"resource_type"`
	ServiceAccount string                `json:"service_account"`
	SourceImage    string                `json:"source_image,omitempty"`
	Status         string                `json:"status"`
	StatusDetails  BuildRunStatusDetails `json:"status_details"`
	BuildSpec
}

// BuildRunList is a page of build runs.
type BuildRunList struct {
	Limit     int        `json:"limit"`
	First     *PageRef   `json:"first,omitempty"`
	Next      *PageRef   `json:"next,omitempty"`
	BuildRuns []BuildRun `json:"build_runs"`
}

// CreateBuildRun submits a build run.
func (c *Client) CreateBuildRun(ctx context.Context, project string, b BuildRunPrototype) (*BuildRun, error) {
	return call[BuildRun](ctx, c, http.MethodPost, resourcePath(project, "build_runs"), nil, b)
}

// GetBuildRun reads a build run.
func (c *Client) GetBuildRun(ctx context.Context, project, name string) (*BuildRun, error) {
	return call[BuildRun](ctx, c, http.MethodGet, resourcePath(project, "build_runs", name), nil, nil)
}

// ListBuildRuns lists a page of build runs, of one build when build is
// not "".
func (c *Client) ListBuildRuns(ctx context.Context, project, build string, o ListOptions) (*BuildRunList, error) {
	var out BuildRunList
	q := o.query()
	if build != "" {
		q.Set("build_name", build)
	}
	_, err := c.Do(ctx, http.MethodGet, resourcePath(project, "build_runs"), q, nil, nil, &out)
	return &out, err
}

// CancelBuildRun ends a pending or running build run (coligo's: Code
// Engine's API has no cancel); it fails with reason canceled.
func (c *Client) CancelBuildRun(ctx context.Context, project, name string) (*BuildRun, error) {
	return call[BuildRun](ctx, c, http.MethodPost, resourcePath(project, "build_runs", name, "cancel"), nil, nil)
}

// DeleteBuildRun deletes a build run.
func (c *Client) DeleteBuildRun(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "build_runs", name), nil, nil, nil, nil)
	return err
}

// BuildRunLogs writes a build run's steps and their output to w; follow
// keeps writing until the run ends or ctx ends.
func (c *Client) BuildRunLogs(ctx context.Context, project, name string, follow bool, w io.Writer) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	return c.stream(ctx, resourcePath(project, "build_runs", name, "logs"), q, w)
}

// AllBuilds lists every build of a project, following every page.
func (c *Client) AllBuilds(ctx context.Context, project string) ([]Build, error) {
	return all(func(o ListOptions) ([]Build, *PageRef, error) {
		page, err := c.ListBuilds(ctx, project, o)
		return page.Builds, page.Next, err
	})
}

// AllBuildRuns lists every build run of a project (of one build when
// build is not ""), following every page.
func (c *Client) AllBuildRuns(ctx context.Context, project, build string) ([]BuildRun, error) {
	return all(func(o ListOptions) ([]BuildRun, *PageRef, error) {
		page, err := c.ListBuildRuns(ctx, project, build, o)
		return page.BuildRuns, page.Next, err
	})
}
