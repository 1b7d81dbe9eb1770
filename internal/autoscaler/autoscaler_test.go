package autoscaler

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// steady returns one sample a second of concurrency c over the d before now.
func steady(now time.Time, d time.Duration, c float64) []Sample {
	var out []Sample
	for at := now.Add(-d + time.Second); !at.After(now); at = at.Add(time.Second) {
		out = append(out, Sample{At: at, Concurrency: c})
	}
	return out
}

func TestDecide(t *testing.T) {
	now := t0.Add(10 * time.Minute)
	long := t0 // observed for ten minutes
	base := Spec{Target: 10, Min: 0, Max: 10, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second}
	tests := []struct {
		name   string
		spec   func(*Spec)
		stats  Stats
		prev   State
		want   int
		panic  bool
		noTraf bool
	}{
		{name: "idle for the window scales to zero", stats: Stats{Samples: steady(now, time.Minute, 0), Since: long, Ready: 2}, want: 0, noTraf: true},
		{name: "idle keeps min", spec: func(s *Spec) { s.Min = 2 }, stats: Stats{Samples: steady(now, time.Minute, 0), Since: long, Ready: 2}, want: 2, noTraf: true},
		{name: "target predicts the count", stats: Stats{Samples: steady(now, time.Minute, 35), Since: long, Ready: 4}, want: 4},
		{name: "exact multiple", stats: Stats{Samples: steady(now, time.Minute, 30), Since: long, Ready: 3}, want: 3},
		{name: "capped by max", stats: Stats{Samples: steady(now, time.Minute, 500), Since: long, Ready: 10}, want: 10, panic: true},
		{name: "max 0 is unbounded", spec: func(s *Spec) { s.Max = 0 }, stats: Stats{Samples: steady(now, time.Minute, 500), Since: long, Ready: 50}, want: 50},
		{name: "a little traffic keeps one", stats: Stats{Samples: append(steady(now.Add(-time.Second), 59*time.Second, 0), Sample{At: now, Concurrency: 0.5}), Since: long, Ready: 1}, want: 1},
		{name: "held request wakes from zero", stats: Stats{Samples: steady(now, time.Minute, 0), Since: long, Waiting: true}, want: 1, noTraf: true},
		{name: "no history holds the ready count", stats: Stats{Samples: steady(now, 10*time.Second, 0), Since: now.Add(-10 * time.Second), Ready: 3}, want: 3, noTraf: true},
		{name: "no samples at all holds", stats: Stats{Since: now, Ready: 2}, want: 2},
		{
			name:  "a burst panics on the short window",
			stats: Stats{Samples: append(steady(now.Add(-6*time.Second), 54*time.Second, 5), steady(now, 6*time.Second, 80)...), Since: long, Ready: 1},
			want:  8, panic: true,
		},
		{
			name:  "during a panic never down",
			stats: Stats{Samples: steady(now, time.Minute, 10), Since: long, Ready: 8},
			prev:  State{PanicSince: now.Add(-20 * time.Second), LastPanic: now.Add(-10 * time.Second), PanicWant: 8},
			want:  8, panic: true,
		},
		{
			name:  "a panic ends a stable window after the last burst",
			stats: Stats{Samples: steady(now, time.Minute, 10), Since: long, Ready: 8},
			prev:  State{PanicSince: now.Add(-90 * time.Second), LastPanic: now.Add(-61 * time.Second), PanicWant: 8},
			want:  1,
		},
		{
			name:  "scale-down delay keeps the recent peak",
			spec:  func(s *Spec) { s.ScaleDownDelay = 30 * time.Second },
			stats: Stats{Samples: steady(now, time.Minute, 0), Since: long, Ready: 5},
			prev:  State{Recent: []Want{{At: now.Add(-20 * time.Second), N: 5}, {At: now.Add(-40 * time.Second), N: 9}}},
			want:  5, noTraf: true,
		},
		{
			name:  "scale-down delay passed",
			spec:  func(s *Spec) { s.ScaleDownDelay = 30 * time.Second },
			stats: Stats{Samples: steady(now, time.Minute, 0), Since: long, Ready: 5},
			prev:  State{Recent: []Want{{At: now.Add(-31 * time.Second), N: 5}}},
			want:  0, noTraf: true,
		},
		{
			name:  "a step shows in the newest sample",
			stats: Stats{Samples: append(steady(now.Add(-time.Second), 59*time.Second, 5), Sample{At: now, Concurrency: 50}), Since: long, Ready: 1},
			want:  5, panic: true,
		},
		{
			name:  "one busy sample within capacity does not panic",
			stats: Stats{Samples: append(steady(now.Add(-time.Second), 59*time.Second, 5), Sample{At: now, Concurrency: 15}), Since: long, Ready: 1},
			want:  1,
		},
		{name: "min equals max does not scale", spec: func(s *Spec) { s.Min, s.Max = 3, 3 }, stats: Stats{Samples: steady(now, time.Minute, 300), Since: long, Ready: 3}, want: 3, panic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base
			if tt.spec != nil {
				tt.spec(&spec)
			}
			d, _ := Decide(spec, tt.stats, tt.prev, now)
			if d.Want != tt.want || d.Panic != tt.panic || d.NoTraffic != tt.noTraf {
				t.Errorf("got want=%d panic=%v noTraffic=%v (stable %.2f, panic %.2f), want want=%d panic=%v noTraffic=%v",
					d.Want, d.Panic, d.NoTraffic, d.StableAvg, d.PanicAvg, tt.want, tt.panic, tt.noTraf)
			}
		})
	}
}

