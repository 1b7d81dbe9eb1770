package storetest

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
	"github.com/coligo/coligo/internal/store"
)

// Open returns a new, empty store.
func Open(t testing.TB) *store.DB {
	t.Helper()
	root, err := keys.NewLocal(bytes.Repeat([]byte{7}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "coligo.db"), seal.New(root, 8), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
