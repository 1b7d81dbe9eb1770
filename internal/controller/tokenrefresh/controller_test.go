package tokenrefresh

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
	"github.com/coligo/coligo/internal/store/storetest"
)

// TestRefresh runs against the fake engine and real bbolt: a labelled
// instance's token file gets a fresh token of its subject that the
// project's key checks, later than the one it had; an instance without
// the label and one of a soft-deleted project are left alone.
func TestRefresh(t *testing.T) {
	db := storetest.Open(t)
	ctx := context.Background()
	for _, id := range []string{"p1", "p2"} {
		if _, err := db.CreateProject(ctx, core.Project{ID: id, Name: id, Status: core.ProjectActive}, func() string { return "s" + id }); err != nil {
			t.Fatal(err)
		}
	}
	eng := fake.New()
	img := eng.AddImage("registry.test/app:1", nil)
	keys := computetoken.NewKeys(db)
	start := time.Now()
	run := func(project, id, subject string) {
		t.Helper()
		spec := engine.Spec{ID: id, Project: project, Image: img, Command: []string{"sleep", "1000"},
			Mounts: []engine.Mount{{Dir: computetoken.Dir, Files: map[string][]byte{computetoken.File: []byte("old")}}}}
		if subject != "" {
			spec.Labels = map[string]string{computetoken.Label: subject}
		}
		if _, err := eng.Run(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	run("p1", "web-1", "app/web")
	run("p1", "plain", "")
	run("p2", "gone-1", "app/gone")
	if _, err := db.UpdateProject(ctx, "p2", 0, func(p *core.Project) error { p.Status = core.ProjectSoftDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	now := start.Add(10 * time.Minute)
	c := New(Config{Store: db, Engine: eng, Tokens: keys, Life: time.Hour, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if n := c.Refresh(ctx); n != 1 {
		t.Fatalf("renewed %d, want 1", n)
	}
	b, _ := eng.File("p1", "web-1", computetoken.Dir, computetoken.File)
	claims, err := keys.Check(ctx, string(b), now)
	if err != nil || claims.Subject != "app/web" || claims.Project != "p1" || !claims.Expires.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("the renewed token: %+v %v", claims, err)
	}
	for _, in := range []struct{ p, id string }{{"p1", "plain"}, {"p2", "gone-1"}} {
		if b, _ := eng.File(in.p, in.id, computetoken.Dir, computetoken.File); string(b) != "old" {
			t.Errorf("%s/%s was renewed", in.p, in.id)
		}
	}
}
