package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
)

var auditKey = bytes.Repeat([]byte{9}, 32)

// openAudited opens a store at path with a fixed audit key, as the server
// does with its key file.
func openAudited(t *testing.T, path string, key []byte) *DB {
	t.Helper()
	root, err := keys.NewLocal(bytes.Repeat([]byte{1}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, seal.New(root, 64), Options{AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func appendN(t *testing.T, db *DB, project string, n int, at time.Time) {
	t.Helper()
	for i := range n {
		ev := core.AuditEvent{Time: at.Add(time.Duration(i) * time.Second), Actor: "tok", Action: "secret.create", Kind: "secret",
			Outcome: core.AuditSuccess, StatusCode: 201, ProjectID: project}
		if err := db.AppendAudit(context.Background(), ev, "name-"+string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifyAudit: the server-side verification holds for an intact log and
// fails for every way of changing it without the audit key, each checked on
// the file with the store closed, as an attacker with the disk would.
func TestVerifyAudit(t *testing.T) {
	tamper := []struct {
		name    string
		key     []byte // the key the store is opened with afterwards
		change  func(tx *bolt.Tx) error
		problem string
	}{
		{"intact", auditKey, func(*bolt.Tx) error { return nil }, ""},
		{"a byte of an entry altered", auditKey, func(tx *bolt.Tx) error {
			b := tx.Bucket(bktAudit)
			k := binary.BigEndian.AppendUint64(nil, 3)
			return b.Put(k, bytes.Replace(b.Get(k), []byte(`"status_code":201`), []byte(`"status_code":401`), 1))
		}, "entry 3 was altered"},
		{"last entry cut off", auditKey, func(tx *bolt.Tx) error {
			return tx.Bucket(bktAudit).Delete(binary.BigEndian.AppendUint64(nil, 5))
		}, "cut off"},
		{"every entry removed", auditKey, func(tx *bolt.Tx) error {
			for i := uint64(1); i <= 5; i++ {
				tx.Bucket(bktAudit).Delete(binary.BigEndian.AppendUint64(nil, i))
			}
			return nil
		}, "cut off"},
		{"first entry removed", auditKey, func(tx *bolt.Tx) error {
			return tx.Bucket(bktAudit).Delete(binary.BigEndian.AppendUint64(nil, 1))
		}, "missing"},
		{"chain and head rewritten without the key", auditKey, func(tx *bolt.Tx) error {
			b := tx.Bucket(bktAudit)
			prev := ""
			for i := uint64(1); i <= 5; i++ {
				k := binary.BigEndian.AppendUint64(nil, i)
				var e core.AuditEvent
				json.Unmarshal(b.Get(k), &e)
				e.Actor, e.PrevHash = "someone-else", prev
				e.Hash = e.ChainHash()
				prev = e.Hash
				v, _ := json.Marshal(e)
				b.Put(k, v)
			}
			var head anchor
			json.Unmarshal(tx.Bucket(bktMeta).Get(keyAuditHead), &head)
			head.Hash = prev
			v, _ := json.Marshal(head)
			return tx.Bucket(bktMeta).Put(keyAuditHead, v)
		}, "not written with the audit key"},
		{"opened with another audit key", bytes.Repeat([]byte{8}, 32), func(*bolt.Tx) error { return nil }, "not written with the audit key"},
	}
	for _, tt := range tamper {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "coligo.db")
			db := openAudited(t, path, auditKey)
			p := newProject(t, db, "p")
			appendN(t, db, p.ID, 5, time.Now())
			db.Close()
			b, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Update(tt.change); err != nil {
				t.Fatal(err)
			}
			b.Close()
			db = openAudited(t, path, tt.key)
			defer db.Close()
			rep, err := db.VerifyAudit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.problem == "" {
				if !rep.Valid || rep.Entries != 5 || rep.First != 1 || rep.Last != 5 {
					t.Errorf("intact log: %+v", rep)
				}
				return
			}
			if rep.Valid || !strings.Contains(rep.Problem, tt.problem) {
				t.Errorf("got %+v, want invalid: %q", rep, tt.problem)
			}
		})
	}
}

// TestPruneAudit: a prune removes what is older than its cutoff, records
// itself as an event, and the shortened chain still verifies from its MACed
// start; a prune that finds nothing to remove records nothing.
func TestPruneAudit(t *testing.T) {
	db := openAudited(t, filepath.Join(t.TempDir(), "coligo.db"), auditKey)
	defer db.Close()
	ctx := context.Background()
	p := newProject(t, db, "p")
	old := time.Now().Add(-48 * time.Hour)
	appendN(t, db, p.ID, 4, old)
	appendN(t, db, p.ID, 2, time.Now())
	n, err := db.PruneAudit(ctx, time.Now().Add(-24*time.Hour), "system")
	if err != nil || n != 4 {
		t.Fatalf("prune: %d %v, want 4", n, err)
	}
	evs, _, _ := db.ListAudit(ctx, "", 0, 0)
	if len(evs) != 3 || evs[0].Seq != 5 || evs[2].Action != core.AuditPrune || evs[2].Target != "through 4" {
		t.Fatalf("after the prune: %+v", evs)
	}
	rep, err := db.VerifyAudit(ctx)
	if err != nil || !rep.Valid || rep.PrunedThrough != 4 || rep.First != 5 || rep.Last != 7 {
		t.Fatalf("verify after the prune: %+v %v", rep, err)
	}
	if n, err := db.PruneAudit(ctx, time.Now().Add(-24*time.Hour), "system"); n != 0 || err != nil {
		t.Errorf("a second prune: %d %v", n, err)
	}
	appendN(t, db, p.ID, 1, time.Now())
	if rep, _ := db.VerifyAudit(ctx); !rep.Valid || rep.Last != 8 {
		t.Errorf("after another event: %+v", rep)
	}
}

// TestAuditNamesSurviveKeyRotation guards a bug: a DEK rotation once left
// the sealed names of earlier events unreadable. It also checks that the
// name is kept only under a keyed hash, which another key does not give.
func TestAuditNamesSurviveKeyRotation(t *testing.T) {
	db := openAudited(t, filepath.Join(t.TempDir(), "coligo.db"), auditKey)
	defer db.Close()
	ctx := context.Background()
	p := newProject(t, db, "p")
	appendN(t, db, p.ID, 3, time.Now())
	if _, err := db.BeginDEKRotation(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ResealProject(ctx, p.ID, 2, nil); err != nil {
		t.Fatal(err)
	}
	evs, _, _ := db.ListAudit(ctx, p.ID, 0, 0)
	for i, e := range evs {
		name, err := db.AuditTarget(ctx, e)
		if want := "name-" + string(rune('a'+i)); err != nil || name != want {
			t.Errorf("event %d after the rotation: %q %v, want %q", e.Seq, name, err, want)
		}
		if e.TargetHash != db.audit.targetHash(p.ID, "secret", "name-"+string(rune('a'+i))) ||
			e.TargetHash == newAuditKeys(bytes.Repeat([]byte{8}, 32)).targetHash(p.ID, "secret", "name-"+string(rune('a'+i))) {
			t.Errorf("event %d: the target hash is not keyed by the audit key", e.Seq)
		}
	}
	if rep, _ := db.VerifyAudit(ctx); !rep.Valid {
		t.Errorf("the chain after resealing its names: %+v", rep)
	}
}
