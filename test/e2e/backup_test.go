package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coligo/coligo/api"
)

// TestBackupAndRestore: 'coligo admin backup' taken while writes go on
// holds every write acknowledged before it began; a fresh data dir with the
// same root key and 'coligo server --restore' serves them. Only an admin
// may take one, and it is audited.
func TestBackupAndRestore(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "kept")
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: fmt.Sprintf("s-%04d", i), Format: "generic",
				Data: map[string]string{"v": fmt.Sprintf("value-%d", i)}}); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(i + 1))
			if i == 95 {
				return // within the quota of 100 secrets
			}
		}
	})
	for acked.Load() < 20 {
	}
	before := acked.Load()
	file := filepath.Join(t.TempDir(), "backup.db")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	r := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "admin", "backup", "-o", file)
	close(stop)
	wg.Wait()
	if r.code != 0 {
		t.Fatalf("coligo admin backup: exit %d: %s", r.code, r.stderr)
	}
	// Only an admin: a project's manager may not.
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "manager", Role: "manager", ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + tok.Token}, "admin", "backup", "-o", file+".2"); r.code == 0 || !strings.Contains(r.stderr, "admin") {
		t.Errorf("a manager's backup: exit %d: %s", r.code, r.stderr)
	}
	if _, err := os.Stat(file + ".2"); err == nil {
		t.Error("a refused backup left a file")
	}
	events, err := c.AllAuditEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	backups := 0
	for _, ev := range events {
		if ev.Action == "store.backup" {
			backups++
		}
	}
	if backups != 1 {
		t.Errorf("%d audit events of a backup, want 1", backups)
	}

	// A new data dir with the same keys, and the backup.
	fresh := &server{t: t, dataDir: filepath.Join(t.TempDir(), "data"), addr: freeAddr(t), router: freeAddr(t), engine: "local",
		args: []string{"--restore", file}}
	os.MkdirAll(fresh.dataDir, 0o700)
	for _, f := range []string{"root.key", "audit.key"} {
		b, err := os.ReadFile(filepath.Join(s.dataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(fresh.dataDir, f), b, 0o600)
	}
	s.stop()
	fresh.start()
	t.Cleanup(func() {
		fresh.purgeProjects()
		fresh.stop()
		fresh.checkRaces()
		if t.Failed() {
			t.Logf("restored server log:\n%s", fresh.allLogs())
		}
	})
	rc := fresh.client(s.admin) // the admin token is in the backup
	for i := range before {
		sec, err := rc.GetSecret(ctx, p.ID, fmt.Sprintf("s-%04d", i))
		if err != nil || sec.Data["v"] != fmt.Sprintf("value-%d", i) {
			t.Fatalf("secret %d, acknowledged before the backup began, after the restore: %+v %v", i, sec, err)
		}
	}
	if v, err := rc.VerifyAuditEvents(ctx); err != nil || !v.Valid {
		t.Errorf("the restored audit log: %+v %v", v, err)
	}
}
