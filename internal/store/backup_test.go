package store

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
)

// TestBackupDuringWrites: a backup taken while writes go on holds every
// write acknowledged before it began, and restored into a new data dir
// with the same root key, serves them.
func TestBackupDuringWrites(t *testing.T) {
	root, _ := keys.NewLocal(bytes.Repeat([]byte{9}, keys.RootKeySize))
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "coligo.db"), seal.New(root, 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.CreateProject(ctx, core.Project{ID: "p", Name: "p", Status: core.ProjectActive}, func() string { return "s" }); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64 // writes 0..acked-1 are acknowledged
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Create(ctx, core.Ref{Project: "p", Kind: "config_map", Name: fmt.Sprintf("cm-%06d", i)}, []byte(fmt.Sprintf(`{"i":%d}`, i)), 0); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
		}
	})
	for acked.Load() < 50 {
	}
	before := acked.Load()
	var buf bytes.Buffer
	var size int64
	n, err := db.Backup(ctx, &buf, func(s int64) { size = s })
	close(stop)
	wg.Wait()
	if err != nil || n != size || int64(buf.Len()) != n {
		t.Fatalf("backup: %d bytes of %d announced, %d written: %v", n, size, buf.Len(), err)
	}
	db.Close()

	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "coligo.db")
	if err := Restore(backup, fresh); err != nil {
		t.Fatal(err)
	}
	if err := Restore(backup, fresh); err == nil || !strings.Contains(err.Error(), "move it away first") {
		t.Errorf("a restore over a store: %v", err)
	}
	db2, err := Open(fresh, seal.New(root, 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for i := range before {
		rec, err := db2.Get(ctx, core.Ref{Project: "p", Kind: "config_map", Name: fmt.Sprintf("cm-%06d", i)})
		if err != nil || string(rec.Value) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Fatalf("write %d, acknowledged before the backup began, after the restore: %q %v", i, rec.Value, err)
		}
	}
}

func TestRestoreRefusesWhatIsNotAStore(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, bytes.Repeat([]byte("x"), 8192), 0o600)
	if err := Restore(junk, filepath.Join(dir, "coligo.db")); err == nil || !strings.Contains(err.Error(), "is not a coligo store") {
		t.Errorf("restore of a file that is not a store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "coligo.db")); err == nil {
		t.Error("a failed restore left a store file")
	}
}
