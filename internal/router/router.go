package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Route sends the requests for one host to a revision.
type Route struct {
	Revision string // revision key, as given to SetRevision
	Public   bool   // served by the public listener; project-only apps are not
	Project  string // served to this project's instances by its internal listener
	// Redirect answers a public request over plain HTTP with a redirect to
	// HTTPS (when the router serves HTTPS: Config.HTTPSPort).
	Redirect bool
}

// RevisionConfig is how a revision is served.
type RevisionConfig struct {
	Owner       string        // who serves it ("" for apps): Stats answers each its own
	Concurrency int           // requests in flight per instance, at most
	Timeout     time.Duration // per request, from arrival to the end of the response
	H2C         bool          // instances speak cleartext HTTP/2
}

// Endpoint is a ready instance.
type Endpoint struct {
	ID   string
	Addr string // host:port
}

// Config configures a Router.
type Config struct {
	QueueDepth int              // requests waiting per revision before 503; default 100
	Wake       func(rev string) // told when a request waits for a revision with no ready instance
	Logger     *slog.Logger
	Registry   prometheus.Registerer // may be nil
	// ProjectOf tells which project an instance address belongs to, when
	// projects share one network (the kubernetes engine); see ServeProject.
	ProjectOf func(netip.Addr) (project string, ok bool)
	// HTTPSPort is how HTTPS URLs name the router's TLS port (":8443"; ""
	// for 443), and HTTPSOff tells that the router serves no HTTPS: routes
	// that redirect then serve plain HTTP.
	HTTPSPort string
	HTTPSOff  bool
}

// Router is an http.Handler. It is safe for concurrent use.
type Router struct {
	cfg    Config
	log    *slog.Logger
	routes atomic.Pointer[map[string]Route] // every owner's, merged
	wake   atomic.Pointer[func(string)]

	ownedMu sync.Mutex
	owned   map[string]map[string]Route // by owner
	aliases map[string]string           // custom domain → the host it serves as
	certs   atomic.Pointer[map[string]*tls.Certificate]

	chMu        sync.Mutex
	challenges  map[string]string // ACME HTTP-01: token → key authorization
	nChallenges atomic.Int32

	mu       sync.RWMutex
	revs     map[string]*revision
	internal map[string]*internalServer // by project
	shared   map[netip.AddrPort]*internalServer
	members  map[string]bool // projects served by the shared listeners

	proxy, proxyH2C *httputil.ReverseProxy
	requests        *prometheus.CounterVec
	ok              prometheus.Counter
	// By revision, with labels project and revision: a series per revision
	// the router serves, removed with it.
	revRequests *prometheus.CounterVec
	revLatency  *prometheus.HistogramVec
	coldStarts  *prometheus.CounterVec
}

type ctxKey struct{}

// New returns a Router with no routes.
func New(cfg Config) *Router {
	if cfg.QueueDepth <= 0 {
		cfg.QueueDepth = 100
	}
	if cfg.Wake == nil {
		cfg.Wake = func(string) {}
	}
	r := &Router{cfg: cfg, log: cfg.Logger.With("component", "router"), revs: map[string]*revision{}, internal: map[string]*internalServer{}, owned: map[string]map[string]Route{},
		shared: map[netip.AddrPort]*internalServer{}, members: map[string]bool{}}
	r.wake.Store(&cfg.Wake)
	empty := map[string]Route{}
	r.routes.Store(&empty)
	r.proxy = r.newProxy(newTransport(false))
	r.proxyH2C = r.newProxy(newTransport(true))
	r.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coligo_router_requests_total", Help: "Requests through the router by status code.",
	}, []string{"code"})
	r.ok = r.requests.WithLabelValues("200")
	labels := []string{"project", "revision"}
	r.revRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coligo_revision_requests_total", Help: "Requests proxied to an instance of a revision.",
	}, labels)
	r.revLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "coligo_revision_request_duration_seconds", Help: "Time from a request's arrival to its response's end, waiting for an instance included.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, labels)
	r.coldStarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coligo_revision_cold_starts_total", Help: "Requests that found no ready instance of a revision and woke one.",
	}, labels)
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(r.requests, r.revRequests, r.revLatency, r.coldStarts, newLoadCollector(r))
	}
	return r
}

// revisionLabels are a revision key's metric labels: its project and name.
func revisionLabels(key string) []string {
	project, name, _ := strings.Cut(key, "/")
	return []string{project, name}
}

