package seal

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/coligo/coligo/internal/keys"
)

func newSealer(t testing.TB) *Sealer {
	t.Helper()
	root, err := keys.NewLocal(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return New(root, 16)
}

func TestSealOpen(t *testing.T) {
	ctx := context.Background()
	s := newSealer(t)
	dekA, enc, err := s.NewDEK(ctx, "project-a", "")
	if err != nil {
		t.Fatal(err)
	}
	if enc.Provider != "local" || enc.KeyID == "" {
		t.Errorf("encryption info %+v", enc)
	}
	dekB, _, _ := s.NewDEK(ctx, "project-b", "")
	plain := []byte(`{"password":"hunter2"}`)
	sealed, err := s.Seal(ctx, "project-a", dekA, []byte("project-a/secret/db"), plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value holds the plaintext")
	}
	again, _ := s.Seal(ctx, "project-a", dekA, []byte("project-a/secret/db"), plain)
	if bytes.Equal(sealed, again) {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := s.Open(ctx, "project-a", dekA, []byte("project-a/secret/db"), sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q %v", got, err)
	}

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	cases := map[string]func() error{
		"other location": func() error {
			_, err := s.Open(ctx, "project-a", dekA, []byte("project-a/secret/other"), sealed)
			return err
		},
		"other project": func() error {
			_, err := s.Open(ctx, "project-b", dekB, []byte("project-a/secret/db"), sealed)
			return err
		},
		"tampered": func() error {
			_, err := s.Open(ctx, "project-a", dekA, []byte("project-a/secret/db"), tampered)
			return err
		},
		"truncated": func() error { _, err := s.Open(ctx, "project-a", dekA, nil, sealed[:10]); return err },
		"unknown version": func() error {
			b := bytes.Clone(sealed)
			b[0] = 9
			_, err := s.Open(ctx, "project-a", dekA, nil, b)
			return err
		},
	}
	for name, f := range cases {
		if err := f(); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
	// A wrapped DEK moved to another project does not unwrap.
	fresh := New(mustLocal(t, 7), 16)
	if _, err := fresh.Open(ctx, "project-b", dekA, []byte("project-a/secret/db"), sealed); err == nil {
		t.Error("a DEK wrapped for project-a unwrapped for project-b")
	}
	// Another root key cannot unwrap.
	other := New(mustLocal(t, 8), 16)
	if _, err := other.Open(ctx, "project-a", dekA, []byte("project-a/secret/db"), sealed); err == nil {
		t.Error("another root key opened the record")
	}
	// After a restart (empty cache) the same root key unwraps.
	if got, err := fresh.Open(ctx, "project-a", dekA, []byte("project-a/secret/db"), sealed); err != nil || !bytes.Equal(got, plain) {
		t.Errorf("fresh sealer: %v", err)
	}
}

func mustLocal(t *testing.T, b byte) *keys.Local {
	t.Helper()
	l, err := keys.NewLocal(bytes.Repeat([]byte{b}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestCacheIsBounded(t *testing.T) {
	c := newLRU(2)
	c.put("a", "1", "local", nil)
	c.put("b", "2", "hsm", nil)
	c.get([]byte("a"))
	c.put("c", "3", "local", nil)
	if _, ok := c.get([]byte("b")); ok {
		t.Error("least recently used entry was kept")
	}
	if _, ok := c.get([]byte("a")); !ok {
		t.Error("recently used entry was evicted")
	}
	if len(c.items) != 2 || c.order.Len() != 2 {
		t.Errorf("cache holds %d entries, bound is 2", len(c.items))
	}
	if n := c.removeProvider("local"); n != 2 || len(c.items) != 0 || c.order.Len() != 0 {
		t.Errorf("forgetting a provider's keys removed %d, left %d", n, len(c.items))
	}
}

func FuzzParse(f *testing.F) {
	s := newSealer(f)
	dek, _, _ := s.NewDEK(context.Background(), "p", "")
	sealed, _ := s.Seal(context.Background(), "p", dek, []byte("aad"), []byte("value"))
	f.Add(sealed)
	f.Add([]byte{1})
	f.Add([]byte{1, 200, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, nonce, ct, err := Parse(b)
		if err != nil {
			return
		}
		if len(nonce) != nonceSize || len(ct) < 16 || 2+len(id)+len(nonce)+len(ct) != len(b) {
			t.Fatalf("parse of %d bytes gave id %d nonce %d ct %d", len(b), len(id), len(nonce), len(ct))
		}
		// Arbitrary input never opens.
		if _, err := s.Open(context.Background(), "p", dek, []byte("aad"), b); err == nil && !bytes.Equal(b, sealed) {
			t.Fatal("forged value opened")
		}
	})
}
