package apiserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/apphistory"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/console"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/netguard"
	"github.com/coligo/coligo/internal/version"
)

// Store is what the API needs of the store.
type Store interface {
	auth.TokenStore
	CreateProject(ctx context.Context, p core.Project, newSubdomain func() string) (core.Project, error)
	GetProject(ctx context.Context, id string) (core.Project, error)
	ListProjects(ctx context.Context) ([]core.Project, error)
	UpdateProject(ctx context.Context, id string, ifVersion uint64, fn func(*core.Project) error) (core.Project, error)
	Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
	CreateUnique(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
	HeldElsewhere(ctx context.Context, ref core.Ref) (bool, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	Delete(ctx context.Context, ref core.Ref) error
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	ListTokens(ctx context.Context) ([]core.Token, error)
	DeleteToken(ctx context.Context, id string) error
	Ping(ctx context.Context) error
	AppendAudit(ctx context.Context, ev core.AuditEvent, name string) error
	VerifyAudit(ctx context.Context) (core.AuditReport, error)
	Backup(ctx context.Context, w io.Writer, size func(int64)) (int64, error)
	BeginDEKRotation(ctx context.Context, projectID string) (bool, error)
	ListAudit(ctx context.Context, project string, after uint64, limit int) ([]core.AuditEvent, bool, error)
	AuditTarget(ctx context.Context, ev core.AuditEvent) (string, error)
}

// Quotas caps what a project or the server holds; 0 means no cap.
type Quotas struct {
	Projects   int
	Secrets    int
	ConfigMaps int
	Jobs       int
	JobRuns    int
	Apps       int
}

// LogReader reads an instance's logs; the engine implements it. Reading logs
// is the one call of the API that reaches past the store.
type LogReader interface {
	Logs(ctx context.Context, project, id string, w io.Writer, opts engine.LogOptions) error
}

// Config configures the API.
type Config struct {
	Store        Store
	Logger       *slog.Logger
	Registry     *prometheus.Registry // where request metrics go; /metrics serves it
	Region       string
	AccountID    string
	KeyProviders []string // names of configured key providers; the first is the default
	// KeyStatus reports a provider's current key id and whether it is a KMS
	// provider; nil when there are none.
	KeyStatus func(ctx context.Context, provider string) (keyID string, kms bool, err error)
	// KeyHealth reports each provider's health for /readyz ("ok" or why not).
	KeyHealth func() map[string]string
	// RotateRootKey gives a provider's root key a new version.
	RotateRootKey func(ctx context.Context, provider string) (keyID string, err error)
	// KeyRotated is told when a project's data key rotation began.
	KeyRotated          func()
	SoftDeleteRetention time.Duration
	Quotas              Quotas
	Now                 func() time.Time
	BaseURL             string // CE_API_BASE_URL, e.g. http://127.0.0.1:7070/v2
	Domain              string // CE_DOMAIN
	ACME                bool   // domain mappings without a TLS secret get a certificate by ACME
	// CronSeconds takes cron schedules with a leading seconds field (a test
	// aid, --cron-seconds).
	CronSeconds bool
	// ComputeTokens checks the compute resource tokens of instances; nil
	// when the server issues none.
	ComputeTokens *computetoken.Keys
	// ObjectStorage maps each bucket_location to the URL of its
	// S3-compatible object store (--object-storage).
	ObjectStorage map[string]string
	Logs          LogReader   // nil when no engine is configured
	Apps          AppObserver // nil when no engine is configured
	// Functions tells of functions' instances; nil when no function
	// controller runs.
	Functions FunctionObserver
	// FunctionRuntimes are the runtimes functions may use; none when no
	// function controller runs.
	FunctionRuntimes []api.FunctionRuntime
	// EngineStatus is nil when the configured engine is connected, else
	// why not; nil when no engine is configured.
	EngineStatus func() error
	RouterPort   string // ":8080" as app URLs show it; "" for port 80
	// BuildRuns tells of build runs' progress; nil when no builder runs.
	BuildRuns BuildRunObserver
	// InsecureGitHosts are the Git hosts (host:port) a build may fetch from
	// over plain HTTP, and on this machine (--insecure-git-host).
	InsecureGitHosts []string
	// Registries decides which registries an image_reference may name: not
	// this host or the link-local range, unless allowed (--insecure-registry).
	Registries *netguard.Guard
	// EgressIPs lists the source addresses of instances' outbound traffic
	// (nil: unknown).
	EgressIPs func() []netip.Addr
	// Console holds the web console's sessions; nil serves no console.
	Console *console.Sessions
	// Invoke serves a request of the platform's own to an app or function
	// of a project (the router's Dispatch); nil serves no invocations.
	Invoke func(w http.ResponseWriter, req *http.Request, project string)
	// AppHistory has each app's load over the last hour; nil when no
	// engine is configured.
	AppHistory *apphistory.History
}

// API serves /v2 and the health endpoints.
type API struct {
	// linkBase is where clients reach the API (--external-url, else the
	// listen address): every href starts with it, never with the
	// request's Host header, which the client chooses.
	linkBase string
	followMu sync.Mutex
	follows  map[string]int // open follow streams by token id
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// MaxBodyBytes caps a request body.
const MaxBodyBytes = 2 << 20

// WriteTimeout is how long the server may take to answer a request; only a
// followed log stream, which lifts it for its own response, takes longer.
const WriteTimeout = 60 * time.Second

// MaxFollowsPerToken caps the log streams one token may follow at once: each
// holds a connection and a reader of the engine for as long as it lasts.
const MaxFollowsPerToken = 4

// New builds the API handler.
func New(cfg Config) *API {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registries == nil {
		cfg.Registries = &netguard.Guard{}
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "api"), mux: http.NewServeMux(), follows: map[string]int{},
		linkBase: strings.TrimSuffix(cfg.BaseURL, "/v2")}
	a.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coligo_api_requests_total", Help: "API requests by method and route (as the route table names them; \"other\" for none) and status code.",
	}, []string{"method", "route", "code"})
	a.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "coligo_api_request_duration_seconds", Help: "API request latency by route and method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"method", "route"})
	cfg.Registry.MustRegister(a.requests, a.latency)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "coligo_build_info", Help: "The build of coligo that serves: always 1."}, []string{"version", "go_version"})
	buildInfo.WithLabelValues(version.String(), version.Go()).Set(1)
	cfg.Registry.MustRegister(buildInfo)

	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	a.handle("GET /readyz", a.readyz, false)
	a.handle("GET /metrics", a.metrics(promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{})), true)

	a.handle("GET /v2/info", a.info, true)
	a.handle("GET /v2/projects", a.listProjects, true)
	a.handle("POST /v2/projects", a.createProject, true)
	a.handle("GET /v2/projects/{project}", a.getProject, true)
	a.handle("DELETE /v2/projects/{project}", a.deleteProject, true)
	a.handle("POST /v2/projects/{project}/restore", a.restoreProject, true)
	a.handle("POST /v2/projects/{project}/rotate_key", a.rotateProjectKey, true)
	a.handle("GET /v2/projects/{project}/status_details", a.projectStatusDetails, true)

	a.handle("GET /v2/projects/{project}/allowed_outbound_destinations", a.listEgress, true)
	a.handle("POST /v2/projects/{project}/allowed_outbound_destinations", a.createEgress, true)
	a.handle("GET /v2/projects/{project}/allowed_outbound_destinations/{name}", a.getEgress, true)
	a.handle("PATCH /v2/projects/{project}/allowed_outbound_destinations/{name}", a.updateEgress, true)
	a.handle("DELETE /v2/projects/{project}/allowed_outbound_destinations/{name}", a.deleteEgress, true)
	a.handle("GET /v2/projects/{project}/egress_ips", a.egressIPs, true)
	a.handle("GET /v2/function_runtimes", a.listFunctionRuntimes, true)
	a.handle("GET /v2/projects/{project}/functions", a.listFunctions, true)
	a.handle("POST /v2/projects/{project}/functions", a.createFunction, true)
	a.handle("GET /v2/projects/{project}/functions/{name}", a.getFunction, true)
	a.handle("PATCH /v2/projects/{project}/functions/{name}", a.updateFunction, true)
	a.handle("DELETE /v2/projects/{project}/functions/{name}", a.deleteFunction, true)
	a.handle("GET /v2/projects/{project}/functions/{name}/logs", a.functionLogs, true)
	a.handle("POST /v2/projects/{project}/functions/{name}/invoke", a.invokeFunction, true)
	a.handle("GET /v2/projects/{project}/subscriptions/cron", a.listCronSubscriptions, true)
	a.handle("POST /v2/projects/{project}/subscriptions/cron", a.createCronSubscription, true)
	a.handle("GET /v2/projects/{project}/subscriptions/cron/{name}", a.getCronSubscription, true)
	a.handle("PATCH /v2/projects/{project}/subscriptions/cron/{name}", a.updateCronSubscription, true)
	a.handle("DELETE /v2/projects/{project}/subscriptions/cron/{name}", a.deleteCronSubscription, true)
	a.handle("GET /v2/projects/{project}/persistent_data_stores", a.listDataStores, true)
	a.handle("POST /v2/projects/{project}/persistent_data_stores", a.createDataStore, true)
	a.handle("GET /v2/projects/{project}/persistent_data_stores/{name}", a.getDataStore, true)
	a.handle("DELETE /v2/projects/{project}/persistent_data_stores/{name}", a.deleteDataStore, true)
	a.handle("GET /v2/projects/{project}/domain_mappings", a.listDomainMappings, true)
	a.handle("POST /v2/projects/{project}/domain_mappings", a.createDomainMapping, true)
	a.handle("GET /v2/projects/{project}/domain_mappings/{name}", a.getDomainMapping, true)
	a.handle("PATCH /v2/projects/{project}/domain_mappings/{name}", a.updateDomainMapping, true)
	a.handle("DELETE /v2/projects/{project}/domain_mappings/{name}", a.deleteDomainMapping, true)
	a.handle("GET /v2/projects/{project}/bindings", a.listBindings, true)
	a.handle("POST /v2/projects/{project}/bindings", a.createBinding, true)
	a.handle("GET /v2/projects/{project}/bindings/{name}", a.getBinding, true)
	a.handle("DELETE /v2/projects/{project}/bindings/{name}", a.deleteBinding, true)
	a.handle("GET /v2/projects/{project}/builds", a.listBuilds, true)
	a.handle("POST /v2/projects/{project}/builds", a.createBuild, true)
	a.handle("GET /v2/projects/{project}/builds/{name}", a.getBuild, true)
	a.handle("PATCH /v2/projects/{project}/builds/{name}", a.updateBuild, true)
	a.handle("DELETE /v2/projects/{project}/builds/{name}", a.deleteBuild, true)
	a.handle("GET /v2/projects/{project}/build_runs", a.listBuildRuns, true)
	a.handle("POST /v2/projects/{project}/build_runs", a.createBuildRun, true)
	a.handle("GET /v2/projects/{project}/build_runs/{name}", a.getBuildRun, true)
	a.handle("DELETE /v2/projects/{project}/build_runs/{name}", a.deleteBuildRun, true)
	a.handle("POST /v2/projects/{project}/build_runs/{name}/cancel", a.cancelBuildRun, true)
	a.handle("GET /v2/projects/{project}/build_runs/{name}/logs", a.buildRunLogs, true)

	a.handle("GET /v2/projects/{project}/secrets", a.listSecrets, true)
	a.handle("POST /v2/projects/{project}/secrets", a.createSecret, true)
	a.handle("GET /v2/projects/{project}/secrets/{name}", a.getSecret, true)
	a.handle("PUT /v2/projects/{project}/secrets/{name}", a.replaceSecret, true)
	a.handle("DELETE /v2/projects/{project}/secrets/{name}", a.deleteSecret, true)

	a.handle("GET /v2/projects/{project}/config_maps", a.listConfigMaps, true)
	a.handle("POST /v2/projects/{project}/config_maps", a.createConfigMap, true)
	a.handle("GET /v2/projects/{project}/config_maps/{name}", a.getConfigMap, true)
	a.handle("PUT /v2/projects/{project}/config_maps/{name}", a.replaceConfigMap, true)
	a.handle("DELETE /v2/projects/{project}/config_maps/{name}", a.deleteConfigMap, true)

	a.handle("GET /v2/projects/{project}/jobs", a.listJobs, true)
	a.handle("POST /v2/projects/{project}/jobs", a.createJob, true)
	a.handle("GET /v2/projects/{project}/jobs/{name}", a.getJob, true)
	a.handle("PATCH /v2/projects/{project}/jobs/{name}", a.updateJob, true)
	a.handle("DELETE /v2/projects/{project}/jobs/{name}", a.deleteJob, true)

	a.handle("GET /v2/projects/{project}/job_runs", a.listJobRuns, true)
	a.handle("POST /v2/projects/{project}/job_runs", a.createJobRun, true)
	a.handle("GET /v2/projects/{project}/job_runs/{name}", a.getJobRun, true)
	a.handle("DELETE /v2/projects/{project}/job_runs/{name}", a.deleteJobRun, true)
	a.handle("GET /v2/projects/{project}/job_runs/{name}/logs", a.jobRunLogs, true)

	a.handle("GET /v2/projects/{project}/apps", a.listApps, true)
	a.handle("POST /v2/projects/{project}/apps", a.createApp, true)
	a.handle("GET /v2/projects/{project}/apps/{name}", a.getApp, true)
	a.handle("PATCH /v2/projects/{project}/apps/{name}", a.updateApp, true)
	a.handle("DELETE /v2/projects/{project}/apps/{name}", a.deleteApp, true)
	a.handle("GET /v2/projects/{project}/apps/{app}/revisions", a.listRevisions, true)
	a.handle("GET /v2/projects/{project}/apps/{app}/revisions/{name}", a.getRevision, true)
	a.handle("DELETE /v2/projects/{project}/apps/{app}/revisions/{name}", a.deleteRevision, true)
	a.handle("GET /v2/projects/{project}/apps/{app}/instances", a.listInstances, true)
	a.handle("GET /v2/projects/{project}/apps/{app}/logs", a.appLogs, true)
	a.handle("GET /v2/projects/{project}/apps/{app}/metrics", a.appMetrics, true)

	a.handle("GET /v2/audit_events", a.listAuditEvents, true)
	a.handle("GET /v2/audit_events/verify", a.verifyAuditEvents, true)
	a.handle("GET /v2/admin/backup", a.backup, true)
	a.handle("POST /v2/key_providers/{name}/rotate", a.rotateRootKey, true)
	a.handle("GET /v2/tokens", a.listTokens, true)
	a.handle("POST /v2/tokens", a.createToken, true)
	a.handle("DELETE /v2/tokens/{id}", a.revokeToken, true)
	a.handle(iamRoute, a.iamToken, false)
	if cfg.Console != nil {
		a.mux.Handle("GET "+console.Prefix, console.Handler())
		a.mux.Handle("GET /console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently))
		a.handle(consoleLoginRoute, a.consoleLogin, false)
		a.handle("GET /console/session", a.consoleSession, true)
		a.handle("DELETE /console/session", a.consoleLogout, true)
	}

	a.handle("/", func(w http.ResponseWriter, r *http.Request) error {
		if allow := a.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed",
				msg: fmt.Sprintf("%s is not allowed on %s; %s are", r.Method, r.URL.Path, strings.Join(allow, ", "))}
		}
		return &apiError{status: http.StatusNotFound, code: "resource_not_found", msg: fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path)}
	}, true)
	return a
}

