package regclient

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/netguard"
)

// Client reaches registries.
type Client struct {
	// Insecure lists the registries (host:port) served over plain HTTP
	// (--insecure-registry); they are the only inward ones reached.
	Insecure  []string
	transport http.RoundTripper
}

// New returns a client whose connections go through netguard.
func New(insecure []string) *Client {
	return &Client{Insecure: insecure, transport: netguard.HTTPClient(&netguard.Guard{Allow: insecure}).Transport}
}

// Parse completes a reference with defaultRegistry (docker.io for
// images, icr.io for code bundles) and the tag latest.
func (c *Client) Parse(ref, defaultRegistry string) (name.Reference, error) {
	opts := []name.Option{name.WithDefaultRegistry(defaultRegistry)}
	if r, err := name.ParseReference(ref, opts...); err == nil && slices.Contains(c.Insecure, r.Context().RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	return name.ParseReference(ref, opts...)
}

// Options are the remote options of one request for ref with auth.
func (c *Client) Options(ctx context.Context, ref name.Reference, auth *engine.RegistryAuth) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuth(Auth(ref, auth)), remote.WithTransport(c.transport)}
}

// Delete deletes the image ref (by digest, as registries delete) with auth.
func (c *Client) Delete(ctx context.Context, image string, auth *engine.RegistryAuth) error {
	ref, err := c.Parse(image, name.DefaultRegistry)
	if err != nil {
		return err
	}
	return remote.Delete(ref, c.Options(ctx, ref, auth)...)
}

// Auth is auth's authenticator for ref: anonymous when auth is for another
// registry.
func Auth(ref name.Reference, auth *engine.RegistryAuth) authn.Authenticator {
	if auth == nil || !HostMatches(auth.Server, ref.Context().RegistryStr()) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: auth.Username, Password: auth.Password})
}

// HostMatches reports whether a registry server as users write it
// ("https://us.icr.io/", "us.icr.io", "docker.io") names host.
func HostMatches(server, host string) bool {
	s := ServerHost(server)
	return s == host || s == "docker.io" && (host == name.DefaultRegistry || host == "registry-1.docker.io")
}

// ServerHost is the host of a registry server as users write it; Docker
// Hub's names are docker.io.
func ServerHost(server string) string {
	server = strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	server = strings.SplitN(server, "/", 2)[0]
	if server == name.DefaultRegistry || server == "registry-1.docker.io" {
		return "docker.io"
	}
	return server
}

// Reason maps a registry error to the reason users see.
func Reason(err error, haveAuth bool) string {
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.Is(err, netguard.ErrNotAllowed):
		return engine.PullNotAllowed
	case errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden):
		if haveAuth {
			return engine.PullUnauthorized
		}
		return engine.PullMissingAuth
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return engine.PullNotFound
	case errors.As(err, &ne):
		return engine.PullUnreachable
	}
	return engine.PullFailed
}
