package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/core"
)

// TokenPrefix starts every coligo token, so that secret scanners find them.
const TokenPrefix = "coligo_"

// TokenStore keeps tokens by the hash of their value.
type TokenStore interface {
	PutToken(ctx context.Context, t core.Token) error
	TokenByHash(ctx context.Context, hash []byte) (core.Token, error)
}

// ComputeTokenChecker is a TokenStore that also checks compute resource
// tokens (computetoken.Keys): an instance's identity, a writer of its
// project.
type ComputeTokenChecker interface {
	Check(ctx context.Context, token string, now time.Time) (computetoken.Claims, error)
}

// Principal is who makes a request.
type Principal struct {
	TokenID   string
	Role      core.Role
	ProjectID string // empty for admin
}

// Admin reports whether p may do everything.
func (p Principal) Admin() bool { return p.Role == core.RoleAdmin }

// Hash returns the stored form of a token value.
func Hash(token string) []byte {
	s := sha256.Sum256([]byte(token))
	return s[:]
}

// Mint creates a token, stores its hash and returns its value, which is shown
// once and never stored.
func Mint(ctx context.Context, s TokenStore, name, projectID string, role core.Role) (core.Token, string, error) {
	if !role.Valid() {
		return core.Token{}, "", core.Invalid("role", "%q is not one of reader, writer, manager, admin", role)
	}
	if (role == core.RoleAdmin) != (projectID == "") {
		return core.Token{}, "", core.Invalid("role", "admin tokens have no project; project tokens are reader, writer or manager")
	}
	if err := core.ValidateTokenName(name); err != nil {
		return core.Token{}, "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return core.Token{}, "", fmt.Errorf("generate token: %w", err)
	}
	value := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	t := core.Token{ID: uuid.NewString(), Name: name, ProjectID: projectID, Role: role, Hash: Hash(value), CreatedAt: time.Now().UTC()}
	if err := s.PutToken(ctx, t); err != nil {
		return core.Token{}, "", fmt.Errorf("store token: %w", err)
	}
	return t, value, nil
}

// Authenticate resolves an Authorization header value to a principal. Any
// failure matches core.ErrUnauthenticated and says nothing of the token.
func Authenticate(ctx context.Context, s TokenStore, header string) (Principal, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		// Code Engine SDKs send "Bearer", curl users sometimes "bearer".
		token, ok = strings.CutPrefix(header, "bearer ")
	}
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return Principal{}, fmt.Errorf("missing bearer token: %w", core.ErrUnauthenticated)
	}
	if strings.HasPrefix(token, computetoken.Prefix) {
		ct, ok := s.(ComputeTokenChecker)
		if !ok {
			return Principal{}, fmt.Errorf("token is not valid: %w", core.ErrUnauthenticated)
		}
		c, err := ct.Check(ctx, token, time.Now())
		if err != nil {
			return Principal{}, fmt.Errorf("token is not valid: %w", core.ErrUnauthenticated)
		}
		return Principal{TokenID: "compute-resource:" + c.Subject, Role: computetoken.Role, ProjectID: c.Project}, nil
	}
	return AuthenticateHash(ctx, s, Hash(token))
}

// AuthenticateHash resolves the hash of a bearer token (as a console
// session holds it) to a principal, as Authenticate does the token.
func AuthenticateHash(ctx context.Context, s TokenStore, hash []byte) (Principal, error) {
	t, err := lookupHash(ctx, s, hash, time.Now())
	if err != nil {
		return Principal{}, err
	}
	if t.Kind == core.TokenRefresh {
		return Principal{}, fmt.Errorf("a refresh token is not a bearer token: %w", core.ErrUnauthenticated)
	}
	return Principal{TokenID: cmp.Or(t.Parent, t.ID), Role: t.Role, ProjectID: t.ProjectID}, nil
}

// Lookup finds the token of a value, of any kind, unless it has expired at
// now; any failure matches core.ErrUnauthenticated but the store's.
func Lookup(ctx context.Context, s TokenStore, value string, now time.Time) (core.Token, error) {
	return lookupHash(ctx, s, Hash(value), now)
}

func lookupHash(ctx context.Context, s TokenStore, hash []byte, now time.Time) (core.Token, error) {
	t, err := s.TokenByHash(ctx, hash)
	if errors.Is(err, core.ErrNotFound) {
		return t, fmt.Errorf("token is not valid: %w", core.ErrUnauthenticated)
	}
	if err != nil {
		return t, fmt.Errorf("look up token: %w", err)
	}
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return t, fmt.Errorf("token has expired: %w", core.ErrUnauthenticated)
	}
	return t, nil
}

// Lifetimes of an exchange's tokens, as IAM's.
const (
	AccessLife  = time.Hour
	RefreshLife = 30 * 24 * time.Hour
)

// Exchange makes an access token and a refresh token of parent's identity
// (a token of its own), stored by their hashes; it returns their values and
// when the access token expires.
func Exchange(ctx context.Context, s TokenStore, parent core.Token, now time.Time) (access, refresh string, expires time.Time, err error) {
	if parent.Kind != "" {
		return "", "", time.Time{}, errors.New("an exchange's token cannot be exchanged")
	}
	mint := func(kind string, life time.Duration) (string, time.Time, error) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", time.Time{}, fmt.Errorf("generate token: %w", err)
		}
		value := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
		exp := now.Add(life).UTC()
		t := core.Token{ID: uuid.NewString(), Name: parent.Name + " (" + kind + ")", ProjectID: parent.ProjectID, Role: parent.Role,
			Hash: Hash(value), CreatedAt: now.UTC(), Parent: parent.ID, Kind: kind, ExpiresAt: &exp}
		if err := s.PutToken(ctx, t); err != nil {
			return "", time.Time{}, fmt.Errorf("store token: %w", err)
		}
		return value, exp, nil
	}
	if access, expires, err = mint(core.TokenAccess, AccessLife); err != nil {
		return "", "", time.Time{}, err
	}
	if refresh, _, err = mint(core.TokenRefresh, RefreshLife); err != nil {
		return "", "", time.Time{}, err
	}
	return access, refresh, expires, nil
}

// Authorize decides whether p may act with role need in project. A project
// token asking about another project gets core.ErrNotFound (no existence
// oracle); a role too weak in its own project gets core.ErrForbidden.
func Authorize(p Principal, project string, need core.Role) error {
	if p.Admin() {
		return nil
	}
	if project == "" || p.ProjectID != project {
		return core.ErrNotFound
	}
	if !p.Role.AtLeast(need) {
		return fmt.Errorf("this needs role %s, the token has %s: %w", need, p.Role, core.ErrForbidden)
	}
	return nil
}
