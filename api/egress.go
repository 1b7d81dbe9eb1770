package api

import (
	"context"
	"net/http"
)

// AllowedOutboundDestination is a CIDR block a project's instances may
// reach; every project starts with "allow-all" (0.0.0.0/0), and with none
// left, instances reach nothing outside the project.
type AllowedOutboundDestination struct {
	Name          string              `json:"name"`
	Type          string              `json:"type"`
	CIDRBlock     string              `json:"cidr_block,omitempty"`
	EntityTag     string              `json:"entity_tag"`
	ProjectID     string              `json:"project_id"`
	Status        string              `json:"status"`
	StatusDetails *EgressStatusDetail `json:"status_details,omitempty"`
}

// EgressStatusDetail is why a destination has its status.
type EgressStatusDetail struct {
	Reason string `json:"reason"`
}

// AllowedOutboundDestinationPrototype creates a destination.
type AllowedOutboundDestinationPrototype struct {
	Name                         string `json:"name"`
	Type                         string `json:"type"`
	CIDRBlock                    string `json:"cidr_block,omitempty"`
	PrivatePathServiceGatewayCRN string `json:"private_path_service_gateway_crn,omitempty"`
	IsolationPolicy              string `json:"isolation_policy,omitempty"`
}

// AllowedOutboundDestinationPatch changes a destination's CIDR block.
type AllowedOutboundDestinationPatch struct {
	CIDRBlock       string `json:"cidr_block,omitempty"`
	IsolationPolicy string `json:"isolation_policy,omitempty"`
}

// AllowedOutboundDestinationList is a page of destinations.
type AllowedOutboundDestinationList struct {
	Limit                       int                          `json:"limit"`
	First                       *PageRef                     `json:"first,omitempty"`
	Next                        *PageRef                     `json:"next,omitempty"`
	AllowedOutboundDestinations []AllowedOutboundDestination `json:"allowed_outbound_destinations"`
}

// EgressIPs are the source addresses of a project's outbound traffic.
type EgressIPs struct {
	Private []string `json:"private,omitempty"`
	Public  []string `json:"public,omitempty"`
}

func egressPath(project string) string {
	return "/projects/" + esc(project) + "/allowed_outbound_destinations"
}

// CreateAllowedOutboundDestination creates a destination.
func (c *Client) CreateAllowedOutboundDestination(ctx context.Context, project string, in AllowedOutboundDestinationPrototype) (*AllowedOutboundDestination, error) {
	return call[AllowedOutboundDestination](ctx, c, http.MethodPost, egressPath(project), nil, in)
}

// ListAllowedOutboundDestinations returns one page of destinations.
func (c *Client) ListAllowedOutboundDestinations(ctx context.Context, project string, o ListOptions) (*AllowedOutboundDestinationList, error) {
	return call[AllowedOutboundDestinationList](ctx, c, http.MethodGet, egressPath(project), o.query(), nil)
}

// GetAllowedOutboundDestination returns a destination.
func (c *Client) GetAllowedOutboundDestination(ctx context.Context, project, name string) (*AllowedOutboundDestination, error) {
	return call[AllowedOutboundDestination](ctx, c, http.MethodGet, egressPath(project)+"/"+esc(name), nil, nil)
}

// UpdateAllowedOutboundDestination applies a merge patch (If-Match).
func (c *Client) UpdateAllowedOutboundDestination(ctx context.Context, project, name, ifMatch string, body AllowedOutboundDestinationPatch) (*AllowedOutboundDestination, error) {
	return patch[AllowedOutboundDestination](ctx, c, egressPath(project)+"/"+esc(name), ifMatch, body)
}

// DeleteAllowedOutboundDestination deletes a destination.
func (c *Client) DeleteAllowedOutboundDestination(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, egressPath(project)+"/"+esc(name), nil, nil, nil, nil)
	return err
}

// GetEgressIPs returns the project's outbound source addresses.
func (c *Client) GetEgressIPs(ctx context.Context, project string) (*EgressIPs, error) {
	return call[EgressIPs](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/egress_ips", nil, nil)
}

// AllAllowedOutboundDestinations lists every allowed outbound destination
// of a project, following every page.
func (c *Client) AllAllowedOutboundDestinations(ctx context.Context, project string) ([]AllowedOutboundDestination, error) {
	return all(func(o ListOptions) ([]AllowedOutboundDestination, *PageRef, error) {
		page, err := c.ListAllowedOutboundDestinations(ctx, project, o)
		return page.AllowedOutboundDestinations, page.Next, err
	})
}
