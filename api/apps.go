package api

import (
	"context"
	"io"
	"net/http"
)

// Resource types of apps.
const (
	ResourceTypeApp         = "app_v2"
	ResourceTypeAppRevision = "app_revision_v2"
	ResourceTypeAppInstance = "app_instance_v2"
)

// Probe is a liveness or readiness probe.
type Probe struct {
	Type             string `json:"type"`
	Path             string `json:"path,omitempty"`
	Port             int    `json:"port,omitempty"`
	Interval         int    `json:"interval,omitempty"`
	InitialDelay     int    `json:"initial_delay,omitempty"`
	Timeout          int    `json:"timeout,omitempty"`
	FailureThreshold int    `json:"failure_threshold,omitempty"`
}

// VolumeMount is an entry of run_volume_mounts.
type VolumeMount struct {
	Type      string `json:"type"`
	Reference string `json:"reference"`
	MountPath string `json:"mount_path"`
	SubPath   string `json:"sub_path,omitempty"`
	ReadOnly  *bool  `json:"read_only,omitempty"`
}

// AppSpec holds the image_*, probe_*, run_* and scale_* fields of an app.
// In a prototype or patch every field is optional.
type AppSpec struct {
	Build                          string        `json:"build,omitempty"`
	BuildRun                       string        `json:"build_run,omitempty"`
	ImageReference                 string        `json:"image_reference,omitempty"`
	ImageSecret                    string        `json:"image_secret,omitempty"`
	ImagePort                      *int          `json:"image_port,omitempty"`
	ImagePortName                  string        `json:"image_port_name,omitempty"` // coligo: http1 or h2c
	ManagedDomainMappings          string        `json:"managed_domain_mappings,omitempty"`
	HTTPOption                     string        `json:"http_option,omitempty"` // coligo: enabled or redirected (to HTTPS)
	ProbeLiveness                  *Probe        `json:"probe_liveness,omitempty"`
	ProbeReadiness                 *Probe        `json:"probe_readiness,omitempty"`
	RunArguments                   []string      `json:"run_arguments,omitempty"`
	RunCommands                    []string      `json:"run_commands,omitempty"`
	RunAsUser                      *int          `json:"run_as_user,omitempty"`
	RunComputeResourceTokenEnabled *bool         `json:"run_compute_resource_token_enabled,omitempty"`
	RunEnvVariables                []EnvVar      `json:"run_env_variables,omitempty"`
	RunServiceAccount              string        `json:"run_service_account,omitempty"`
	RunVolumeMounts                []VolumeMount `json:"run_volume_mounts,omitempty"`
	ScaleConcurrency               *int          `json:"scale_concurrency,omitempty"`
	ScaleConcurrencyTarget         *int          `json:"scale_concurrency_target,omitempty"`
	ScaleCPULimit                  string        `json:"scale_cpu_limit,omitempty"`
	ScaleMemoryLimit               string        `json:"scale_memory_limit,omitempty"`
	ScaleEphemeralStorageLimit     string        `json:"scale_ephemeral_storage_limit,omitempty"`
	ScaleDownDelay                 *int          `json:"scale_down_delay,omitempty"`
	ScaleInitialInstances          *int          `json:"scale_initial_instances,omitempty"`
	ScaleMaxInstances              *int          `json:"scale_max_instances,omitempty"`
	ScaleMinInstances              *int          `json:"scale_min_instances,omitempty"`
	ScaleRequestTimeout            *int          `json:"scale_request_timeout,omitempty"`
}

// AppPrototype is the body of POST /projects/{id}/apps.
type AppPrototype struct {
	Name string `json:"name"`
	AppSpec
}

// AppStatusDetails tells which revisions exist and serve.
type AppStatusDetails struct {
	LatestCreatedRevision string `json:"latest_created_revision,omitempty"`
	LatestReadyRevision   string `json:"latest_ready_revision,omitempty"`
	Reason                string `json:"reason"`
}

