// Package autoscaler decides how many instances an app revision should
// have, as Knative's KPA does: from the average concurrency (requests in
// flight or waiting) over a stable window and, when demand jumps past twice
// the capacity, over a short panic window — or, for a step, its newest
// sample, so that a burst is answered within one tick. Decide is a pure function of the
// spec, the observed stats, the state carried from the last decision and
// the time; the app controller calls it on every tick.
package autoscaler
