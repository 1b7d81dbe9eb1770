package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls a coligo server's v2 API.
type Client struct {
	// BaseURL is the server's address, e.g. "http://127.0.0.1:7070"; "/v2"
	// is appended unless it is already there.
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Error is an error answer of the API.
type Error struct {
	StatusCode int
	Code       string
	Message    string
	Trace      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d %s, trace %s)", e.Message, e.StatusCode, e.Code, e.Trace)
}

// ListOptions selects a page of a list.
type ListOptions struct {
	Limit int
	Start string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Start != "" {
		q.Set("start", o.Start)
	}
	return q
}

func (c *Client) base() string {
	b := strings.TrimRight(c.BaseURL, "/")
	if !strings.HasSuffix(b, "/v2") {
		b += "/v2"
	}
	return b
}

// Do sends a request with a JSON body (when in is not nil) and decodes a JSON
// answer into out (when out is not nil). Headers are extra request headers.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, headers map[string]string, in, out any) (http.Header, error) {
	u := c.base() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.unreachable(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.Header, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		return resp.Header, errorFrom(resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.Header, fmt.Errorf("decode response: %w", err)
		}
	}
	return resp.Header, nil
}

func esc(s string) string { return url.PathEscape(s) }

// errorFrom reads an error answer: the API's error body, or its plain text.
// unreachable says what to check when no answer came: the address, or the
// trust in the server's certificate.
func (c *Client) unreachable(err error) error {
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var opErr *net.OpError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("the certificate of the coligo server at %s is not signed by an authority this client trusts (coligo login --ca-file FILE, or COLIGO_CA_FILE): %w", c.BaseURL, err)
	case errors.As(err, &badHost):
		return fmt.Errorf("the certificate of the coligo server at %s is not for that name (a self-signed server covers more names with --tls-san): %w", c.BaseURL, err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("cannot reach the coligo server at %s: is it running, and is the endpoint right (coligo login --endpoint, or COLIGO_ENDPOINT)? %w", c.BaseURL, err)
	}
	return err
}

func errorFrom(status int, body []byte) *Error {
	var e ErrorResponse
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		return &Error{StatusCode: status, Code: e.Errors[0].Code, Message: e.Errors[0].Message, Trace: e.Trace}
	}
	return &Error{StatusCode: status, Code: "http_error", Message: strings.TrimSpace(string(body))}
}

