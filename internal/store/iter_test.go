package store

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/seal"
)

func TestAll(t *testing.T) {
	root, _ := keys.NewLocal(bytes.Repeat([]byte{4}, keys.RootKeySize))
	db, err := Open(filepath.Join(t.TempDir(), "c.db"), seal.New(root, 8), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	db.CreateProject(ctx, core.Project{ID: "p", Name: "p", Status: core.ProjectActive}, func() string { return "s" })
	for i := range 250 { // three pages
		db.Create(ctx, core.Ref{Project: "p", Kind: "thing", Name: fmt.Sprintf("t-%03d", i)}, []byte(fmt.Sprintf(`{"n":%d}`, i)), 0)
	}
	n := 0
	for d, err := range All[struct{ N int }](ctx, db, "p", "thing") {
		if err != nil {
			t.Fatal(err)
		}
		if d.Value.N != n || d.Record.Name != fmt.Sprintf("t-%03d", n) {
			t.Fatalf("record %d: %+v", n, d)
		}
		n++
	}
	if n != 250 {
		t.Errorf("%d records, want 250", n)
	}
	for range All[struct{}](ctx, db, "no-such-project", "thing") {
		t.Error("a project that does not exist has records")
	}
	db.Create(ctx, core.Ref{Project: "p", Kind: "bad", Name: "x"}, []byte(`[`), 0)
	var last error
	for _, err := range All[struct{}](ctx, db, "p", "bad") {
		last = err
	}
	if last == nil {
		t.Error("a record that does not decode: no error")
	}
	// A caller may stop early.
	for range All[struct{ N int }](ctx, db, "p", "thing") {
		break
	}
}
