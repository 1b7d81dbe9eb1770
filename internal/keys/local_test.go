package keys

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateLocal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "root.key")
	if _, err := LoadOrCreateLocal(path, false); err == nil {
		t.Error("a missing key file given by the operator was accepted")
	}
	a, err := LoadOrCreateLocal(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 || fi.Size() != RootKeySize {
		t.Errorf("key file: mode %v size %d", fi.Mode(), fi.Size())
	}
	b, err := LoadOrCreateLocal(path, true)
	if err != nil || a.KeyID() != b.KeyID() {
		t.Fatalf("reload: %v, ids %s %s", err, a.KeyID(), b.KeyID())
	}
	ctx := context.Background()
	id, wrapped, err := a.Wrap(ctx, []byte("0123456789abcdef0123456789abcdef"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if dek, err := b.Unwrap(ctx, id, wrapped, []byte("aad")); err != nil || !bytes.Equal(dek, []byte("0123456789abcdef0123456789abcdef")) {
		t.Errorf("unwrap: %v", err)
	}
	if _, err := b.Unwrap(ctx, id, wrapped, []byte("other")); err == nil {
		t.Error("unwrap with other aad worked")
	}
	key, _ := os.ReadFile(path)
	if strings.Contains(a.KeyID(), string(key)) {
		t.Error("key id reveals the key")
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := LoadOrCreateLocal(short, false); err == nil || !strings.Contains(err.Error(), "32") {
		t.Errorf("short key: %v", err)
	}
}
