package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
)

// AuditEvent is an entry of the audit log (coligo's addition). Every field
// but TargetName is covered by Hash; TargetName is the sealed target opened
// for the caller while the project's key exists.
type AuditEvent struct {
	Seq          uint64 `json:"seq"`
	Time         string `json:"time"`
	Actor        string `json:"actor"`
	Action       string `json:"action"`
	Kind         string `json:"kind,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	StatusCode   int    `json:"status_code,omitempty"`
	ProjectID    string `json:"project_id,omitempty"`
	Target       string `json:"target,omitempty"`
	TargetHash   string `json:"target_hash,omitempty"`
	SealedTarget []byte `json:"sealed_target,omitempty"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
	TargetName   string `json:"target_name,omitempty"`
}

// AuditEventList is a page of audit events.
type AuditEventList struct {
	Limit       int          `json:"limit"`
	First       *PageRef     `json:"first,omitempty"`
	Next        *PageRef     `json:"next,omitempty"`
	AuditEvents []AuditEvent `json:"audit_events"`
}

// ListAuditEvents returns one page of audit events, optionally of one project.
func (c *Client) ListAuditEvents(ctx context.Context, o ListOptions, project string) (*AuditEventList, error) {
	q := o.query()
	if project != "" {
		q.Set("project_id", project)
	}
	return call[AuditEventList](ctx, c, http.MethodGet, "/audit_events", q, nil)
}

// AllAuditEvents follows next.start until the last page.
func (c *Client) AllAuditEvents(ctx context.Context, project string) ([]AuditEvent, error) {
	return all(func(o ListOptions) ([]AuditEvent, *PageRef, error) {
		page, err := c.ListAuditEvents(ctx, o, project)
		return page.AuditEvents, page.Next, err
	})
}

// RotateRootKey gives a key provider's root key a new version (admin); the
// server re-wraps the data keys it wraps in the background. It returns the
// new key id.
func (c *Client) RotateRootKey(ctx context.Context, provider string) (string, error) {
	var out struct {
		KeyID string `json:"key_id"`
	}
	_, err := c.Do(ctx, http.MethodPost, "/key_providers/"+url.PathEscape(provider)+"/rotate", nil, nil, nil, &out)
	return out.KeyID, err
}

// AuditVerification is the server's check of the whole audit log.
type AuditVerification struct {
	Valid         bool   `json:"valid"`
	Entries       int    `json:"entries"`
	FirstSeq      uint64 `json:"first_seq,omitempty"`
	LastSeq       uint64 `json:"last_seq,omitempty"`
	PrunedThrough uint64 `json:"pruned_through,omitempty"`
	Problem       string `json:"problem,omitempty"`
}

// VerifyAuditEvents asks the server to verify the audit log (admin).
func (c *Client) VerifyAuditEvents(ctx context.Context) (*AuditVerification, error) {
	return call[AuditVerification](ctx, c, http.MethodGet, "/audit_events/verify", nil, nil)
}

// Backup writes a consistent copy of the server's store to w (admin). A
// copy cut short is an error.
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	return c.stream(ctx, "/admin/backup", nil, w)
}
