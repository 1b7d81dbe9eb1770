package apphistory

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRecord(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	web := Key{"p1", "web"}
	tests := []struct {
		name  string
		loads []map[Key]Load // one per 10 s
		want  []Point        // web's, At left out
	}{
		{"first sample has no rate", []map[Key]Load{{web: {Requests: 500, Instances: 2}}}, []Point{{Instances: 2}}},
		{"rate between samples", []map[Key]Load{{web: {Requests: 100, Instances: 1}}, {web: {Requests: 150, Instances: 2}}},
			[]Point{{Instances: 1}, {Instances: 2, RequestsPerSecond: 5}}},
		{"a counter that went down (a revision removed) counts anew", []map[Key]Load{{web: {Requests: 100, Instances: 1}}, {web: {Requests: 20, Instances: 1}}, {web: {Requests: 40, Instances: 1}}},
			[]Point{{Instances: 1}, {Instances: 1}, {Instances: 1, RequestsPerSecond: 2}}},
		{"no revision served: zero", []map[Key]Load{{web: {Requests: 100, Instances: 1}}, {}},
			[]Point{{Instances: 1}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(10 * time.Second)
			for i, l := range tt.loads {
				h.Record(t0.Add(time.Duration(i)*10*time.Second), l)
			}
			got := h.Points("p1", "web")
			if len(got) != len(tt.want) {
				t.Fatalf("points %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i].Instances != tt.want[i].Instances || got[i].RequestsPerSecond != tt.want[i].RequestsPerSecond {
					t.Errorf("point %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestRecordKeepsAnHour(t *testing.T) {
	h := New(15 * time.Second)
	t0 := time.Now()
	web := Key{"p1", "web"}
	for i := range 1000 {
		h.Record(t0.Add(time.Duration(i)*15*time.Second), map[Key]Load{web: {Requests: float64(i), Instances: 1}})
	}
	if got := h.Points("p1", "web"); len(got) != 241 || got[len(got)-1].At.Sub(got[0].At) != Window {
		t.Errorf("%d points spanning %s", len(got), got[len(got)-1].At.Sub(got[0].At))
	}
	// A deleted app's series goes once it has been idle a whole window.
	for i := range 242 {
		h.Record(t0.Add(time.Duration(1000+i)*15*time.Second), nil)
	}
	if got := h.Points("p1", "web"); got != nil {
		t.Errorf("an app gone an hour still has %d points", len(got))
	}
}

func TestRead(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coligo_revision_requests_total"}, []string{"project", "revision"})
	inst := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coligo_revision_instances"}, []string{"project", "revision", "state"})
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "coligo_router_requests_total"}, []string{"code"})
	reg.MustRegister(reqs, inst, other)
	reqs.WithLabelValues("p1", "web-00001").Add(10)
	reqs.WithLabelValues("p1", "web-00002").Add(5)
	reqs.WithLabelValues("p2", "web-00001").Add(7)
	reqs.WithLabelValues("p1", "fn\x00hello:3").Add(99) // a function's
	inst.WithLabelValues("p1", "web-00002", "ready").Set(3)
	inst.WithLabelValues("p1", "web-00002", "desired").Set(4)
	other.WithLabelValues("200").Add(1000)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := Read(fams)
	want := map[Key]Load{{"p1", "web"}: {Requests: 15, Instances: 3}, {"p2", "web"}: {Requests: 7}}
	if len(got) != len(want) {
		t.Fatalf("Read: %+v, want %+v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%v: %+v, want %+v", k, got[k], w)
		}
	}
}
