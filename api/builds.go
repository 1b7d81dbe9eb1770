package api

import (
	"context"
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

func buildPath(project string, parts ...string) string {
	p := "/projects/" + url.PathEscape(project) + "/builds"
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// CreateBuild creates a build.
func (c *Client) CreateBuild(ctx context.Context, project string, b BuildPrototype) (*Build, error) {
	var out Build
	_, err := c.Do(ctx, http.MethodPost, buildPath(project), nil, nil, b, &out)
	return &out, err
}

// GetBuild reads a build.
func (c *Client) GetBuild(ctx context.Context, project, name string) (*Build, error) {
	var out Build
	_, err := c.Do(ctx, http.MethodGet, buildPath(project, name), nil, nil, nil, &out)
	return &out, err
}

// ListBuilds lists a page of builds.
func (c *Client) ListBuilds(ctx context.Context, project string, o ListOptions) (*BuildList, error) {
	var out BuildList
	_, err := c.Do(ctx, http.MethodGet, buildPath(project), o.query(), nil, nil, &out)
	return &out, err
}

// UpdateBuild applies a merge patch (any JSON object) to a build.
func (c *Client) UpdateBuild(ctx context.Context, project, name, ifMatch string, patch any) (*Build, error) {
	var out Build
	_, err := c.Do(ctx, http.MethodPatch, buildPath(project, name), nil,
		map[string]string{"If-Match": ifMatch, "Content-Type": "application/merge-patch+json"}, patch, &out)
	return &out, err
}

// DeleteBuild deletes a build.
func (c *Client) DeleteBuild(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, buildPath(project, name), nil, nil, nil, nil)
	return err
}
