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
	if _, err := LoadOrCreateLocal(path, filepath.Join(dir, "archive"), false); err == nil {
		t.Error("a missing key file given by the operator was accepted")
	}
	a, err := LoadOrCreateLocal(path, filepath.Join(dir, "archive"), true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 || fi.Size() != RootKeySize {
		t.Errorf("key file: mode %v size %d", fi.Mode(), fi.Size())
	}
	b, err := LoadOrCreateLocal(path, filepath.Join(dir, "archive"), true)
	if err != nil || keyID(a) != keyID(b) {
		t.Fatalf("reload: %v, ids %s %s", err, keyID(a), keyID(b))
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
	if strings.Contains(keyID(a), string(key)) {
		t.Error("key id reveals the key")
	}
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("short"), 0o600)
	if _, err := LoadOrCreateLocal(short, filepath.Join(dir, "archive"), false); err == nil || !strings.Contains(err.Error(), "32") {
		t.Errorf("short key: %v", err)
	}
}

// TestLoadRefusesAKeyOthersMayRead: a root key readable by group or others
// is refused, for the key file and for archived versions alike.
func TestLoadRefusesAKeyOthersMayRead(t *testing.T) {
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o602} {
		dir := t.TempDir()
		path := filepath.Join(dir, "root.key")
		os.WriteFile(path, bytes.Repeat([]byte{7}, RootKeySize), 0o600)
		os.Chmod(path, mode)
		if _, err := LoadOrCreateLocal(path, filepath.Join(dir, "archive"), false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: got %v, want a refusal", mode, err)
		}
		os.Chmod(path, 0o600)
		archive := filepath.Join(dir, "archive")
		os.MkdirAll(archive, 0o700)
		old := filepath.Join(archive, "local-0.key")
		os.WriteFile(old, bytes.Repeat([]byte{8}, RootKeySize), 0o600)
		os.Chmod(old, mode)
		if _, err := LoadOrCreateLocal(path, archive, false); err == nil {
			t.Errorf("archived version of mode %04o was accepted", mode)
		}
	}
}

func keyID(l *Local) string {
	id, _ := l.KeyID(context.Background())
	return id
}

func TestRotateKeepsOldVersionsForUnwrap(t *testing.T) {
	dir := t.TempDir()
	path, archive := filepath.Join(dir, "root.key"), filepath.Join(dir, "archive")
	l, err := LoadOrCreateLocal(path, archive, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dek := []byte("0123456789abcdef0123456789abcdef")
	oldID, wrapped, _ := l.Wrap(ctx, dek, []byte("p"))
	newID, err := l.Rotate()
	if err != nil || newID == oldID || keyID(l) != newID {
		t.Fatalf("rotate: %q %v (old %q)", newID, err, oldID)
	}
	if id, _, _ := l.Wrap(ctx, dek, []byte("p")); id != newID {
		t.Errorf("wrap after rotation used %s", id)
	}
	// After a restart both versions are there.
	again, err := LoadOrCreateLocal(path, archive, false)
	if err != nil || keyID(again) != newID {
		t.Fatalf("reload: %v %s", err, keyID(again))
	}
	if got, err := again.Unwrap(ctx, oldID, wrapped, []byte("p")); err != nil || !bytes.Equal(got, dek) {
		t.Errorf("unwrap with the archived version: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(archive, oldID+".key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("archived version: %v", err)
	}
	if _, err := again.Unwrap(ctx, "local-0000000000000000", wrapped, []byte("p")); err == nil {
		t.Error("an unknown version unwrapped")
	}
	// Retire keeps what is in use and the current version.
	if retired, err := again.Retire(map[string]bool{oldID: true}); err != nil || len(retired) != 0 {
		t.Errorf("retired %v %v while in use", retired, err)
	}
	if retired, err := again.Retire(nil); err != nil || len(retired) != 1 || retired[0] != oldID {
		t.Errorf("retire unused: %v %v", retired, err)
	}
	if _, err := os.Stat(filepath.Join(archive, oldID+".key")); !os.IsNotExist(err) {
		t.Errorf("retired version still on disk: %v", err)
	}
	if _, err := again.Unwrap(ctx, oldID, wrapped, []byte("p")); err == nil {
		t.Error("a retired version still unwraps")
	}
	if keyID(again) != newID {
		t.Error("retire touched the current version")
	}
}
