package autoscaler

import (
	"math"
	"time"
)

// Spec is what a revision asks of the autoscaler.
type Spec struct {
	Target         float64 // concurrency per instance to aim at (scale_concurrency_target)
	Min, Max       int     // instance bounds; Max 0 means none
	ScaleDownDelay time.Duration
	StableWindow   time.Duration // default 60s
	PanicWindow    time.Duration // default 6s
	PanicThreshold float64       // demand/capacity that starts a panic; default 2
}

// Sample is a revision's average concurrency over the tick that ended At.
type Sample struct {
	At          time.Time
	Concurrency float64
}

// Stats is what is observed of a revision.
type Stats struct {
	Samples []Sample  // oldest first
	Since   time.Time // when observation began; before a full stable window no scale-down
	Ready   int       // instances ready to serve now
	Waiting bool      // requests are held because no instance is ready
}

// State is carried from one decision to the next.
type State struct {
	PanicSince time.Time // zero when not panicking
	LastPanic  time.Time // the last time demand crossed the threshold
	PanicWant  int       // the highest number wanted during this panic
	Recent     []Want    // decisions within the scale-down delay
}

// Want is a decision.
type Want struct {
	At time.Time
	N  int
}

// Decision is the outcome of Decide.
type Decision struct {
	Want        int
	Panic       bool
	StableAvg   float64
	PanicAvg    float64
	NoTraffic   bool // no request in the whole stable window
	HaveHistory bool // a full stable window has been observed
}

func (s *Spec) defaults() {
	if s.StableWindow <= 0 {
		s.StableWindow = 60 * time.Second
	}
	if s.PanicWindow <= 0 || s.PanicWindow > s.StableWindow {
		s.PanicWindow = min(6*time.Second, s.StableWindow)
	}
	if s.PanicThreshold <= 0 {
		s.PanicThreshold = 2
	}
	if s.Target <= 0 {
		s.Target = 1
	}
}

// Decide returns the number of instances the revision should have now and
// the state to pass to the next call.
func Decide(spec Spec, st Stats, prev State, now time.Time) (Decision, State) {
	spec.defaults()
	stable, nStable := average(st.Samples, now.Add(-spec.StableWindow), now)
	panicAvg, nPanic := average(st.Samples, now.Add(-spec.PanicWindow), now)
	d := Decision{StableAvg: stable, PanicAvg: panicAvg}
	d.HaveHistory = !st.Since.IsZero() && now.Sub(st.Since) >= spec.StableWindow
	d.NoTraffic = nStable > 0 && stable == 0

	// A step in demand shows in the newest sample a whole panic window
	// before the average has caught up: scale-ups follow it at once.
	burst := panicAvg
	if n := len(st.Samples); n > 0 && st.Samples[n-1].Concurrency > burst && !st.Samples[n-1].At.After(now) {
		burst = st.Samples[n-1].Concurrency
	}
	wantStable := int(math.Ceil(stable / spec.Target))
	wantPanic := int(math.Ceil(burst / spec.Target))
	next := State{PanicSince: prev.PanicSince, LastPanic: prev.LastPanic, PanicWant: prev.PanicWant}

	capacity := float64(max(st.Ready, 1)) * spec.Target
	if nPanic > 0 && burst >= spec.PanicThreshold*capacity {
		if next.PanicSince.IsZero() {
			next.PanicSince = now
		}
		next.LastPanic = now
	} else if !next.PanicSince.IsZero() && now.Sub(next.LastPanic) >= spec.StableWindow {
		next.PanicSince, next.LastPanic, next.PanicWant = time.Time{}, time.Time{}, 0
	}

	want := wantStable
	if !next.PanicSince.IsZero() {
		// A panic scales up on the short window and never down.
		d.Panic = true
		want = max(wantPanic, wantStable, next.PanicWant, st.Ready)
		next.PanicWant = want
	}
	if !d.HaveHistory {
		want = max(want, st.Ready) // after a restart: no scale-down on partial data
	}
	if st.Waiting {
		want = max(want, 1)
	}

	// Scale down only to the highest number wanted over the delay.
	next.Recent = append(next.Recent, Want{At: now, N: want})
	for _, w := range prev.Recent {
		if spec.ScaleDownDelay > 0 && now.Sub(w.At) < spec.ScaleDownDelay {
			next.Recent = append(next.Recent, w)
			want = max(want, w.N)
		}
	}

	want = max(want, spec.Min)
	if spec.Max > 0 {
		want = min(want, spec.Max)
	}
	d.Want = want
	return d, next
}

// average is the mean concurrency of the samples in (from, to] and how many
// there were.
func average(samples []Sample, from, to time.Time) (float64, int) {
	sum, n := 0.0, 0
	for i := len(samples) - 1; i >= 0; i-- {
		s := samples[i]
		if !s.At.After(from) {
			break
		}
		if s.At.After(to) {
			continue
		}
		sum += s.Concurrency
		n++
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}
