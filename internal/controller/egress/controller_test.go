package egress

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store/storetest"
)

// fence records what it was told, per project.
type fence struct {
	mu  sync.Mutex
	got map[string][]netip.Prefix
}

func (f *fence) SetEgress(_ context.Context, project string, allowed []netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[project] = slices.Clone(allowed)
	return nil
}

func (f *fence) of(project string) ([]netip.Prefix, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.got[project]
	return p, ok
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestController runs the controller against a real store: a project's
// destinations reach the fence at start and on every change, each is marked
// ready once applied, and with none left the fence gets an empty list (no
// egress), not nothing.
func TestController(t *testing.T) {
	db := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := db.CreateProject(ctx, core.Project{ID: "p1", Name: "p1", Status: core.ProjectActive}, func() string { return "s1" })
	if err != nil {
		t.Fatal(err)
	}
	put := func(name, cidr string) {
		b, _ := json.Marshal(core.Egress{Name: name, Type: core.EgressCIDR, CIDRBlock: cidr, Status: core.EgressDeploying})
		if _, err := db.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindEgress, Name: name}, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	put(core.AllowAll, "0.0.0.0/0")
	f := &fence{got: map[string][]netip.Prefix{}}
	done := make(chan struct{})
	go func() {
		New(Config{Store: db, Fence: f, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Resync: time.Hour}).Run(ctx)
		close(done)
	}()
	is := func(want ...string) func() bool {
		return func() bool {
			got, ok := f.of(p.ID)
			if !ok || len(got) != len(want) {
				return false
			}
			for _, w := range want {
				if !slices.Contains(got, netip.MustParsePrefix(w)) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "allow-all at start", is("0.0.0.0/0"))
	put("lan", "10.250.0.0/24")
	waitFor(t, "the LAN rule", is("0.0.0.0/0", "10.250.0.0/24"))
	waitFor(t, "both ready", func() bool {
		recs, _, _ := db.List(ctx, p.ID, core.KindEgress, "", 10)
		for _, r := range recs {
			var e core.Egress
			json.Unmarshal(r.Value, &e)
			if e.Status != core.EgressReady {
				return false
			}
		}
		return len(recs) == 2
	})
	for _, name := range []string{"lan", core.AllowAll} {
		if err := db.Delete(ctx, core.Ref{Project: p.ID, Kind: core.KindEgress, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "no egress at all", is())
	cancel()
	<-done
}

func TestAllowed(t *testing.T) {
	got := Allowed([]core.Egress{{CIDRBlock: "0.0.0.0/0"}, {CIDRBlock: "bad"}, {CIDRBlock: "10.0.0.0/8"}})
	if len(got) != 2 || got[0].String() != "0.0.0.0/0" || got[1].String() != "10.0.0.0/8" {
		t.Errorf("Allowed = %v", got)
	}
	if got := Allowed(nil); got == nil || len(got) != 0 {
		t.Errorf("no destinations must be an empty list (no egress), got %#v", got)
	}
}