func newTransport(h2c bool) *http.Transport {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }

func (r *Router) newProxy(t http.RoundTripper) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport: t,
		// FlushInterval 0: a response of known length goes out in one write;
		// a stream (no Content-Length, or text/event-stream) is flushed on
		// every write, so it reaches the client unbuffered.
		BufferPool: &bufferPool{},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(pr.In.Context().Value(ctxKey{}).(*proxied).b.url)
			pr.Out.Host = pr.In.Host
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if errors.Is(req.Context().Err(), context.DeadlineExceeded) {
				px := req.Context().Value(ctxKey{}).(*proxied)
				timeoutResponse(w, px.timeout, px.owner)
				return
			}
			if errors.Is(err, context.Canceled) {
				return // the client went away
			}
			r.log.Warn("proxy", "host", req.Host, "err", err)
			plain(w, http.StatusBadGateway, "the app's instance did not answer: %v\n", err)
		},
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
}

// SetWake sets the function told when a request waits for a revision with
// no ready instance (the autoscaler's), replacing Config.Wake.
func (r *Router) SetWake(wake func(rev string)) { r.wake.Store(&wake) }

// SetRoutes replaces the apps' routes: host (without port) → route.
func (r *Router) SetRoutes(routes map[string]Route) { r.SetRoutesOf("app", routes) }

// SetRoutesOf replaces one owner's routes (the app controller's, the
// function controller's): host (without port) → route. Where two owners
// route one host, the owner first by name keeps it.
func (r *Router) SetRoutesOf(owner string, routes map[string]Route) {
	r.ownedMu.Lock()
	own := make(map[string]Route, len(routes))
	for h, rt := range routes {
		own[strings.ToLower(h)] = rt
	}
	r.owned[owner] = own
	r.publish()
}

// publish merges every owner's routes and the domains, and reroutes the
// requests waiting for a revision that no longer serves a host. It is
// called with ownedMu held, and lets go of it.
func (r *Router) publish() {
	owners := slices.Sorted(maps.Keys(r.owned))
	m := map[string]Route{}
	served := map[string]bool{}
	for i := len(owners) - 1; i >= 0; i-- {
		for h, rt := range r.owned[owners[i]] {
			m[h] = rt
		}
	}
	for h, target := range r.aliases {
		if rt, ok := m[target]; ok && m[h] == (Route{}) {
			m[h] = Route{Revision: rt.Revision, Public: true, Redirect: rt.Redirect}
		}
	}
	for _, rt := range m {
		served[rt.Revision] = true
	}
	r.routes.Store(&m)
	r.ownedMu.Unlock()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for key, rev := range r.revs {
		if !served[key] {
			rev.reroute()
		}
	}
}

// SetRevision sets how a revision is served and its ready instances. An
// instance left out stops getting new requests; those in flight finish.
func (r *Router) SetRevision(key string, c RevisionConfig, ready []Endpoint) {
	rev := r.revision(key)
	rev.mu.Lock()
	defer rev.mu.Unlock()
	rev.cfg = c
	keep := make([]*backend, 0, len(ready))
	for _, ep := range ready {
		b := rev.all[ep.ID]
		if b == nil || b.addr != ep.Addr {
			if b != nil && b.inflight == 0 {
				b.up.close() // its address changed
			}
			b = &backend{id: ep.ID, addr: ep.Addr, url: &url.URL{Scheme: "http", Host: ep.Addr}, up: &upstream{addr: ep.Addr}}
			rev.all[ep.ID] = b
		}
		keep = append(keep, b)
	}
	rev.ready = keep
	for id, b := range rev.all {
		if b.inflight == 0 && !contains(keep, b) {
			delete(rev.all, id)
			b.up.close()
		}
	}
	rev.dispatch()
}

// RemoveRevision forgets a revision; requests waiting for it get 503.
func (r *Router) RemoveRevision(key string) {
	r.mu.Lock()
	rev := r.revs[key]
	delete(r.revs, key)
	r.mu.Unlock()
	if rev == nil {
		return
	}
	lv := revisionLabels(key)
	r.revRequests.DeleteLabelValues(lv...)
	r.revLatency.DeleteLabelValues(lv...)
	r.coldStarts.DeleteLabelValues(lv...)
	rev.mu.Lock()
	defer rev.mu.Unlock()
	rev.ready = nil
	for id, b := range rev.all {
		if b.inflight == 0 {
			delete(rev.all, id)
			b.up.close()
		}
	}
	for _, w := range rev.waiters {
		close(w.ch)
	}
	rev.waiters = nil
}

