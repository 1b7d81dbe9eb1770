package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// user is the name coligo pushes as.
const user = "coligo"

// Registry is a running registry.
type Registry struct {
	ln       net.Listener
	srv      *http.Server
	password string
}

// Start serves a registry on addr (host:port; port 0: a free one).
func Start(addr string) (*Registry, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("runtime image registry: %w", err)
	}
	pw := make([]byte, 16)
	rand.Read(pw)
	r := &Registry{ln: ln, password: hex.EncodeToString(pw)}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(discard{}, "", 0)))
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead && !r.pusher(req) {
			w.Header().Set("WWW-Authenticate", `Basic realm="coligo runtime images"`)
			http.Error(w, "only coligo pushes here", http.StatusUnauthorized)
			return
		}
		inner.ServeHTTP(w, req)
	}), ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *Registry) pusher(req *http.Request) bool {
	u, p, ok := req.BasicAuth()
	return ok && u == user && subtle.ConstantTimeCompare([]byte(p), []byte(r.password)) == 1
}

// Addr is the registry's host:port.
func (r *Registry) Addr() string { return r.ln.Addr().String() }

// Publish pushes img as repo and returns its reference pinned to its
// digest.
func (r *Registry) Publish(ctx context.Context, repo string, img v1.Image) (string, error) {
	ref, err := name.ParseReference(r.Addr()+"/"+repo+":latest", name.Insecure)
	if err != nil {
		return "", fmt.Errorf("runtime image %s: %w", repo, err)
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx), remote.WithAuth(&authn.Basic{Username: user, Password: r.password})); err != nil {
		return "", fmt.Errorf("publish runtime image %s: %w", repo, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return r.Addr() + "/" + repo + "@" + d.String(), nil
}

// Close stops the registry.
func (r *Registry) Close() error {
	if err := r.srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