// allowed lists the methods that have a route for r's path.
func (a *API) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host}
		if _, pattern := a.mux.Handler(probe); pattern != "/" && pattern != "" {
			out = append(out, m)
		}
	}
	return out
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

type principalKey struct{}

func principal(r *http.Request) auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(auth.Principal)
	return p
}

// statusWriter records the status code a handler wrote.
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

// Unwrap lets http.ResponseController reach the connection's deadlines.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush lets streamed answers (followed logs) through.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// handle registers h with tracing, metrics, a body limit, authentication
// (when authn is set) and the error mapping.
func (a *API) handle(pattern string, h func(http.ResponseWriter, *http.Request) error, authn bool) {
	method, route := routeLabels(pattern)
	_, audited := auditRoutes[pattern]
	if mutating := method != "GET" && method != "HEAD" && method != "other"; mutating != (audited || pattern == iamRoute || pattern == consoleLoginRoute) || audited && !authn {
		panic("apiserver: route " + pattern + " must be in auditRoutes exactly when it changes something, and authenticated")
	}
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		trace := newTrace()
		w.Header().Set("X-Request-Id", trace) // the trace of the server's log line and of error bodies
		// With tracing on (--otlp-endpoint), the request's span carries the
		// request id; without, this is a no-op.
		oteltrace.SpanFromContext(r.Context()).SetAttributes(attribute.String("coligo.request_id", trace))
		sw := &statusWriter{ResponseWriter: w}
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBodyBytes)
		var p auth.Principal
		authenticated := false
		n := &auditNote{}
		err := func() error {
			if !authn {
				return h(sw, r)
			}
			var err error
			if p, err = a.authenticate(r); err != nil {
				return err
			}
			authenticated = true
			ctx := context.WithValue(r.Context(), principalKey{}, p)
			if audited {
				ctx = context.WithValue(ctx, auditNoteKey{}, n)
			}
			r = r.WithContext(ctx)
			return h(sw, r)
		}()
		if err != nil {
			a.writeError(sw, r, trace, err)
		}
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		// Calls nobody authenticated leave no event: anyone could fill the
		// log with them. They are counted in the metrics and logged. The
		// answer goes out first: the call's effect is committed already, and
		// a controller acting on it must not race the caller's answer.
		if audited && authenticated {
			sw.Flush()
			a.recordCall(r, pattern, p, n, code, trace)
		}
		a.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
		a.latency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		a.log.Debug("request", "method", method, "route", route, "code", code, "trace", trace, "duration", time.Since(start))
	})
}