// TestDecideOverTime runs the loop the controller runs: a step to 50
// concurrent requests, then silence.
func TestDecideOverTime(t *testing.T) {
	spec := Spec{Target: 10, Max: 20, StableWindow: 60 * time.Second, PanicWindow: 6 * time.Second}
	var samples []Sample
	var st State
	ready := 1
	var wants []int
	for sec := 1; sec <= 200; sec++ {
		now := t0.Add(time.Duration(sec) * time.Second)
		c := 0.0
		if sec > 60 && sec <= 100 {
			c = 50
		}
		samples = append(samples, Sample{At: now, Concurrency: c})
		var d Decision
		d, st = Decide(spec, Stats{Samples: samples, Since: t0, Ready: ready}, st, now)
		ready = d.Want // instances become ready at once in this model
		wants = append(wants, d.Want)
	}
	at := func(sec int) int { return wants[sec-1] }
	if at(60) != 0 {
		t.Errorf("before the step: %d instances, want 0 after a silent minute", at(60))
	}
	if at(62) < 5 {
		t.Errorf("2 s into the step: %d instances, want the panic to reach 5", at(62))
	}
	if at(100) != 5 {
		t.Errorf("steady at 50: %d instances, want 5", at(100))
	}
	if at(150) == 0 {
		t.Errorf("50 s after the step ended: scaled to zero before a silent stable window")
	}
	if at(200) != 0 {
		t.Errorf("100 s after the step ended: %d instances, want 0", at(200))
	}
}

// FuzzDecide feeds the autoscaler arbitrary load: the number it wants is
// always within the bounds, and never below 1 while a request waits.
func FuzzDecide(f *testing.F) {
	f.Add(uint16(10), uint8(0), uint8(10), uint16(30), []byte{0, 5, 50, 200, 0})
	f.Add(uint16(1), uint8(2), uint8(0), uint16(0), []byte{255, 255, 1})
	f.Fuzz(func(t *testing.T, target uint16, minN, maxN uint8, delay uint16, load []byte) {
		spec := Spec{Target: float64(target%1000 + 1), Min: int(minN), Max: int(maxN), ScaleDownDelay: time.Duration(delay) * time.Millisecond,
			StableWindow: 10 * time.Second, PanicWindow: time.Second}
		if spec.Max > 0 && spec.Min > spec.Max {
			spec.Min = spec.Max
		}
		var samples []Sample
		var st State
		ready := 0
		for i, l := range load {
			now := t0.Add(time.Duration(i) * 200 * time.Millisecond)
			samples = append(samples, Sample{At: now, Concurrency: float64(l)})
			var d Decision
			waiting := l%7 == 0 && ready == 0
			d, st = Decide(spec, Stats{Samples: samples, Since: t0, Ready: ready, Waiting: waiting}, st, now)
			if d.Want < spec.Min || (spec.Max > 0 && d.Want > spec.Max) {
				t.Fatalf("want %d outside %d..%d", d.Want, spec.Min, spec.Max)
			}
			if waiting && d.Want < 1 && (spec.Max == 0 || spec.Max >= 1) {
				t.Fatalf("a request waits and the autoscaler wants %d", d.Want)
			}
			ready = d.Want
		}
	})
}
