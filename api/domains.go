package api

import (
	"context"
	"net/http"
)

// ResourceTypeDomainMapping is a domain mapping's resource_type.
const ResourceTypeDomainMapping = "domain_mapping_v2"

// DomainMappingComponent is what a domain mapping serves: an app (app_v2)
// or a function (function_v2).
type DomainMappingComponent struct {
	Name         string `json:"name"`
	ResourceType string `json:"resource_type"`
}

// DomainMappingPrototype maps a name to a component, served with the
// certificate of a tls secret.
type DomainMappingPrototype struct {
	Name      string                 `json:"name"`
	Component DomainMappingComponent `json:"component"`
	TLSSecret string                 `json:"tls_secret"`
}

// DomainMappingPatch changes what a name serves or its certificate.
type DomainMappingPatch struct {
	Component *DomainMappingComponent `json:"component,omitempty"`
	TLSSecret string                  `json:"tls_secret,omitempty"`
}

// DomainMappingStatusDetails says why a domain mapping has its status;
// message (coligo's) says what is wrong with a failed one.
type DomainMappingStatusDetails struct {
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// DomainMapping is a custom domain mapping.
type DomainMapping struct {
	CnameTarget   string                     `json:"cname_target"`
	Component     DomainMappingComponent     `json:"component"`
	CreatedAt     string                     `json:"created_at"`
	EntityTag     string                     `json:"entity_tag"`
	Href          string                     `json:"href"`
	ID            string                     `json:"id"`
	Name          string                     `json:"name"`
	ProjectID     string                     `json:"project_id"`
	Region        string                     `json:"region"`
	ResourceType  string                     `json:"resource_type"`
	Status        string                     `json:"status"`
	StatusDetails DomainMappingStatusDetails `json:"status_details"`
	TLSSecret     string                     `json:"tls_secret"`
	UserManaged   bool                       `json:"user_managed"`
	Visibility    string                     `json:"visibility"`
}

// DomainMappingList is a page of domain mappings.
type DomainMappingList struct {
	Limit          int             `json:"limit"`
	First          *PageRef        `json:"first,omitempty"`
	Next           *PageRef        `json:"next,omitempty"`
	DomainMappings []DomainMapping `json:"domain_mappings"`
}

// CreateDomainMapping maps a name to a component.
func (c *Client) CreateDomainMapping(ctx context.Context, project string, in DomainMappingPrototype) (*DomainMapping, error) {
	return call[DomainMapping](ctx, c, http.MethodPost, resourcePath(project, "domain_mappings"), nil, in)
}

// GetDomainMapping reads a domain mapping by its name.
func (c *Client) GetDomainMapping(ctx context.Context, project, name string) (*DomainMapping, error) {
	return call[DomainMapping](ctx, c, http.MethodGet, resourcePath(project, "domain_mappings", name), nil, nil)
}

// ListDomainMappings lists a page of a project's domain mappings.
func (c *Client) ListDomainMappings(ctx context.Context, project string, o ListOptions) (*DomainMappingList, error) {
	return call[DomainMappingList](ctx, c, http.MethodGet, resourcePath(project, "domain_mappings"), o.query(), nil)
}

// AllDomainMappings lists every domain mapping of a project.
func (c *Client) AllDomainMappings(ctx context.Context, project string) ([]DomainMapping, error) {
	return all(func(o ListOptions) ([]DomainMapping, *PageRef, error) {
		l, err := c.ListDomainMappings(ctx, project, o)
		if err != nil {
			return nil, nil, err
		}
		return l.DomainMappings, l.Next, nil
	})
}

// UpdateDomainMapping applies a merge patch to a domain mapping.
func (c *Client) UpdateDomainMapping(ctx context.Context, project, name, ifMatch string, body DomainMappingPatch) (*DomainMapping, error) {
	return patch[DomainMapping](ctx, c, resourcePath(project, "domain_mappings", name), ifMatch, body)
}

// DeleteDomainMapping deletes a domain mapping; the component and the
// secret stay.
func (c *Client) DeleteDomainMapping(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, resourcePath(project, "domain_mappings", name), nil, nil, nil, nil)
	return err
}