// App is an app.
type App struct {
	CreatedAt            string           `json:"created_at"`
	EntityTag            string           `json:"entity_tag"`
	Href                 string           `json:"href"`
	ID                   string           `json:"id"`
	Name                 string           `json:"name"`
	ProjectID            string           `json:"project_id"`
	Region               string           `json:"region"`
	ResourceType         string           `json:"resource_type"`
	ComputedEnvVariables []EnvVar         `json:"computed_env_variables"`
	Endpoint             string           `json:"endpoint,omitempty"`
	EndpointInternal     string           `json:"endpoint_internal"`
	Status               string           `json:"status"`
	StatusDetails        AppStatusDetails `json:"status_details"`
	AppSpec
}

// AppList is a page of apps.
type AppList struct {
	Limit int      `json:"limit"`
	First *PageRef `json:"first,omitempty"`
	Next  *PageRef `json:"next,omitempty"`
	Apps  []App    `json:"apps"`
}

// AppRevisionStatusDetails tells how far a revision is.
type AppRevisionStatusDetails struct {
	ActualInstances int    `json:"actual_instances"`
	Reason          string `json:"reason"`
	Message         string `json:"message,omitempty"` // coligo: the cause in words
}

// AppRevision is an immutable snapshot of an app.
type AppRevision struct {
	AppName              string                   `json:"app_name"`
	CreatedAt            string                   `json:"created_at"`
	Href                 string                   `json:"href"`
	ID                   string                   `json:"id"`
	Name                 string                   `json:"name"`
	ProjectID            string                   `json:"project_id"`
	Region               string                   `json:"region"`
	ResourceType         string                   `json:"resource_type"`
	ComputedEnvVariables []EnvVar                 `json:"computed_env_variables"`
	ImageDigest          string                   `json:"image_digest,omitempty"` // coligo: the pinned image
	Status               string                   `json:"status"`
	StatusDetails        AppRevisionStatusDetails `json:"status_details"`
	AppSpec
}

// AppRevisionList is a page of revisions.
type AppRevisionList struct {
	Limit     int           `json:"limit"`
	First     *PageRef      `json:"first,omitempty"`
	Next      *PageRef      `json:"next,omitempty"`
	Revisions []AppRevision `json:"revisions"`
}

// ContainerState is the state of an instance's container.
type ContainerState struct {
	ContainerStatus string `json:"container_status"`
	StartedAt       string `json:"started_at,omitempty"`
}

// ContainerStatus is the current and last observed state of a container.
type ContainerStatus struct {
	CurrentState ContainerState `json:"current_state"`
}

// AppInstanceStatusDetails are the details of an instance.
type AppInstanceStatusDetails struct {
	Restarts      int             `json:"restarts"`
	UserContainer ContainerStatus `json:"user_container"`
	Ready         bool            `json:"ready"` // coligo: receives requests
}

// AppInstance is a running instance of an app revision.
type AppInstance struct {
	AppName                    string                   `json:"app_name"`
	CreatedAt                  string                   `json:"created_at"`
	Href                       string                   `json:"href"`
	ID                         string                   `json:"id"`
	Name                       string                   `json:"name"`
	ProjectID                  string                   `json:"project_id"`
	Region                     string                   `json:"region"`
	ResourceType               string                   `json:"resource_type"`
	RevisionName               string                   `json:"revision_name"`
	ScaleCPULimit              string                   `json:"scale_cpu_limit"`
	ScaleMemoryLimit           string                   `json:"scale_memory_limit"`
	ScaleEphemeralStorageLimit string                   `json:"scale_ephemeral_storage_limit"`
	Status                     string                   `json:"status"`
	StatusDetails              AppInstanceStatusDetails `json:"status_details"`
}

// AppMetricsPoint is one sample of an app's load.
type AppMetricsPoint struct {
	Time              string  `json:"time"`
	Instances         int     `json:"instances"` // ready instances
	RequestsPerSecond float64 `json:"requests_per_second"`
}

// AppMetrics is an app's load over the last hour (coligo's addition, at
// …/apps/{app}/metrics), for charts: a point every IntervalSeconds.
type AppMetrics struct {
	IntervalSeconds float64           `json:"interval_seconds"`
	Points          []AppMetricsPoint `json:"points"`
}

// GetAppMetrics reads an app's load over the last hour.
func (c *Client) GetAppMetrics(ctx context.Context, project, name string) (*AppMetrics, error) {
	return call[AppMetrics](ctx, c, http.MethodGet, resourcePath(project, "apps", name, "metrics"), nil, nil)
}