// stream copies a plain-text answer to w as it arrives.
func (c *Client) stream(ctx context.Context, path string, q url.Values, w io.Writer) error {
	u := c.base() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return errorFrom(resp.StatusCode, b)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Info is which build of coligo serves.
type Info struct {
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
}

// Info asks the server which build it is.
func (c *Client) Info(ctx context.Context) (*Info, error) {
	var out Info
	if _, err := c.Do(ctx, http.MethodGet, "/info", nil, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateProject creates a project; it starts in status "creating".
func (c *Client) CreateProject(ctx context.Context, p ProjectPrototype) (*Project, error) {
	return call[Project](ctx, c, http.MethodPost, "/projects", nil, p)
}

// ListProjects returns one page of projects.
func (c *Client) ListProjects(ctx context.Context, o ListOptions, includeDeleted bool) (*ProjectList, error) {
	q := o.query()
	if includeDeleted {
		q.Set("include_deleted", "true")
	}
	return call[ProjectList](ctx, c, http.MethodGet, "/projects", q, nil)
}

// AllProjects follows next.start until the last page.
func (c *Client) AllProjects(ctx context.Context, includeDeleted bool) ([]Project, error) {
	return all(func(o ListOptions) ([]Project, *PageRef, error) {
		page, err := c.ListProjects(ctx, o, includeDeleted)
		return page.Projects, page.Next, err
	})
}

// all gathers every page of a list, 100 items at a time.
func all[T any](list func(ListOptions) ([]T, *PageRef, error)) ([]T, error) {
	var out []T
	o := ListOptions{Limit: 100}
	for {
		items, next, err := list(o)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if next == nil || next.Start == "" {
			return out, nil
		}
		o.Start = next.Start
	}
}

// GetProject returns a project by id.
func (c *Client) GetProject(ctx context.Context, id string) (*Project, error) {
	return call[Project](ctx, c, http.MethodGet, "/projects/"+esc(id), nil, nil)
}

// DeleteProject soft-deletes a project, or crypto-shreds it when hard is set.
func (c *Client) DeleteProject(ctx context.Context, id string, hard bool) error {
	q := url.Values{}
	if hard {
		q.Set("hard", "true")
	}
	_, err := c.Do(ctx, http.MethodDelete, "/projects/"+esc(id), q, nil, nil, nil)
	return err
}

// RotateProjectKey gives a project a new data key; its records are sealed
// again in the background (coligo's addition).
func (c *Client) RotateProjectKey(ctx context.Context, id string) (*Project, error) {
	return call[Project](ctx, c, http.MethodPost, "/projects/"+esc(id)+"/rotate_key", nil, nil)
}

// RestoreProject restores a soft-deleted project.
func (c *Client) RestoreProject(ctx context.Context, id string) (*Project, error) {
	return call[Project](ctx, c, http.MethodPost, "/projects/"+esc(id)+"/restore", nil, nil)
}

// CreateSecret creates a secret.
func (c *Client) CreateSecret(ctx context.Context, project string, s SecretPrototype) (*Secret, error) {
	return call[Secret](ctx, c, http.MethodPost, "/projects/"+esc(project)+"/secrets", nil, s)
}

// ListSecrets returns one page of secrets, optionally of one format.
func (c *Client) ListSecrets(ctx context.Context, project string, o ListOptions, format string) (*SecretList, error) {
	q := o.query()
	if format != "" {
		q.Set("format", format)
	}
	return call[SecretList](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/secrets", q, nil)
}

// GetSecret returns a secret; values only for writer, manager and admin.
func (c *Client) GetSecret(ctx context.Context, project, name string) (*Secret, error) {
	return call[Secret](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/secrets/"+esc(name), nil, nil)
}

// GetSecretKeys returns a secret with every value REDACTED, whatever the
// token may read (coligo's redact=true), so that no value read is recorded.
func (c *Client) GetSecretKeys(ctx context.Context, project, name string) (*Secret, error) {
	return call[Secret](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/secrets/"+esc(name), url.Values{"redact": {"true"}}, nil)
}

// ReplaceSecret replaces a secret's data if its entity tag still is ifMatch.
func (c *Client) ReplaceSecret(ctx context.Context, project, name, ifMatch string, s SecretReplace) (*Secret, error) {
	var out Secret
	_, err := c.Do(ctx, http.MethodPut, "/projects/"+esc(project)+"/secrets/"+esc(name), nil, ifMatchHeader(ifMatch), s, &out)
	return &out, err
}

// DeleteSecret deletes a secret.
func (c *Client) DeleteSecret(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/projects/"+esc(project)+"/secrets/"+esc(name), nil, nil, nil, nil)
	return err
}

// CreateConfigMap creates a config map.
func (c *Client) CreateConfigMap(ctx context.Context, project string, cm ConfigMapPrototype) (*ConfigMap, error) {
	return call[ConfigMap](ctx, c, http.MethodPost, "/projects/"+esc(project)+"/config_maps", nil, cm)
}

// ListConfigMaps returns one page of config maps.
func (c *Client) ListConfigMaps(ctx context.Context, project string, o ListOptions) (*ConfigMapList, error) {
	return call[ConfigMapList](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/config_maps", o.query(), nil)
}

// GetConfigMap returns a config map.
func (c *Client) GetConfigMap(ctx context.Context, project, name string) (*ConfigMap, error) {
	return call[ConfigMap](ctx, c, http.MethodGet, "/projects/"+esc(project)+"/config_maps/"+esc(name), nil, nil)
}

// ReplaceConfigMap replaces a config map's data if its entity tag still is ifMatch.
func (c *Client) ReplaceConfigMap(ctx context.Context, project, name, ifMatch string, cm ConfigMapReplace) (*ConfigMap, error) {
	var out ConfigMap
	_, err := c.Do(ctx, http.MethodPut, "/projects/"+esc(project)+"/config_maps/"+esc(name), nil, ifMatchHeader(ifMatch), cm, &out)
	return &out, err
}

// DeleteConfigMap deletes a config map.
func (c *Client) DeleteConfigMap(ctx context.Context, project, name string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/projects/"+esc(project)+"/config_maps/"+esc(name), nil, nil, nil, nil)
	return err
}

// CreateToken creates a token; the answer carries its value, shown once.
func (c *Client) CreateToken(ctx context.Context, t TokenPrototype) (*Token, error) {
	return call[Token](ctx, c, http.MethodPost, "/tokens", nil, t)
}

// ListTokens lists the tokens the caller may manage.
func (c *Client) ListTokens(ctx context.Context) (*TokenList, error) {
	return call[TokenList](ctx, c, http.MethodGet, "/tokens", nil, nil)
}

// RevokeToken deletes a token.
func (c *Client) RevokeToken(ctx context.Context, id string) error {
	_, err := c.Do(ctx, http.MethodDelete, "/tokens/"+esc(id), nil, nil, nil, nil)
	return err
}

func ifMatchHeader(tag string) map[string]string {
	if tag == "" {
		return nil
	}
	return map[string]string{"If-Match": tag}
}

// AllSecrets lists every secret of a project (of format, if not ""),
// following every page.
func (c *Client) AllSecrets(ctx context.Context, project, format string) ([]Secret, error) {
	return all(func(o ListOptions) ([]Secret, *PageRef, error) {
		page, err := c.ListSecrets(ctx, project, o, format)
		return page.Secrets, page.Next, err
	})
}

// AllConfigMaps lists every config map of a project, following every page.
func (c *Client) AllConfigMaps(ctx context.Context, project string) ([]ConfigMap, error) {
	return all(func(o ListOptions) ([]ConfigMap, *PageRef, error) {
		page, err := c.ListConfigMaps(ctx, project, o)
		return page.ConfigMaps, page.Next, err
	})
}

// resourcePath is the path of a project's collection, or of a resource
// in it (and below), each part escaped.
func resourcePath(project, collection string, parts ...string) string {
	p := "/projects/" + url.PathEscape(project) + "/" + collection
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// call sends a request with body (nil: none) and decodes the answer's
// JSON into a T.
func call[T any](ctx context.Context, c *Client, method, path string, q url.Values, body any) (*T, error) {
	var out T
	_, err := c.Do(ctx, method, path, q, nil, body, &out)
	return &out, err
}

// patch applies a merge patch to the resource at path if its entity tag
// still is ifMatch, and decodes the answer into a T.
func patch[T any](ctx context.Context, c *Client, path, ifMatch string, body any) (*T, error) {
	var out T
	h := map[string]string{"If-Match": ifMatch, "Content-Type": "application/merge-patch+json"}
	_, err := c.Do(ctx, http.MethodPatch, path, nil, h, body, &out)
	return &out, err
}
