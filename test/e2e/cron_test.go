package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestCronSubscription (with --cron-seconds, a test aid for ticks every
// few seconds): a subscription POSTs each tick's event to an app through
// the router, with Code Engine's CloudEvents headers; another starts a run
// of a job per tick with the event in its environment; bad input is
// refused naming the field; `sub cron get` shows the deliveries. Then the
// server is killed (SIGKILL) right after it decided a tick: after its
// restart that tick is delivered, exactly once.
func TestCronSubscription(t *testing.T) {
	s := newServer(t, "local", "--autoscale-stable-window", "4s", "--autoscale-panic-window", "1s", "--cron-seconds")
	s.start()
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "cron")
	a := deployApp(t, c, p.ID, testApp("listener", image))
	if _, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: "batch", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands: []string{"sh", "-c", `echo "data=$CE_DATA type=$CE_TYPE tenant=$CE_TENANT ct=$CONTENT_TYPE"`}}}); err != nil {
		t.Fatal(err)
	}
	sub := func(name, typ, dest, schedule string) api.CronSubscriptionPrototype {
		return api.CronSubscriptionPrototype{Name: name, DestinationType: typ, Destination: dest, Schedule: schedule, TimeZone: "Europe/Berlin",
			Data: `{"msg":"tick"}`, Extensions: map[string]string{"tenant": "acme"}}
	}
	for _, tc := range []struct {
		what  string
		in    api.CronSubscriptionPrototype
		field string
	}{
		{"a bad schedule", sub("x", "app", "listener", "61 * * * *"), "schedule"},
		{"an unknown time zone", func() api.CronSubscriptionPrototype {
			p := sub("x", "app", "listener", "")
			p.TimeZone = "Mars/Olympus"
			return p
		}(), "time_zone"},
		{"a destination that is not there", sub("x", "app", "nope", ""), "destination"},
		{"a job that is an app", sub("x", "job", "listener", ""), "destination"},
		{"oversized data", func() api.CronSubscriptionPrototype {
			p := sub("x", "app", "listener", "")
			p.Data = strings.Repeat("x", 4097)
			return p
		}(), "data"},
		{"a path for a job", func() api.CronSubscriptionPrototype { p := sub("x", "job", "batch", ""); p.Path = "/x"; return p }(), "path"},
	} {
		if _, err := c.CreateCronSubscription(ctx, p.ID, tc.in); !isStatus(err, 400) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want 400 naming %s", tc.what, err, tc.field)
		}
	}
	toApp := sub("to-app", "app", "listener", "*/2 * * * * *")
	toApp.Path = "/events"
	if _, err := c.CreateCronSubscription(ctx, p.ID, toApp); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateCronSubscription(ctx, p.ID, sub("to-job", "job", "batch", "*/3 * * * * *")); err != nil {
		t.Fatal(err)
	}
	events := func() []string {
		body := mustCall(t, s, a, "/events")
		if body == "" {
			return nil
		}
		return strings.Split(body, "\n")
	}
	waitServed(t, func() bool { return len(events()) >= 2 }, "two events at the app")
	ev := events()[0]
	for _, want := range []string{"source=/apis/v1/namespaces/cron/pingsources/to-app", "type=dev.knative.sources.ping", "specversion=1.0",
		"tenant=acme", "ct=application/json", `body={"msg":"tick"}`} {
		if !strings.Contains(ev, want) {
			t.Errorf("the event %q lacks %q", ev, want)
		}
	}
	var run string
	waitServed(t, func() bool {
		g, err := c.GetCronSubscription(ctx, p.ID, "to-job")
		for _, d := range g.StatusDetails.Deliveries {
			if err == nil && d.Outcome == "delivered" && d.JobRun != "" {
				run = d.JobRun
				return true
			}
		}
		return false
	}, "a run of the job")
	r := waitRun(t, c, p.ID, run, 60*time.Second, finished)
	var logs strings.Builder
	c.JobRunLogs(ctx, p.ID, run, 0, api.LogOptions{}, &logs)
	if r.Status != "completed" || !strings.Contains(logs.String(), `data={"msg":"tick"} type=dev.knative.sources.ping tenant=acme ct=application/json`) {
		t.Errorf("the event's run: %s %q", r.Status, logs.String())
	}
	_, cli := s.adminCLI(t, p.Name)
	if out := cli("sub", "cron", "get", "--name", "to-app"); !strings.Contains(out, "Ready:") || !strings.Contains(out, "delivered") || !strings.Contains(out, "Next Tick:") {
		t.Errorf("sub cron get:\n%s", out)
	}
	if err := c.DeleteCronSubscription(ctx, p.ID, "to-job"); err != nil {
		t.Fatal(err)
	}

	// A kill -9 right after a tick is decided: delivered once on restart.
	s.stop()
	s.env = []string{"COLIGO_FAILPOINT=cron-after-decide"}
	s.launch() // it kills itself at the first tick, maybe before it is ready
	s.waitExit(30 * time.Second)
	s.env = nil
	s.start()
	slog := s.allLogs()
	i := strings.Index(slog, "failpoint: killed after deciding a tick")
	if i < 0 {
		t.Fatal("the server did not stop at the failpoint")
	}
	decided, _, _ := strings.Cut(slog[i+strings.Index(slog[i:], " id=")+4:], "\n")
	decided = strings.Trim(decided, `" `)
	waitServed(t, func() bool { return strings.Contains(strings.Join(events(), "\n"), "id="+decided+" ") }, "the decided event "+decided)
	time.Sleep(3 * time.Second)
	seen := map[string]int{}
	for _, e := range events() {
		id, _, _ := strings.Cut(strings.TrimPrefix(e, "id="), " ")
		seen[id]++
	}
	if seen[decided] != 1 {
		t.Errorf("the event decided before the kill arrived %d times", seen[decided])
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s arrived %d times", id, n)
		}
	}

	// Soft-deleted, nothing is delivered; restored, it goes on from the next
	// tick, without catching up.
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	time.Sleep(5 * time.Second)
	if _, err := c.RestoreProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	restored := time.Now()
	waitServed(t, func() bool {
		g, err := c.GetCronSubscription(ctx, p.ID, "to-app")
		if err != nil || len(g.StatusDetails.Deliveries) == 0 {
			return false
		}
		tick, _ := time.Parse(time.RFC3339, g.StatusDetails.Deliveries[0].Tick)
		return tick.After(restored)
	}, "a tick after the restore")
	g, err := c.GetCronSubscription(ctx, p.ID, "to-app")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range g.StatusDetails.Deliveries {
		tick, _ := time.Parse(time.RFC3339, d.Tick)
		if tick.After(deleted.Add(time.Second)) && tick.Before(restored.Add(-time.Second)) {
			t.Errorf("a tick of the soft-deleted project was delivered: %+v", d)
		}
	}
}