// AppInstanceList is a page of instances.
type AppInstanceList struct {
	Limit     int           `json:"limit"`
	First     *PageRef      `json:"first,omitempty"`
	Next      *PageRef      `json:"next,omitempty"`
	Instances []AppInstance `json:"instances"`
}

// CreateApp creates an app.
func (c *Client) CreateApp(ctx context.Context, project string, a AppPrototype) (*App, error) {
	return call[App](ctx, c, http.MethodPost, resourcePath(project, "apps"), nil, a)
}

// GetApp reads an app.
func (c *Client) GetApp(ctx context.Context, project, name string) (*App, error) {
	return call[App](ctx, c, http.MethodGet, resourcePath(project, "apps", name), nil, nil)
}

// ListApps lists a page of apps.
func (c *Client) ListApps(ctx context.Context, project string, o ListOptions) (*AppList, error) {
	return call[AppList](ctx, c, http.MethodGet, resourcePath(project, "apps"), o.query(), nil)
}

// UpdateApp applies a merge patch (any JSON object) to an app.
func (c *Client) UpdateApp(ctx context.Context, project, name, ifMatch string, body any) (*App, error) {
	return patch[App](ctx, c, resourcePath(project, "apps", name), ifMatch, body)
}

// DeleteApp deletes an app with its revisions and instances.
func (c *Client) DeleteApp(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "apps", name), nil, nil, nil, nil)
	return err
}

// ListAppRevisions lists a page of an app's revisions.
func (c *Client) ListAppRevisions(ctx context.Context, project, app string, o ListOptions) (*AppRevisionList, error) {
	return call[AppRevisionList](ctx, c, http.MethodGet, resourcePath(project, "apps", app, "revisions"), o.query(), nil)
}

// GetAppRevision reads a revision.
func (c *Client) GetAppRevision(ctx context.Context, project, app, name string) (*AppRevision, error) {
	return call[AppRevision](ctx, c, http.MethodGet, resourcePath(project, "apps", app, "revisions", name), nil, nil)
}

// DeleteAppRevision deletes an inactive revision.
func (c *Client) DeleteAppRevision(ctx context.Context, project, app, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "apps", app, "revisions", name), nil, nil, nil, nil)
	return err
}

// ListAppInstances lists a page of an app's instances.
func (c *Client) ListAppInstances(ctx context.Context, project, app string, o ListOptions) (*AppInstanceList, error) {
	return call[AppInstanceList](ctx, c, http.MethodGet, resourcePath(project, "apps", app, "instances"), o.query(), nil)
}

// AppLogs writes the logs of an app's instance (all instances when
// instance is "") to w; opts.Follow (with an instance) keeps writing until
// the instance exits or ctx ends.
func (c *Client) AppLogs(ctx context.Context, project, app, instance string, opts LogOptions, w io.Writer) error {
	q := opts.query()
	if instance != "" {
		q.Set("instance", instance)
	}
	return c.stream(ctx, resourcePath(project, "apps", app, "logs"), q, w)
}

// AllApps lists every app of a project, following every page.
func (c *Client) AllApps(ctx context.Context, project string) ([]App, error) {
	return all(func(o ListOptions) ([]App, *PageRef, error) {
		page, err := c.ListApps(ctx, project, o)
		return page.Apps, page.Next, err
	})
}

// AllAppRevisions lists every revision of an app, following every page.
func (c *Client) AllAppRevisions(ctx context.Context, project, app string) ([]AppRevision, error) {
	return all(func(o ListOptions) ([]AppRevision, *PageRef, error) {
		page, err := c.ListAppRevisions(ctx, project, app, o)
		return page.Revisions, page.Next, err
	})
}

// AllAppInstances lists every instance of an app, following every page.
func (c *Client) AllAppInstances(ctx context.Context, project, app string) ([]AppInstance, error) {
	return all(func(o ListOptions) ([]AppInstance, *PageRef, error) {
		page, err := c.ListAppInstances(ctx, project, app, o)
		return page.Instances, page.Next, err
	})
}
