package cron

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
)

// received records what an app instance was sent.
type received struct {
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

func (r *received) handler(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs, r.body = append(r.reqs, req), append(r.body, string(b))
	r.mu.Unlock()
}

func (r *received) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

type fixture struct {
	t   *testing.T
	db  *store.DB
	rt  *router.Router
	p   core.Project
	got *received
	ctx context.Context
}

func newFixture(t *testing.T) *fixture {
	db := storetest.Open(t)
	ctx := context.Background()
	p, err := db.CreateProject(ctx, core.Project{ID: "p1", Name: "p1", Status: core.ProjectActive}, func() string { return "s1" })
	if err != nil {
		t.Fatal(err)
	}
	got := &received{}
	backend := httptest.NewServer(http.HandlerFunc(got.handler))
	t.Cleanup(backend.Close)
	rt := router.New(router.Config{Logger: slog.New(slog.DiscardHandler)})
	rt.SetRevision("p1/web-00001", router.RevisionConfig{Concurrency: 10, Timeout: time.Minute},
		[]router.Endpoint{{ID: "web-1", Addr: strings.TrimPrefix(backend.URL, "http://")}})
	rt.SetRoutes(map[string]router.Route{"web.s1.svc": {Revision: "p1/web-00001", Project: "p1"}})
	f := &fixture{t: t, db: db, rt: rt, p: p, got: got, ctx: ctx}
	f.put(core.KindApp, "web", core.App{Name: "web"})
	return f
}

func (f *fixture) put(kind, name string, v any) {
	f.t.Helper()
	b, _ := json.Marshal(v)
	if _, err := f.db.Create(f.ctx, core.Ref{Project: f.p.ID, Kind: kind, Name: name}, b, 0); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run(t *testing.T) (*Controller, context.CancelFunc) {
	c := New(Config{Store: f.db, Router: f.rt, Domain: "apps.test", Logger: slog.New(slog.DiscardHandler), Seconds: true, Resync: time.Hour})
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

func (f *fixture) state(name string) core.CronState {
	f.t.Helper()
	rec, err := f.db.Get(f.ctx, core.Ref{Project: f.p.ID, Kind: core.KindCronState, Name: name})
	var st core.CronState
	if err == nil {
		json.Unmarshal(rec.Value, &st)
	}
	return st
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDeliverToApp: every tick POSTs the event to the app's path through
// the router (project-only route), with Code Engine's ce-* headers, a
// fresh ce-id per tick, the data as the body and its content type.
func TestDeliverToApp(t *testing.T) {
	f := newFixture(t)
	f.put(core.KindCronSubscription, "every-second", core.CronSubscription{ID: "s-1", Name: "every-second", DestinationType: core.DestinationApp,
		Destination: "web", Schedule: "* * * * * *", TimeZone: "UTC", Data: `{"hello":"world"}`, Path: "/events",
		Extensions: map[string]string{"tenant": "acme"}, CreatedAt: time.Now()})
	f.run(t)
	waitFor(t, "two deliveries", func() bool { return f.got.count() >= 2 })
	f.got.mu.Lock()
	r0, r1, body := f.got.reqs[0], f.got.reqs[1], f.got.body[0]
	f.got.mu.Unlock()
	for h, want := range map[string]string{"Ce-Source": "/apis/v1/namespaces/s1/pingsources/every-second", "Ce-Type": "dev.knative.sources.ping",
		"Ce-Specversion": "1.0", "Ce-Tenant": "acme", "Content-Type": "application/json"} {
		if got := r0.Header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if r0.Method != "POST" || r0.URL.Path != "/events" || body != `{"hello":"world"}` {
		t.Errorf("request: %s %s %q", r0.Method, r0.URL.Path, body)
	}
	if r0.Header.Get("Ce-Id") == "" || r0.Header.Get("Ce-Id") == r1.Header.Get("Ce-Id") {
		t.Errorf("ce-ids %q %q", r0.Header.Get("Ce-Id"), r1.Header.Get("Ce-Id"))
	}
	if tm, err := time.Parse(time.RFC3339Nano, r0.Header.Get("Ce-Time")); err != nil || tm.Nanosecond() != 0 {
		t.Errorf("ce-time %q is not the tick", r0.Header.Get("Ce-Time"))
	}
	waitFor(t, "the outcomes recorded", func() bool {
		st := f.state("every-second")
		return len(st.Deliveries) >= 2 && st.Deliveries[0].Outcome == core.CronDelivered && st.Deliveries[0].StatusCode == 200
	})
}

// TestDecidedWaitsForTheRouter: a tick decided before a stop, of a
// schedule that ticks every second, is delivered although the router
// serves its app only 2.5 s after the start, past the next ticks: the
// server's start does not use up its budget.
func TestDecidedWaitsForTheRouter(t *testing.T) {
	f := newFixture(t)
	f.rt.SetRoutes(map[string]router.Route{})
	tick := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	f.put(core.KindCronSubscription, "secondly", core.CronSubscription{ID: "s-1", Name: "secondly", DestinationType: core.DestinationApp,
		Destination: "web", Schedule: "* * * * * *", TimeZone: "UTC", CreatedAt: tick.Add(-time.Hour)})
	f.put(core.KindCronState, "secondly", core.CronState{LastTick: tick, Pending: &core.CronDelivery{Tick: tick, ID: "decided-before-the-stop", Outcome: core.CronPending}})
	f.run(t)
	time.Sleep(2500 * time.Millisecond)
	f.rt.SetRoutes(map[string]router.Route{"web.s1.svc": {Revision: "p1/web-00001", Project: "p1"}})
	var d core.CronDelivery
	waitFor(t, "the decided delivery", func() bool {
		for _, d = range f.state("secondly").Deliveries {
			if d.ID == "decided-before-the-stop" {
				return true
			}
		}
		return false
	})
	if d.Outcome != core.CronDelivered || d.Attempts < 2 {
		t.Errorf("the decided delivery: %+v, want delivered after the router served the app", d)
	}
}

// TestDecidedIsDeliveredOnce: a tick decided before a stop (its state has
// the pending delivery) is delivered at start, once, with its id; ticks
// missed while stopped are not replayed but the last, and the others are
// recorded as skipped.
func TestDecidedIsDeliveredOnce(t *testing.T) {
	f := newFixture(t)
	tick := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	f.put(core.KindCronSubscription, "hourly", core.CronSubscription{ID: "s-1", Name: "hourly", DestinationType: core.DestinationApp,
		Destination: "web", Schedule: "0 0 * * * *", TimeZone: "UTC", CreatedAt: tick.Add(-time.Hour)})
	st := core.CronState{LastTick: tick, Pending: &core.CronDelivery{Tick: tick, ID: "decided-before-the-stop", Outcome: core.CronPending}}
	f.put(core.KindCronState, "hourly", st)
	f.put(core.KindCronSubscription, "secondly", core.CronSubscription{ID: "s-2", Name: "secondly", DestinationType: core.DestinationApp,
		Destination: "web", Schedule: "*/10 * * * * *", TimeZone: "UTC", CreatedAt: tick.Add(-time.Hour)})
	f.put(core.KindCronState, "secondly", core.CronState{LastTick: tick.Add(-5 * time.Minute)})
	f.run(t)
	waitFor(t, "the decided delivery", func() bool { return len(f.state("hourly").Deliveries) == 1 })
	if d := f.state("hourly").Deliveries[0]; d.ID != "decided-before-the-stop" || d.Outcome != core.CronDelivered || f.state("hourly").Pending != nil {
		t.Errorf("the decided delivery: %+v", d)
	}
	waitFor(t, "the catch-up of the missed ticks", func() bool { return len(f.state("secondly").Deliveries) >= 2 })
	st2 := f.state("secondly")
	caught, skipped := st2.Deliveries[0], st2.Deliveries[1]
	if skipped.Outcome != core.CronSkipped || skipped.Missed < 30 || caught.Outcome != core.CronDelivered || !caught.Tick.Equal(skipped.Tick) {
		t.Errorf("after a stop of 5 min: %+v", st2.Deliveries)
	}
	time.Sleep(300 * time.Millisecond)
	n := 0
	f.got.mu.Lock()
	for _, r := range f.got.reqs {
		if r.Header.Get("Ce-Id") == "decided-before-the-stop" {
			n++
		}
	}
	total := len(f.got.reqs)
	f.got.mu.Unlock()
	if n != 1 || total > 3 {
		t.Errorf("the decided event arrived %d times; %d requests in all (want the decided one and one catch-up, maybe a tick)", n, total)
	}
}

// TestDeliverToJob: each tick starts one run of the job with the event in
// its environment; the run's name comes from the event, so deciding the
// same event again starts no second run.
func TestDeliverToJob(t *testing.T) {
	f := newFixture(t)
	f.put(core.KindJob, "batch", core.Job{Name: "batch", RunSpec: core.RunSpec{ImageReference: "registry.test/b:1", ScaleArraySpec: "0-1",
		RunEnvVariables: []core.EnvVar{{Type: core.EnvLiteral, Name: "OWN", Value: "1"}}}})
	f.put(core.KindCronSubscription, "to-job", core.CronSubscription{ID: "s-1", Name: "to-job", DestinationType: core.DestinationJob,
		Destination: "batch", Schedule: "* * * * * *", TimeZone: "UTC", Data: "payload", ContentType: "text/plain", CreatedAt: time.Now()})
	_, stop := f.run(t)
	waitFor(t, "a run", func() bool {
		st := f.state("to-job")
		return len(st.Deliveries) > 0 && st.Deliveries[0].JobRun != ""
	})
	stop()
	d := f.state("to-job").Deliveries[0]
	rec, err := f.db.Get(f.ctx, core.Ref{Project: "p1", Kind: core.KindJobRun, Name: d.JobRun})
	if err != nil {
		t.Fatal(err)
	}
	var run core.JobRun
	json.Unmarshal(rec.Value, &run)
	env := map[string]string{}
	for _, e := range run.RunEnvVariables {
		env[e.Name] = e.Value
	}
	if env["CE_DATA"] != "payload" || env["CE_ID"] != d.ID || env["CONTENT_TYPE"] != "text/plain" || env["CE_TYPE"] != core.CronEventType || env["OWN"] != "1" ||
		run.Subscription != "to-job" || len(run.Indices) != 2 || run.JobName != "batch" {
		t.Errorf("the run: %+v %v", run, env)
	}
	c := New(Config{Store: f.db, Router: f.rt, Logger: slog.New(slog.DiscardHandler), Seconds: true})
	cs := core.CronSubscription{Name: "to-job", DestinationType: core.DestinationJob, Destination: "batch"}
	if again := c.runJob(f.ctx, f.p, cs, core.CronAttributes(f.p, cs, d.ID, d.Tick), core.CronDelivery{ID: d.ID}); again.JobRun != d.JobRun || again.Outcome != core.CronDelivered {
		t.Errorf("the same event again: %+v", again)
	}
	recs, _, _ := f.db.List(f.ctx, "p1", core.KindJobRun, "", 100)
	names := map[string]bool{}
	for _, r := range recs {
		names[r.Name] = true
	}
	if !names[d.JobRun] || len(names) != len(f.state("to-job").Deliveries) {
		t.Errorf("runs %v for deliveries %+v", names, f.state("to-job").Deliveries)
	}
}

// TestRestoredProjectIsNotCaughtUp: ticks due while a project was
// soft-deleted are not delivered after its restore.
func TestRestoredProjectIsNotCaughtUp(t *testing.T) {
	f := newFixture(t)
	f.put(core.KindCronSubscription, "paused", core.CronSubscription{ID: "s-1", Name: "paused", DestinationType: core.DestinationApp,
		Destination: "web", Schedule: "0 0 * * * *", TimeZone: "UTC", CreatedAt: time.Now().Add(-5 * time.Hour)})
	f.put(core.KindCronState, "paused", core.CronState{LastTick: time.Now().Add(-3 * time.Hour)})
	if _, err := f.db.UpdateProject(f.ctx, "p1", 0, func(p *core.Project) error { p.RestoredAt = time.Now(); return nil }); err != nil {
		t.Fatal(err)
	}
	f.run(t)
	time.Sleep(500 * time.Millisecond)
	if n := f.got.count(); n != 0 {
		t.Errorf("%d deliveries of ticks due while the project was soft-deleted", n)
	}
}