// routeLabels are the metric labels of pattern: its method and its path as
// the route table spells them, never what the client sent, so that the
// number of series is fixed by the table. The catch-all is "other".
func routeLabels(pattern string) (method, route string) {
	method, route, ok := strings.Cut(pattern, " ")
	if !ok {
		return "other", "other" // the catch-all "/"
	}
	return method, route
}

// stream readies a log response: a followed one takes one of the token's
// MaxFollowsPerToken slots (429 when none is free) and lifts the
// connection's deadlines, which would otherwise end it. release gives the
// slot back.
func (a *API) stream(w http.ResponseWriter, r *http.Request, follow bool) (release func(), err error) {
	if !follow {
		return func() {}, nil
	}
	tok := principal(r).TokenID
	a.followMu.Lock()
	if a.follows[tok] >= MaxFollowsPerToken {
		a.followMu.Unlock()
		return nil, &apiError{status: http.StatusTooManyRequests, code: "too_many_requests",
			msg: fmt.Sprintf("this token already follows %d log streams; end one first", MaxFollowsPerToken)}
	}
	a.follows[tok]++
	a.followMu.Unlock()
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	return func() {
		a.followMu.Lock()
		if a.follows[tok]--; a.follows[tok] == 0 {
			delete(a.follows, tok)
		}
		a.followMu.Unlock()
	}, nil
}

