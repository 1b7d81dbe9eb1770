package router

import "github.com/prometheus/client_golang/prometheus"

// loadCollector reports each revision's requests waiting for room and in
// flight, read when scraped: nothing on the request path pays for them.
type loadCollector struct {
	r                *Router
	queued, inflight *prometheus.Desc
}

func newLoadCollector(r *Router) loadCollector {
	labels := []string{"project", "revision"}
	return loadCollector{r: r,
		queued: prometheus.NewDesc("coligo_revision_queued_requests",
			"Requests waiting for an instance of a revision with room (at its concurrency limit, or none ready).", labels, nil),
		inflight: prometheus.NewDesc("coligo_revision_requests_in_flight",
			"Requests being served by the instances of a revision.", labels, nil),
	}
}

// Describe implements prometheus.Collector.
func (c loadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.inflight
}

// Collect implements prometheus.Collector.
func (c loadCollector) Collect(ch chan<- prometheus.Metric) {
	c.r.mu.RLock()
	revs := make([]*revision, 0, len(c.r.revs))
	for _, rev := range c.r.revs {
		revs = append(revs, rev)
	}
	c.r.mu.RUnlock()
	for _, rev := range revs {
		rev.mu.Lock()
		queued, inflight := len(rev.waiters), 0
		for _, b := range rev.all {
			inflight += b.inflight
		}
		rev.mu.Unlock()
		lv := revisionLabels(rev.key)
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(queued), lv...)
		ch <- prometheus.MustNewConstMetric(c.inflight, prometheus.GaugeValue, float64(inflight), lv...)
	}
}
