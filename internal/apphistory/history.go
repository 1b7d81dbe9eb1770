package apphistory

import (
	"context"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Window is how far back the history goes.
const Window = time.Hour

// Key names an app.
type Key struct{ Project, App string }

// Load is what an app's revisions show at one moment: the requests they
// served since they began, and their ready instances.
type Load struct {
	Requests  float64
	Instances int
}

// Point is one sample of an app.
type Point struct {
	At                time.Time
	Instances         int
	RequestsPerSecond float64
}

type series struct {
	points   []Point
	requests float64 // the counter at the last sample
	busy     time.Time
}

// History holds each app's points of the last Window.
type History struct {
	every time.Duration
	mu    sync.Mutex
	apps  map[Key]*series
}

// New makes a history sampled every every.
func New(every time.Duration) *History {
	return &History{every: every, apps: map[Key]*series{}}
}

// Every is the time between samples.
func (h *History) Every() time.Duration { return h.every }

// Record adds a sample taken at at. An app missing from r has no revision
// served now: it gets a point of zero. A series that has been all zero for
// a whole Window is dropped, so deleted apps do not stay.
func (h *History) Record(at time.Time, r map[Key]Load) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range r {
		if h.apps[k] == nil {
			h.apps[k] = &series{requests: r[k].Requests, busy: at}
		}
	}
	keep := int(Window/h.every) + 1
	for k, s := range h.apps {
		l, ok := r[k]
		p := Point{At: at}
		if ok {
			p.Instances = l.Instances
			// A counter that went down lost a revision: count from it anew.
			if d := l.Requests - s.requests; d > 0 && len(s.points) > 0 {
				p.RequestsPerSecond = d / at.Sub(s.points[len(s.points)-1].At).Seconds()
			}
			s.requests = l.Requests
		} else {
			s.requests = 0
		}
		if p.Instances > 0 || p.RequestsPerSecond > 0 {
			s.busy = at
		} else if at.Sub(s.busy) > Window {
			delete(h.apps, k)
			continue
		}
		s.points = append(s.points, p)
		if len(s.points) > keep {
			s.points = append(s.points[:0], s.points[len(s.points)-keep:]...)
		}
	}
}

// Points returns an app's samples, oldest first.
func (h *History) Points(project, app string) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.apps[Key{project, app}]
	if s == nil {
		return nil
	}
	return append([]Point(nil), s.points...)
}

// appRevision matches an app's revision name, <app>-00001; functions'
// revisions are named otherwise.
var appRevision = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)-[0-9]{5}$`)

// Read sums the metrics of each app's revisions into its load.
func Read(families []*dto.MetricFamily) map[Key]Load {
	out := map[Key]Load{}
	for _, f := range families {
		switch f.GetName() {
		case "coligo_revision_requests_total", "coligo_revision_instances":
		default:
			continue
		}
		for _, m := range f.GetMetric() {
			var project, rev, state string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "project":
					project = l.GetValue()
				case "revision":
					rev = l.GetValue()
				case "state":
					state = l.GetValue()
				}
			}
			sub := appRevision.FindStringSubmatch(rev)
			if sub == nil || project == "" {
				continue
			}
			k := Key{project, sub[1]}
			l := out[k]
			if f.GetName() == "coligo_revision_requests_total" {
				l.Requests += m.GetCounter().GetValue()
			} else if state == "ready" {
				l.Instances += int(m.GetGauge().GetValue())
			}
			out[k] = l
		}
	}
	return out
}

// Run samples g every Every until ctx ends.
func (h *History) Run(ctx context.Context, g prometheus.Gatherer, log *slog.Logger) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		fams, err := g.Gather()
		if err != nil {
			log.Warn("app history: gather metrics", "err", err)
		}
		h.Record(time.Now(), Read(fams))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
