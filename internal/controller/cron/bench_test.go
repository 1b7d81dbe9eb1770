package cron

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store/storetest"
)

// BenchmarkTick fires 1,000 subscriptions across 20 projects on the same
// tick (a real store, the real router, one app instance per project on
// loopback) and reports the delay from the tick to each event's arrival:
// p50 and p99, and p99 over the baseline's, 1,000 POSTs of the same events
// sent at once through the same router without the controller.
//
//	go test -run XXX -bench Tick -benchtime 3x ./internal/controller/cron
func BenchmarkTick(b *testing.B) {
	const projects, perProject = 20, 50
	db := storetest.Open(b)
	ctx := context.Background()
	rt := router.New(router.Config{Logger: slog.New(slog.DiscardHandler), QueueDepth: 2000})
	var mu sync.Mutex
	arrived := map[string]time.Time{} // ce-id → arrival
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		mu.Lock()
		arrived[r.Header.Get("Ce-Id")] = now
		mu.Unlock()
	}))
	defer backend.Close()
	routes := map[string]router.Route{}
	var ps []core.Project
	for i := range projects {
		id := fmt.Sprintf("p%02d", i)
		p, err := db.CreateProject(ctx, core.Project{ID: id, Name: id, Status: core.ProjectActive}, func() string { return "s" + id })
		if err != nil {
			b.Fatal(err)
		}
		ps = append(ps, p)
		key := id + "/web-00001"
		rt.SetRevision(key, router.RevisionConfig{Concurrency: 1000, Timeout: time.Minute}, []router.Endpoint{{ID: id, Addr: strings.TrimPrefix(backend.URL, "http://")}})
		routes["web."+p.Subdomain+".svc"] = router.Route{Revision: key, Project: id}
		app, _ := json.Marshal(core.App{Name: "web"})
		db.Create(ctx, core.Ref{Project: id, Kind: core.KindApp, Name: "web"}, app, 0)
		for j := range perProject {
			s, _ := json.Marshal(core.CronSubscription{ID: fmt.Sprint(j), Name: fmt.Sprintf("s%02d", j), DestinationType: core.DestinationApp,
				Destination: "web", Schedule: "*/3 * * * * *", TimeZone: "UTC", Data: "{}", CreatedAt: time.Now()})
			if _, err := db.Create(ctx, core.Ref{Project: id, Kind: core.KindCronSubscription, Name: fmt.Sprintf("s%02d", j)}, s, 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	rt.SetRoutes(routes)
	c := New(Config{Store: db, Router: rt, Logger: slog.New(slog.DiscardHandler), Seconds: true, Resync: time.Hour})

	// The baseline: the same number of events POSTed at once through the
	// router, without deciding or recording anything.
	base := func() []time.Duration {
		mu.Lock()
		clear(arrived)
		mu.Unlock()
		start := time.Now()
		var wg sync.WaitGroup
		for i := range projects * perProject {
			p := ps[i%projects]
			cs := core.CronSubscription{Name: "base", Data: "{}"}
			wg.Go(func() {
				c.post(ctx, p.ID, "web."+p.Subdomain+".svc", cs, map[string]string{"id": fmt.Sprint("base-", i)})
			})
		}
		wg.Wait()
		return delays(&mu, arrived, func(string) time.Time { return start })
	}
	baseline := base()

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	mu.Lock()
	clear(arrived)
	mu.Unlock()
	go func() { c.Run(cctx); close(done) }()
	ticks := map[string]time.Time{}
	var all []time.Duration
	b.ResetTimer()
	for range b.N {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		deadline := time.Now().Add(20 * time.Second)
		for ; ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			got := len(arrived)
			mu.Unlock()
			if got >= n+projects*perProject {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d events delivered within 20 s of a tick", got-n, projects*perProject)
			}
		}
	}
	b.StopTimer()
	// End between ticks: no delivery under way.
	for busy := true; busy; time.Sleep(5 * time.Millisecond) {
		c.mu.Lock()
		busy = false
		for _, s := range c.subs {
			busy = busy || s.busy
		}
		c.mu.Unlock()
	}
	cancel()
	<-done
	// Each event's tick, from its subscription's state: every tick decided
	// and ended was delivered, and arrived.
	tickTimes := map[time.Time]bool{}
	for _, p := range ps {
		for j := range perProject {
			st, _, _ := c.state(ctx, p.ID, fmt.Sprintf("s%02d", j))
			for _, d := range st.Deliveries {
				mu.Lock()
				_, ok := arrived[d.ID]
				mu.Unlock()
				if d.Outcome != core.CronDelivered || !ok {
					b.Fatalf("a tick was not delivered: %+v (arrived %v)", d, ok)
				}
				ticks[d.ID], tickTimes[d.Tick] = d.Tick, true
			}
		}
	}
	all = delays(&mu, arrived, func(id string) time.Time { return ticks[id] })
	p99, b99 := pct(all, 99), pct(baseline, 99)
	b.ReportMetric(float64(len(all))/float64(len(tickTimes)), "events/tick")
	b.ReportMetric(ms(pct(all, 50)), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(b99), "baseline-p99-ms")
	b.ReportMetric(float64(p99)/float64(b99), "p99/baseline")
}

func delays(mu *sync.Mutex, arrived map[string]time.Time, from func(id string) time.Time) []time.Duration {
	mu.Lock()
	defer mu.Unlock()
	var out []time.Duration
	for id, at := range arrived {
		if t := from(id); !t.IsZero() {
			out = append(out, at.Sub(t))
		}
	}
	slices.Sort(out)
	return out
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[min(len(ds)-1, len(ds)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
