package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
)

type memTokens map[string]core.Token

func (m memTokens) PutToken(_ context.Context, t core.Token) error { m[string(t.Hash)] = t; return nil }
func (m memTokens) TokenByHash(_ context.Context, h []byte) (core.Token, error) {
	t, ok := m[string(h)]
	if !ok {
		return t, core.ErrNotFound
	}
	return t, nil
}

func TestMintAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := memTokens{}
	tok, value, err := Mint(ctx, s, "ci", "p1", core.RoleWriter)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(value, TokenPrefix) || len(value) != len(TokenPrefix)+43 {
		t.Errorf("token value %d chars", len(value))
	}
	if strings.Contains(string(tok.Hash), value) {
		t.Error("the stored token holds its value")
	}
	p, err := Authenticate(ctx, s, "Bearer "+value)
	if err != nil || p.Role != core.RoleWriter || p.ProjectID != "p1" {
		t.Fatalf("authenticate: %+v %v", p, err)
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic abc", "Bearer " + value + "x", value} {
		if _, err := Authenticate(ctx, s, h); !errors.Is(err, core.ErrUnauthenticated) {
			t.Errorf("header %.20q: %v", h, err)
		}
		if _, err := Authenticate(ctx, s, h); err != nil && strings.Contains(err.Error(), value) {
			t.Errorf("error quotes the token")
		}
	}
	for _, bad := range []struct {
		project string
		role    core.Role
	}{{"", core.RoleReader}, {"p1", core.RoleAdmin}, {"p1", "owner"}} {
		if _, _, err := Mint(ctx, s, "x", bad.project, bad.role); !errors.Is(err, core.ErrInvalid) {
			t.Errorf("mint %v: %v", bad, err)
		}
	}
}

func TestAuthorize(t *testing.T) {
	admin := Principal{Role: core.RoleAdmin}
	reader := Principal{Role: core.RoleReader, ProjectID: "a"}
	manager := Principal{Role: core.RoleManager, ProjectID: "a"}
	tests := []struct {
		p       Principal
		project string
		need    core.Role
		want    error
	}{
		{admin, "b", core.RoleManager, nil},
		{reader, "a", core.RoleReader, nil},
		{reader, "a", core.RoleWriter, core.ErrForbidden},
		{reader, "b", core.RoleReader, core.ErrNotFound},
		{manager, "a", core.RoleManager, nil},
		{manager, "b", core.RoleReader, core.ErrNotFound},
		{manager, "", core.RoleReader, core.ErrNotFound},
	}
	for _, tt := range tests {
		if err := Authorize(tt.p, tt.project, tt.need); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%+v on %q needing %s: got %v, want %v", tt.p, tt.project, tt.need, err, tt.want)
		}
	}
}

// TestExchange: an exchange's access token authenticates as its parent
// (the same project and role, the parent's id as actor) until it expires;
// its refresh token never does; an exchange's token is not exchanged.
func TestExchange(t *testing.T) {
	ctx := context.Background()
	s := memTokens{}
	parent, _, err := Mint(ctx, s, "sdk", "p1", core.RoleReader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	access, refresh, exp, err := Exchange(ctx, s, parent, now)
	if err != nil || !exp.Equal(now.Add(AccessLife).UTC()) {
		t.Fatalf("exchange: %v %s", err, exp)
	}
	p, err := Authenticate(ctx, s, "Bearer "+access)
	if err != nil || p.TokenID != parent.ID || p.Role != core.RoleReader || p.ProjectID != "p1" {
		t.Errorf("the access token: %+v %v", p, err)
	}
	if _, err := Authenticate(ctx, s, "Bearer "+refresh); !errors.Is(err, core.ErrUnauthenticated) {
		t.Errorf("the refresh token as bearer: %v", err)
	}
	if _, err := Lookup(ctx, s, access, now.Add(AccessLife)); !errors.Is(err, core.ErrUnauthenticated) {
		t.Errorf("the access token at its expiry: %v", err)
	}
	if _, err := Lookup(ctx, s, refresh, now.Add(AccessLife)); err != nil {
		t.Errorf("the refresh token within its life: %v", err)
	}
	child, _ := Lookup(ctx, s, access, now)
	if _, _, _, err := Exchange(ctx, s, child, now); err == nil {
		t.Error("an access token was exchanged")
	}
}
