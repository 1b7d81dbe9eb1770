package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
)

func openTest(t testing.TB) (*DB, string) {
	t.Helper()
	root, err := keys.NewLocal(bytes.Repeat([]byte{1}, keys.RootKeySize))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "coligo.db")
	db, err := Open(path, seal.New(root, 64), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

var counter int

func newProject(t testing.TB, db *DB, name string) core.Project {
	t.Helper()
	counter++
	p := core.Project{ID: fmt.Sprintf("00000000-0000-0000-0000-%012d", counter), Name: name, Status: core.ProjectActive, CreatedAt: time.Now()}
	p, err := db.CreateProject(context.Background(), p, func() string { return fmt.Sprintf("sub%08d", counter) })
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRecords(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	p := newProject(t, db, "p")
	ref := func(n string) core.Ref { return core.Ref{Project: p.ID, Kind: core.KindSecret, Name: n} }

	r1, err := db.Create(ctx, ref("b"), []byte("one"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Create(ctx, ref("b"), []byte("dup"), 0); !errors.Is(err, core.ErrExists) {
		t.Errorf("duplicate create: %v", err)
	}
	for _, n := range []string{"a", "c", "d"} {
		if _, err := db.Create(ctx, ref(n), []byte(n), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Create(ctx, ref("e"), nil, 4); !errors.Is(err, core.ErrQuota) {
		t.Errorf("create over limit 4: %v", err)
	}
	got, err := db.Get(ctx, ref("b"))
	if err != nil || string(got.Value) != "one" || got.Version != r1.Version {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := db.Replace(ctx, ref("b"), []byte("two"), r1.Version+100); !errors.Is(err, core.ErrConflict) {
		t.Errorf("replace with stale version: %v", err)
	}
	r2, err := db.Replace(ctx, ref("b"), []byte("two"), r1.Version)
	if err != nil || r2.Version <= r1.Version {
		t.Fatalf("replace: %+v %v", r2, err)
	}
	if _, err := db.Replace(ctx, ref("zz"), []byte("x"), 0); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("replace missing: %v", err)
	}

	var names []string
	after := ""
	for {
		recs, more, err := db.List(ctx, p.ID, core.KindSecret, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			names = append(names, r.Name+"="+string(r.Value))
			after = r.Name
		}
		if !more {
			break
		}
	}
	if diff := cmp.Diff([]string{"a=a", "b=two", "c=c", "d=d"}, names); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if err := db.Delete(ctx, ref("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Get(ctx, ref("a")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
	if err := db.Delete(ctx, ref("a")); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
	if _, err := db.Get(ctx, core.Ref{Project: "nope", Kind: core.KindSecret, Name: "a"}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("get in missing project: %v", err)
	}
}

func TestWritesRefusedUnlessUsable(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	p := newProject(t, db, "p")
	ref := core.Ref{Project: p.ID, Kind: core.KindConfigMap, Name: "c"}
	if _, err := db.Create(ctx, ref, []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateProject(ctx, p.ID, 0, func(p *core.Project) error { p.Status = core.ProjectSoftDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindConfigMap, Name: "d"}, []byte("v"), 0); !errors.Is(err, core.ErrNotActive) {
		t.Errorf("create in soft-deleted project: %v", err)
	}
	if _, err := db.Replace(ctx, ref, []byte("w"), 0); !errors.Is(err, core.ErrNotActive) {
		t.Errorf("replace in soft-deleted project: %v", err)
	}
	if err := db.Delete(ctx, ref); !errors.Is(err, core.ErrNotActive) {
		t.Errorf("delete in soft-deleted project: %v", err)
	}
	if err := db.PutToken(ctx, core.Token{ID: "t", ProjectID: p.ID, Role: core.RoleReader, Hash: []byte("h")}); !errors.Is(err, core.ErrNotActive) {
		t.Errorf("token for soft-deleted project: %v", err)
	}
}

func TestProjectNamesAndSubdomains(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	a := newProject(t, db, "same")
	if _, err := db.CreateProject(ctx, core.Project{ID: "x", Name: "same"}, func() string { return "zzz" }); !errors.Is(err, core.ErrExists) {
		t.Errorf("duplicate name: %v", err)
	}
	// A taken subdomain is replaced by a generated one.
	b, err := db.CreateProject(ctx, core.Project{ID: "y", Name: "other", Subdomain: a.Subdomain}, func() string { return "generated1" })
	if err != nil || b.Subdomain != "generated1" {
		t.Errorf("subdomain clash: %+v %v", b, err)
	}
}

// TestCreateUnique: a domain one project holds is refused to every other,
// soft-deleted or not, until the holder's record goes.
func TestCreateUnique(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	a, b := newProject(t, db, "a"), newProject(t, db, "b")
	ref := func(p core.Project) core.Ref {
		return core.Ref{Project: p.ID, Kind: core.KindDomainMapping, Name: "www.example.com"}
	}
	if _, err := db.CreateUnique(ctx, ref(a), []byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUnique(ctx, ref(b), []byte("b"), 0); !errors.Is(err, core.ErrExists) {
		t.Fatalf("second project's claim: %v", err)
	}
	if _, err := db.CreateUnique(ctx, ref(a), []byte("a"), 0); !errors.Is(err, core.ErrExists) {
		t.Fatalf("same project's second claim: %v", err)
	}
	// Another kind of the same name is not a claim.
	if _, err := db.CreateUnique(ctx, core.Ref{Project: b.ID, Kind: core.KindSecret, Name: "www.example.com"}, []byte("s"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateProject(ctx, a.ID, 0, func(p *core.Project) error { p.Status = core.ProjectSoftDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUnique(ctx, ref(b), []byte("b"), 0); !errors.Is(err, core.ErrExists) {
		t.Fatalf("claim of a soft-deleted project's domain: %v", err)
	}
	if _, err := db.UpdateProject(ctx, a.ID, 0, func(p *core.Project) error { p.Status = core.ProjectActive; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(ctx, ref(a)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateUnique(ctx, ref(b), []byte("b"), 0); err != nil {
		t.Fatalf("claim after the holder let go: %v", err)
	}
}

// TestHardDeleteLeavesNothing checks the crypto-shred at the store level:
// after DestroyDEK the records cannot be read; after PurgeProject and
// Compact the file holds neither the wrapped DEK nor the sealed records.
func TestHardDeleteLeavesNothing(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	p := newProject(t, db, "doomed")
	keep := newProject(t, db, "kept")
	ref := core.Ref{Project: p.ID, Kind: core.KindSecret, Name: "s"}
	if _, err := db.Create(ctx, ref, bytes.Repeat([]byte("plaintext-marker "), 100), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Create(ctx, core.Ref{Project: keep.ID, Kind: core.KindSecret, Name: "s"}, []byte("kept"), 0); err != nil {
		t.Fatal(err)
	}
	if err := db.PutToken(ctx, core.Token{ID: "tok", ProjectID: p.ID, Role: core.RoleReader, Hash: []byte("hash-of-doomed")}); err != nil {
		t.Fatal(err)
	}
	var wrapped, sealed []byte
	db.view("test", func(tx *boltTx) error {
		wrapped = bytes.Clone(tx.Bucket(bktDEKs).Get([]byte(p.ID)))
		sealed = bytes.Clone(tx.Bucket(bktData).Bucket([]byte(p.ID)).Bucket([]byte(core.KindSecret)).Get([]byte("s")))
		return nil
	})
	if err := db.PurgeProject(ctx, p.ID); err == nil {
		t.Fatal("purge before the DEK is destroyed was allowed")
	}
	for range 2 { // idempotent
		if err := db.DestroyDEK(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Get(ctx, ref); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("read after the DEK was destroyed: %v", err)
	}
	for range 2 {
		if err := db.PurgeProject(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	if pending, _ := db.CompactPending(ctx); !pending {
		t.Error("no compaction pending after a purge")
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if pending, _ := db.CompactPending(ctx); pending {
		t.Error("compaction still pending after Compact")
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, needle := range map[string][]byte{"wrapped dek": wrapped, "sealed record": sealed[8:], "token hash": []byte("hash-of-doomed"), "project name": []byte("doomed")} {
		if bytes.Contains(file, needle) {
			t.Errorf("the store file still holds the %s", name)
		}
	}
	if _, err := db.GetProject(ctx, p.ID); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("project after purge: %v", err)
	}
	got, err := db.Get(ctx, core.Ref{Project: keep.ID, Kind: core.KindSecret, Name: "s"})
	if err != nil || string(got.Value) != "kept" {
		t.Errorf("other project after compaction: %v", err)
	}
}

func TestWatch(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	events, stop := db.Watch()
	defer stop()
	p := newProject(t, db, "w")
	ref := core.Ref{Project: p.ID, Kind: core.KindSecret, Name: "s"}
	db.Create(ctx, ref, []byte("v"), 0)
	db.Delete(ctx, ref)
	want := []Event{
		{Kind: core.KindProject, Project: p.ID, Name: p.ID, Op: OpPut},
		{Kind: core.KindSecret, Project: p.ID, Name: "s", Op: OpPut},
		{Kind: core.KindSecret, Project: p.ID, Name: "s", Op: OpDelete},
	}
	for i, w := range want {
		select {
		case e := <-events:
			if e != w {
				t.Errorf("event %d: got %+v, want %+v", i, e, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive", i)
		}
	}
}

func TestWatchOverflowSendsResync(t *testing.T) {
	h := newHub()
	db := &DB{watch: h}
	events, stop := db.Watch()
	defer stop()
	for i := range 300 { // more than the buffer of 256
		h.publish(Event{Kind: "x", Name: fmt.Sprint(i), Op: OpPut})
	}
	for range 256 {
		<-events
	}
	h.publish(Event{Kind: "x", Name: "late", Op: OpPut})
	if e := <-events; e.Op != OpResync {
		t.Errorf("after an overflow: got %+v, want a resync", e)
	}
	if e := <-events; e.Name != "late" {
		t.Errorf("after the resync: got %+v", e)
	}
}

func TestConcurrentCreatesAreAllKept(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	p := newProject(t, db, "c")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if _, err := db.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: fmt.Sprintf("w%d-%d", w, i)}, []byte("v"), 0); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	db.Close()
	root, _ := keys.NewLocal(bytes.Repeat([]byte{1}, keys.RootKeySize))
	db2, err := Open(path, seal.New(root, 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	recs, _, err := db2.List(ctx, p.ID, core.KindSecret, "", 0)
	if err != nil || len(recs) != 200 {
		t.Fatalf("after reopen: %d records, %v", len(recs), err)
	}
}

func TestClosedStoreIsUnavailable(t *testing.T) {
	db, _ := openTest(t)
	db.Close()
	if _, err := db.ListProjects(context.Background()); !errors.Is(err, core.ErrUnavailable) {
		t.Errorf("list on a closed store: %v", err)
	}
}
