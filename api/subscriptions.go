package api

import (
	"context"
	"net/http"
)

// ResourceTypeCronSubscription is a cron subscription's resource_type.
const ResourceTypeCronSubscription = "subscription_cron_v2"

// CronSubscriptionPrototype creates a cron subscription; in a patch every
// field but name may change.
type CronSubscriptionPrototype struct {
	Name            string            `json:"name,omitempty"`
	DestinationType string            `json:"destination_type,omitempty"`
	Destination     string            `json:"destination,omitempty"`
	Schedule        string            `json:"schedule,omitempty"`
	TimeZone        string            `json:"time_zone,omitempty"`
	Data            string            `json:"data,omitempty"`
	ContentType     string            `json:"content_type,omitempty"`
	Extensions      map[string]string `json:"extensions,omitempty"`
	Path            string            `json:"path,omitempty"`
}

// CronDelivery is the outcome of one tick.
type CronDelivery struct {
	Tick       string `json:"tick"`
	ID         string `json:"id,omitempty"`
	Outcome    string `json:"outcome"`
	Attempts   int    `json:"attempts,omitempty"`
	StatusCode int    `json:"status_code,omitempty"`
	JobRun     string `json:"job_run,omitempty"`
	Message    string `json:"message,omitempty"`
	Missed     int    `json:"missed,omitempty"`
	At         string `json:"at,omitempty"`
}

// CronSubscriptionStatusDetails says whether a subscription delivers, when
// next, and how its last deliveries went (newest first).
type CronSubscriptionStatusDetails struct {
	Reason     string         `json:"reason"`
	Message    string         `json:"message,omitempty"`
	NextTick   string         `json:"next_tick,omitempty"`
	LastTick   string         `json:"last_tick,omitempty"`
	Deliveries []CronDelivery `json:"deliveries"`
}

// CronSubscription is a cron subscription.
type CronSubscription struct {
	CronSubscriptionPrototype
	CreatedAt     string                        `json:"created_at"`
	EntityTag     string                        `json:"entity_tag"`
	Href          string                        `json:"href"`
	ID            string                        `json:"id"`
	ProjectID     string                        `json:"project_id"`
	ResourceType  string                        `json:"resource_type"`
	Status        string                        `json:"status"`
	StatusDetails CronSubscriptionStatusDetails `json:"status_details"`
}

// CronSubscriptionList is a page of cron subscriptions.
type CronSubscriptionList struct {
	Limit         int                `json:"limit"`
	First         *PageRef           `json:"first,omitempty"`
	Next          *PageRef           `json:"next,omitempty"`
	Subscriptions []CronSubscription `json:"subscriptions"`
}

func cronPath(project string, name ...string) string {
	return resourcePath(project, "subscriptions/cron", name...)
}

// CreateCronSubscription creates a cron subscription.
func (c *Client) CreateCronSubscription(ctx context.Context, project string, in CronSubscriptionPrototype) (*CronSubscription, error) {
	return call[CronSubscription](ctx, c, http.MethodPost, cronPath(project), nil, in)
}

// GetCronSubscription reads a cron subscription with its deliveries.
func (c *Client) GetCronSubscription(ctx context.Context, project, name string) (*CronSubscription, error) {
	return call[CronSubscription](ctx, c, http.MethodGet, cronPath(project, name), nil, nil)
}

// ListCronSubscriptions lists a page of a project's cron subscriptions.
func (c *Client) ListCronSubscriptions(ctx context.Context, project string, o ListOptions) (*CronSubscriptionList, error) {
	return call[CronSubscriptionList](ctx, c, http.MethodGet, cronPath(project), o.query(), nil)
}

// AllCronSubscriptions lists every cron subscription of a project.
func (c *Client) AllCronSubscriptions(ctx context.Context, project string) ([]CronSubscription, error) {
	return all(func(o ListOptions) ([]CronSubscription, *PageRef, error) {
		l, err := c.ListCronSubscriptions(ctx, project, o)
		if err != nil {
			return nil, nil, err
		}
		return l.Subscriptions, l.Next, nil
	})
}

// UpdateCronSubscription applies a merge patch (any JSON object).
func (c *Client) UpdateCronSubscription(ctx context.Context, project, name, ifMatch string, body any) (*CronSubscription, error) {
	return patch[CronSubscription](ctx, c, cronPath(project, name), ifMatch, body)
}

// DeleteCronSubscription deletes a cron subscription; no tick is
// delivered after.
func (c *Client) DeleteCronSubscription(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, cronPath(project, name), nil, nil, nil, nil)
	return err
}
