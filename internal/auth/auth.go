package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/internal/core"
)

// TokenPrefix starts every coligo token, so that secret scanners find them.
const TokenPrefix = "coligo_"

// TokenStore keeps tokens by the hash of their value.
type TokenStore interface {
	PutToken(ctx context.Context, t core.Token) error
	TokenByHash(ctx context.Context, hash []byte) (core.Token, error)
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
	t, err := s.TokenByHash(ctx, Hash(token))
	if errors.Is(err, core.ErrNotFound) {
		return Principal{}, fmt.Errorf("token is not valid: %w", core.ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	return Principal{TokenID: t.ID, Role: t.Role, ProjectID: t.ProjectID}, nil
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
