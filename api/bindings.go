package api

import (
	"context"
	"net/http"
)

// ResourceTypeBinding is a binding's resource_type.
const ResourceTypeBinding = "binding_v2"

// BindingComponent names what a binding binds: an app (app_v2) or a job
// (job_v2).
type BindingComponent struct {
	Name         string `json:"name"`
	ResourceType string `json:"resource_type"`
}

// BindingPrototype binds a secret to a component; an empty prefix asks
// for the secret's name in upper snake case.
type BindingPrototype struct {
	Component  BindingComponent `json:"component"`
	SecretName string           `json:"secret_name"`
	Prefix     string           `json:"prefix,omitempty"`
}

// Binding is a secret bound to a component: its keys are PREFIX_KEY
// variables of the component's instances.
type Binding struct {
	Component    BindingComponent `json:"component"`
	Href         string           `json:"href"`
	ID           string           `json:"id"`
	Prefix       string           `json:"prefix"`
	ProjectID    string           `json:"project_id"`
	ResourceType string           `json:"resource_type"`
	SecretName   string           `json:"secret_name"`
	Status       string           `json:"status"`
}

// BindingList is a page of bindings.
type BindingList struct {
	Limit    int       `json:"limit"`
	First    *PageRef  `json:"first,omitempty"`
	Next     *PageRef  `json:"next,omitempty"`
	Bindings []Binding `json:"bindings"`
}

// CreateBinding binds a secret to a component.
func (c *Client) CreateBinding(ctx context.Context, project string, b BindingPrototype) (*Binding, error) {
	return call[Binding](ctx, c, http.MethodPost, resourcePath(project, "bindings"), nil, b)
}

// GetBinding reads a binding by its id.
func (c *Client) GetBinding(ctx context.Context, project, id string) (*Binding, error) {
	return call[Binding](ctx, c, http.MethodGet, resourcePath(project, "bindings", id), nil, nil)
}

// ListBindings lists a page of a project's bindings.
func (c *Client) ListBindings(ctx context.Context, project string, o ListOptions) (*BindingList, error) {
	return call[BindingList](ctx, c, http.MethodGet, resourcePath(project, "bindings"), o.query(), nil)
}

// DeleteBinding unbinds.
func (c *Client) DeleteBinding(ctx context.Context, project, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "bindings", id), nil, nil, nil, nil)
	return err
}