func newTrace() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "coligo-" + hex.EncodeToString(b)
}

// info says which build serves (any valid token).
func (a *API) info(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Info{Version: version.String(), GoVersion: version.Go()})
	return nil
}

// readyz answers 200 when the store serves and the configured engine is
// connected (503 while it is not: the API serves, workloads wait). To an
// admin token it also lists each key provider's health (a provider that is
// down makes only its projects unavailable, 503 key_unavailable, not the
// server) and why the engine is not connected; anyone else learns the
// status only, not the providers, key ids or their errors.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := a.cfg.Store.Ping(r.Context()); err != nil {
		return fmt.Errorf("store: %w", core.ErrUnavailable)
	}
	admin := false
	if h := r.Header.Get("Authorization"); h != "" {
		p, err := auth.Authenticate(r.Context(), a.tokens(), h)
		admin = err == nil && p.Admin()
	}
	if a.cfg.EngineStatus != nil {
		if err := a.cfg.EngineStatus(); err != nil {
			if admin {
				// The operator's view: why (a socket path, a cluster error).
				return fmt.Errorf("engine not connected (%v): %w", err, core.ErrUnavailable)
			}
			return fmt.Errorf("engine not connected: %w", core.ErrUnavailable)
		}
	}
	var b strings.Builder
	b.WriteString("ok\n")
	if admin && a.cfg.KeyHealth != nil {
		health := a.cfg.KeyHealth()
		names := make([]string, 0, len(health))
		for n := range health {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(&b, "key provider %s: %s\n", n, health[n])
		}
	}
	_, err := w.Write([]byte(b.String()))
	return err
}

