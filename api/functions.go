package api

import (
	"context"
	"io"
	"net/http"
)

// ResourceTypeFunction is a function's resource_type.
const ResourceTypeFunction = "function_v2"

// FunctionSpec holds a function's code_*, run_* and scale_* fields. In a
// prototype or patch every field is optional.
type FunctionSpec struct {
	Runtime                        string   `json:"runtime,omitempty"`
	CodeReference                  string   `json:"code_reference,omitempty"`
	CodeBinary                     *bool    `json:"code_binary,omitempty"`
	CodeMain                       string   `json:"code_main,omitempty"`
	CodeSecret                     string   `json:"code_secret,omitempty"`
	ManagedDomainMappings          string   `json:"managed_domain_mappings,omitempty"`
	RunEnvVariables                []EnvVar `json:"run_env_variables,omitempty"`
	RunComputeResourceTokenEnabled *bool    `json:"run_compute_resource_token_enabled,omitempty"`
	ScaleConcurrency               *int     `json:"scale_concurrency,omitempty"`
	ScaleCPULimit                  string   `json:"scale_cpu_limit,omitempty"`
	ScaleMemoryLimit               string   `json:"scale_memory_limit,omitempty"`
	ScaleDownDelay                 *int     `json:"scale_down_delay,omitempty"`
	ScaleMaxExecutionTime          *int     `json:"scale_max_execution_time,omitempty"`
}

// FunctionPrototype creates a function.
type FunctionPrototype struct {
	Name string `json:"name"`
	FunctionSpec
}

// FunctionStatusDetails says why a function has its status.
type FunctionStatusDetails struct {
	Reason string `json:"reason"`
}

// Function is a function.
type Function struct {
	CreatedAt            string                `json:"created_at"`
	Endpoint             string                `json:"endpoint,omitempty"`
	EndpointInternal     string                `json:"endpoint_internal"`
	EntityTag            string                `json:"entity_tag"`
	Href                 string                `json:"href"`
	ID                   string                `json:"id"`
	Name                 string                `json:"name"`
	ProjectID            string                `json:"project_id"`
	Region               string                `json:"region"`
	ResourceType         string                `json:"resource_type"`
	ComputedEnvVariables []EnvVar              `json:"computed_env_variables"`
	Status               string                `json:"status"`
	StatusDetails        FunctionStatusDetails `json:"status_details"`
	FunctionSpec
}

// FunctionList is a page of functions.
type FunctionList struct {
	Limit     int        `json:"limit"`
	First     *PageRef   `json:"first,omitempty"`
	Next      *PageRef   `json:"next,omitempty"`
	Functions []Function `json:"functions"`
}

// FunctionInvocationPrototype is what to send a function (coligo's
// addition, POST …/functions/{name}/invoke): a body and its media type.
type FunctionInvocationPrototype struct {
	Body        string `json:"body,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// FunctionInvocation is a function's answer to an invocation: its status,
// media type and body (at most 1 MiB; body_binary when it was not UTF-8
// text and is shown with replacement characters).
type FunctionInvocation struct {
	StatusCode           int    `json:"status_code"`
	ContentType          string `json:"content_type,omitempty"`
	Body                 string `json:"body"`
	BodyTruncated        bool   `json:"body_truncated,omitempty"`
	BodyBinary           bool   `json:"body_binary,omitempty"`
	DurationMilliseconds int64  `json:"duration_ms"`
}

// InvokeFunction calls a function with a body through the API (coligo's
// addition) and returns its answer.
func (c *Client) InvokeFunction(ctx context.Context, project, name string, in FunctionInvocationPrototype) (*FunctionInvocation, error) {
	return call[FunctionInvocation](ctx, c, http.MethodPost, resourcePath(project, "functions", name, "invoke"), nil, in)
}

// FunctionRuntime is a runtime functions may use.
type FunctionRuntime struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Family     string `json:"family"`
	Default    bool   `json:"default"`
	Deprecated bool   `json:"deprecated"`
	Optimized  bool   `json:"optimized"`
}

// FunctionRuntimeList lists the runtimes.
type FunctionRuntimeList struct {
	FunctionRuntimes []FunctionRuntime `json:"function_runtimes"`
}

// ListFunctionRuntimes lists the runtimes of the server.
func (c *Client) ListFunctionRuntimes(ctx context.Context) (*FunctionRuntimeList, error) {
	return call[FunctionRuntimeList](ctx, c, http.MethodGet, "/function_runtimes", nil, nil)
}

// CreateFunction creates a function.
func (c *Client) CreateFunction(ctx context.Context, project string, f FunctionPrototype) (*Function, error) {
	return call[Function](ctx, c, http.MethodPost, resourcePath(project, "functions"), nil, f)
}

// GetFunction reads a function.
func (c *Client) GetFunction(ctx context.Context, project, name string) (*Function, error) {
	return call[Function](ctx, c, http.MethodGet, resourcePath(project, "functions", name), nil, nil)
}

// ListFunctions lists a page of functions.
func (c *Client) ListFunctions(ctx context.Context, project string, o ListOptions) (*FunctionList, error) {
	return call[FunctionList](ctx, c, http.MethodGet, resourcePath(project, "functions"), o.query(), nil)
}

// UpdateFunction applies a merge patch (any JSON object) to a function.
func (c *Client) UpdateFunction(ctx context.Context, project, name, ifMatch string, body any) (*Function, error) {
	return patch[Function](ctx, c, resourcePath(project, "functions", name), ifMatch, body)
}

// DeleteFunction deletes a function and its instances.
func (c *Client) DeleteFunction(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "functions", name), nil, nil, nil, nil)
	return err
}

// FunctionLogs writes the last lines of a function's ended instances and
// the logs of its running ones (one running instance's when instance is
// not "") to w; opts.Follow (with an instance) keeps writing until the
// instance exits or ctx ends.
func (c *Client) FunctionLogs(ctx context.Context, project, name, instance string, opts LogOptions, w io.Writer) error {
	q := opts.query()
	if instance != "" {
		q.Set("instance", instance)
	}
	return c.stream(ctx, resourcePath(project, "functions", name, "logs"), q, w)
}

// AllFunctions lists every function of a project, following every page.
func (c *Client) AllFunctions(ctx context.Context, project string) ([]Function, error) {
	return all(func(o ListOptions) ([]Function, *PageRef, error) {
		page, err := c.ListFunctions(ctx, project, o)
		return page.Functions, page.Next, err
	})
}