// InFlight is the number of requests an instance of a revision is serving.
func (r *Router) InFlight(key, id string) int {
	r.mu.Lock()
	rev := r.revs[key]
	r.mu.Unlock()
	if rev == nil {
		return 0
	}
	rev.mu.Lock()
	defer rev.mu.Unlock()
	if b := rev.all[id]; b != nil {
		return b.inflight
	}
	return 0
}

// Stat is a revision's load since the last call to Stats.
type Stat struct {
	Concurrency float64 // average requests in flight or waiting
	Waiting     bool    // requests wait and no instance is ready
}

// Stats returns and resets the load of every revision of owner ("" for
// apps).
func (r *Router) Stats(owner string) map[string]Stat {
	now := time.Now()
	r.mu.Lock()
	revs := make(map[string]*revision, len(r.revs))
	for k, v := range r.revs {
		revs[k] = v
	}
	r.mu.Unlock()
	out := make(map[string]Stat, len(revs))
	for k, rev := range revs {
		rev.mu.Lock()
		if rev.cfg.Owner != owner {
			rev.mu.Unlock()
			continue
		}
		rev.account(now)
		var avg float64
		if d := now.Sub(rev.since).Seconds(); d > 0 {
			avg = rev.area / d
		}
		rev.area, rev.since = 0, now
		out[k] = Stat{Concurrency: avg, Waiting: len(rev.waiters) > 0 && len(rev.ready) == 0}
		rev.mu.Unlock()
	}
	return out
}