func (a *API) metrics(h http.Handler) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !principal(r).Admin() {
			return fmt.Errorf("metrics need an admin token: %w", core.ErrForbidden)
		}
		h.ServeHTTP(w, r)
		return nil
	}
}

// apiError is an error with its wire form decided where it arises.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

var errPreconditionRequired = &apiError{status: http.StatusPreconditionRequired, code: "precondition_required", msg: "If-Match header is required; send the entity_tag of the resource, or * to match any"}

// writeError maps an error to its status code and body: the one place that
// does. Unexpected errors are logged with the trace and answered with 500 and
// a message that reveals nothing but the trace.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, trace string, err error) {
	status, code, msg := http.StatusInternalServerError, "internal_error", "internal error; an operator can find it in the server log by the trace id"
	var ae *apiError
	var fe *core.FieldError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.status, ae.code, ae.msg
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.As(err, &fe):
		status, code, msg = http.StatusBadRequest, "invalid_"+fieldCode(fe.Field), fe.Error()
	case errors.Is(err, core.ErrInvalid):
		status, code, msg = http.StatusBadRequest, "bad_request", err.Error()
	case errors.Is(err, core.ErrUnauthenticated):
		status, code, msg = http.StatusUnauthorized, "unauthorized", err.Error()
	case errors.Is(err, core.ErrForbidden):
		status, code, msg = http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, core.ErrNotFound):
		status, code, msg = http.StatusNotFound, "resource_not_found", notFoundMessage(r, err)
	case errors.Is(err, core.ErrExists):
		status, code, msg = http.StatusConflict, "resource_already_exists", err.Error()
	case errors.Is(err, core.ErrConflict):
		status, code, msg = http.StatusPreconditionFailed, "entity_tag_mismatch", "If-Match does not match the current entity_tag; get the resource again and retry"
	case errors.Is(err, core.ErrNotActive):
		status, code, msg = http.StatusConflict, "project_not_active", err.Error()
	case errors.Is(err, core.ErrQuota):
		status, code, msg = http.StatusUnprocessableEntity, "quota_exceeded", err.Error()
	case errors.Is(err, core.ErrKeyUnavailable):
		status, code, msg = http.StatusServiceUnavailable, "key_unavailable", err.Error()
	case errors.Is(err, core.ErrUnavailable):
		status, code, msg = http.StatusServiceUnavailable, "service_unavailable", err.Error()
	}
	if status == http.StatusInternalServerError {
		a.log.Error("request failed", "method", r.Method, "route", r.Pattern, "trace", trace, "err", err)
	}
	writeJSON(w, status, errorBody(status, code, msg, trace))
}

