package computetoken

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store/storetest"
)

func TestVerify(t *testing.T) {
	key, other := []byte(strings.Repeat("k", 32)), []byte(strings.Repeat("o", 32))
	now := time.Unix(1_800_000_000, 0)
	c := Claims{Project: "p1", Subject: "app/web", Expires: now.Add(time.Hour)}
	tok := Mint(key, c)
	body, sig, _ := strings.Cut(strings.TrimPrefix(tok, Prefix), ".")
	forged := Mint(other, Claims{Project: "p2", Subject: "app/web", Expires: now.Add(time.Hour)})
	forgedBody, _, _ := strings.Cut(strings.TrimPrefix(forged, Prefix), ".")
	for _, tc := range []struct {
		name  string
		token string
		key   []byte
		at    time.Time
		ok    bool
	}{
		{"valid", tok, key, now, true},
		{"just before expiry", tok, key, c.Expires.Add(-time.Second), true},
		{"at expiry", tok, key, c.Expires, false},
		{"another key", tok, other, now, false},
		{"another body, same signature", Prefix + forgedBody + "." + sig, key, now, false},
		{"no signature", Prefix + body, key, now, false},
		{"no prefix", strings.TrimPrefix(tok, Prefix), key, now, false},
		{"an API token", "coligo_abc", key, now, false},
		{"garbage", Prefix + "!!!.???", key, now, false},
		{"empty", "", key, now, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tc.key, tc.token, tc.at)
			if tc.ok != (err == nil) {
				t.Fatalf("Verify: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (got.Project != c.Project || got.Subject != c.Subject || !got.Expires.Equal(c.Expires)) {
				t.Errorf("claims %+v, want %+v", got, c)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func FuzzPeek(f *testing.F) {
	f.Add(Mint([]byte("k"), Claims{Project: "p", Subject: "app/a", Expires: time.Unix(1, 0)}))
	f.Add(Prefix + "e30.")
	f.Fuzz(func(t *testing.T, token string) {
		if c, err := Peek(token); err == nil && (c.Project == "" || c.Subject == "") {
			t.Fatalf("claims without a project or subject: %+v", c)
		}
		if _, err := Verify([]byte("k"), token, time.Unix(0, 0)); err == nil && !strings.HasPrefix(token, Prefix) {
			t.Fatalf("verified %q", token)
		}
	})
}

// TestKeys runs against real bbolt: a project's key is made once however
// many ask at once, kept sealed in the project, checks its tokens and no
// other project's, and a project without one (none was issued, or it is
// gone) checks none.
func TestKeys(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	var ps []core.Project
	for _, id := range []string{"p1", "p2"} {
		p, err := db.CreateProject(ctx, core.Project{ID: id, Name: id, Status: core.ProjectActive}, func() string { return "s" + id })
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	keys := NewKeys(db)
	now := time.Now()
	var wg sync.WaitGroup
	toks := make([]string, 8)
	for i := range toks {
		wg.Go(func() {
			var err error
			if toks[i], err = NewKeys(db).Issue(ctx, "p1", "app/web", now, time.Hour); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, tok := range toks {
		if c, err := keys.Check(ctx, tok, now); err != nil || c.Project != "p1" {
			t.Fatalf("a token of p1: %+v %v", c, err)
		}
	}
	if _, err := keys.Check(ctx, Mint([]byte(strings.Repeat("x", 32)), Claims{Project: "p2", Subject: "app/web", Expires: now.Add(time.Hour)}), now); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token of p2, which has no key: %v", err)
	}
	if _, err := keys.Check(ctx, Mint([]byte(strings.Repeat("x", 32)), Claims{Project: "nope", Subject: "app/web", Expires: now.Add(time.Hour)}), now); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token of a project that does not exist: %v", err)
	}
	// p2's key does not check p1's tokens.
	if _, err := keys.Issue(ctx, "p2", "app/x", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	k1, _ := keys.Key(ctx, "p1", false)
	k2, _ := keys.Key(ctx, "p2", false)
	if string(k1) == string(k2) {
		t.Fatal("two projects share a key")
	}
	if _, err := db.UpdateProject(ctx, "p1", 0, func(p *core.Project) error { p.Status = core.ProjectHardDeleting; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.DestroyDEK(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	keys.Forget("p1")
	if _, err := keys.Check(ctx, toks[0], now); err == nil {
		t.Error("a token of a shredded project still checks")
	}
}