func (r *Router) revision(key string) *revision {
	r.mu.RLock()
	rev := r.revs[key]
	r.mu.RUnlock()
	if rev != nil {
		return rev
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rev = r.revs[key]
	if rev == nil {
		now := time.Now()
		lv := revisionLabels(key)
		rev = &revision{key: key, all: map[string]*backend{}, last: now, since: now, depth: r.cfg.QueueDepth,
			cfg:      RevisionConfig{Concurrency: 100, Timeout: 300 * time.Second},
			requests: r.revRequests.WithLabelValues(lv...), latency: r.revLatency.WithLabelValues(lv...), cold: r.coldStarts.WithLabelValues(lv...)}
		r.revs[key] = rev
	}
	return rev
}

// ServeHTTP routes a request by its Host.
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := strings.ToLower(req.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if r.answerChallenge(w, req) {
		return
	}
	if req.TLS == nil && !r.cfg.HTTPSOff {
		if rt, ok := (*r.routes.Load())[host]; ok && rt.Public && rt.Redirect {
			http.Redirect(w, req, "https://"+host+r.cfg.HTTPSPort+req.URL.RequestURI(), http.StatusPermanentRedirect)
			return
		}
	}
	r.serve(w, req, host, func(rt Route) bool { return rt.Public })
}

// Dispatch serves a request of the platform's own (a subscription's
// event) to an app or a function of project, by its Host: the project's
// own routes, project-only ones included, and no other project's.
func (r *Router) Dispatch(w http.ResponseWriter, req *http.Request, project string) {
	host := strings.ToLower(req.Host)
	r.serve(w, req, host, func(rt Route) bool { return rt.Project == project })
}

// Routes reports whether host is routed for project's own requests
// (Dispatch): whether its app or function is served yet.
func (r *Router) Routes(host, project string) bool {
	_, ok := r.lookup(strings.ToLower(host), func(rt Route) bool { return rt.Project == project })
	return ok
}

// Serves reports whether host is served to the public: whether the router
// has a certificate to make for it.
func (r *Router) Serves(host string) bool {
	_, ok := r.lookup(host, func(rt Route) bool { return rt.Public })
	return ok
}

// lookup returns the revision that serves host to a listener that accepts
// the routes for which ok holds.
func (r *Router) lookup(host string, ok func(Route) bool) (string, bool) {
	rt, found := (*r.routes.Load())[host]
	if !found || !ok(rt) {
		return "", false
	}
	return rt.Revision, true
}

// serve routes a request for host to a ready instance of the revision that
// serves it, waiting for one as long as the request timeout allows. A request
// that waits for a revision that stops serving the host meanwhile follows
// the host to the revision that serves it now.
func (r *Router) serve(w http.ResponseWriter, req *http.Request, host string, accept func(Route) bool) {
	key, ok := r.lookup(host, accept)
	if !ok {
		r.requests.WithLabelValues("404").Inc()
		plain(w, http.StatusNotFound, "no app is served at %s\n", host)
		return
	}
	start := time.Now()
	rev := r.revision(key)
	rev.mu.Lock()
	timeout, owner := rev.cfg.Timeout, rev.cfg.Owner
	rev.mu.Unlock()
	ctx, cancel := context.WithTimeout(req.Context(), timeout)
	defer cancel()
	rev, b, err := r.admit(ctx, rev, host, accept)
	if err != nil {
		if code, msg := refusal(err, timeout, owner, r.cfg.QueueDepth); !errors.Is(ctx.Err(), context.Canceled) {
			r.requests.WithLabelValues(strconv.Itoa(code)).Inc()
			plain(w, code, "%s", msg)
		}
		return
	}
	rev.mu.Lock()
	h2c := rev.cfg.H2C
	rev.mu.Unlock()
	defer rev.release(b)
	sw := &statusWriter{ResponseWriter: w}
	switch {
	case h2c:
		r.proxyH2C.ServeHTTP(sw, req.WithContext(context.WithValue(ctx, ctxKey{}, &proxied{b: b, timeout: timeout, owner: owner})))
	case fastPath(req):
		r.forward(ctx, sw, req, b.up, timeout, owner)
	default:
		r.proxy.ServeHTTP(sw, req.WithContext(context.WithValue(ctx, ctxKey{}, &proxied{b: b, timeout: timeout, owner: owner})))
	}
	r.count(sw.code)
	rev.requests.Inc()
	rev.latency.Observe(time.Since(start).Seconds())
}

// admit returns a backend of rev with room for the request, waiting for one
// as ctx allows; a request that waits for a revision that stops serving
// host meanwhile follows host to the revision that serves it now.
func (r *Router) admit(ctx context.Context, rev *revision, host string, accept func(Route) bool) (*revision, *backend, error) {
	b, err := rev.acquire(ctx, r.waker(rev))
	for tries := 0; errors.Is(err, errReroute) && tries < 10; tries++ {
		key, ok := r.lookup(host, accept)
		if !ok {
			break
		}
		rev = r.revision(key)
		b, err = rev.acquire(ctx, r.waker(rev))
	}
	return rev, b, err
}

// refusal is the status code and text that answer a request admit refused.
func refusal(err error, timeout time.Duration, owner string, depth int) (int, string) {
	switch {
	case errors.Is(err, errReroute):
		return http.StatusServiceUnavailable, "the app's revision changed while the request waited; try again\n"
	case errors.Is(err, errQueueFull):
		return http.StatusServiceUnavailable, fmt.Sprintf("too many requests: every instance is at its concurrency limit and %d requests are waiting\n", depth)
	case errors.Is(err, errGone):
		return http.StatusServiceUnavailable, "the app's revision is going away; try again\n"
	}
	return http.StatusGatewayTimeout, timeoutText(timeout, owner) // the request's time ran out while it waited
}

// waker wakes a revision that has no ready instance for a request, and
// counts the cold start.
func (r *Router) waker(rev *revision) func() {
	return func() {
		rev.cold.Inc()
		(*r.wake.Load())(rev.key)
	}
}

// count counts a response by status code; the counters of the usual codes
// are looked up once.
func (r *Router) count(code int) {
	if code == 0 {
		code = http.StatusOK
	}
	if code == http.StatusOK {
		r.ok.Inc()
		return
	}
	r.requests.WithLabelValues(strconv.Itoa(code)).Inc()
}

// proxied is what the proxy needs to know of a request, in its context.
type proxied struct {
	b       *backend
	timeout time.Duration
	owner   string
}

func timeoutResponse(w http.ResponseWriter, timeout time.Duration, owner string) {
	plain(w, http.StatusGatewayTimeout, "%s", timeoutText(timeout, owner))
}

// timeoutText names the limit a request outlived: an app's
// scale_request_timeout, a function's scale_max_execution_time.
func timeoutText(timeout time.Duration, owner string) string {
	if owner == "function" {
		return fmt.Sprintf("the invocation took longer than the function's scale_max_execution_time (%s)\n", timeout)
	}
	return fmt.Sprintf("the request took longer than the app's scale_request_timeout (%s)\n", timeout)
}

func plain(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format, args...)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