func isNotFound(err error) bool { return errors.Is(err, core.ErrNotFound) }

// notFoundMessage names what was not found: what the error says when it
// says more than that, else the resource of the route, with the name the
// request gave (clipped).
func notFoundMessage(r *http.Request, err error) string {
	if msg := err.Error(); msg != core.ErrNotFound.Error() {
		return msg
	}
	_, route := routeLabels(r.Pattern)
	segs := strings.Split(strings.Trim(route, "/"), "/")
	for i := len(segs) - 1; i > 0; i-- {
		wild, ok := strings.CutPrefix(segs[i], "{")
		if !ok {
			continue
		}
		kind := strings.TrimSuffix(segs[i-1], "s")
		name := r.PathValue(strings.TrimSuffix(wild, "}"))
		if p := r.PathValue("project"); p != "" && kind != "project" {
			return fmt.Sprintf("%s %q not found in project %s", kind, clipTag(name), clipTag(p))
		}
		return fmt.Sprintf("%s %q not found", kind, clipTag(name))
	}
	return "resource not found"
}

func fieldCode(field string) string {
	b := []byte(field)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// tokens is what authenticates requests: the store's tokens, and the
// compute resource tokens of instances.
func (a *API) tokens() auth.TokenStore {
	if a.cfg.ComputeTokens == nil {
		return a.cfg.Store
	}
	return struct {
		Store
		*computetoken.Keys
	}{a.cfg.Store, a.cfg.ComputeTokens}
}
