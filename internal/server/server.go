package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/coligo/coligo/internal/acmecert"
	"github.com/coligo/coligo/internal/apiserver"
	"github.com/coligo/coligo/internal/apphistory"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/builder"
	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/config"
	"github.com/coligo/coligo/internal/console"
	"github.com/coligo/coligo/internal/controller/app"
	"github.com/coligo/coligo/internal/controller/buildrun"
	"github.com/coligo/coligo/internal/controller/cron"
	"github.com/coligo/coligo/internal/controller/domain"
	"github.com/coligo/coligo/internal/controller/egress"
	"github.com/coligo/coligo/internal/controller/function"
	"github.com/coligo/coligo/internal/controller/jobrun"
	keyctl "github.com/coligo/coligo/internal/controller/keys"
	"github.com/coligo/coligo/internal/controller/project"
	"github.com/coligo/coligo/internal/controller/tokenrefresh"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/local"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/keys"
	"github.com/coligo/coligo/internal/localca"
	"github.com/coligo/coligo/internal/netguard"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/regclient"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/tracing"
	"github.com/coligo/coligo/internal/version"
)

// Files in the data dir.
const (
	StoreFile      = "coligo.db"
	RootKeyFile    = "root.key"
	RootKeyArchive = "root-keys" // root key versions replaced by a rotation
	AuditKeyFile   = "audit.key" // keys the audit log's name hashes and anchors
	AdminToken     = "admin.token"
	selfCertFile   = "tls.crt"
	selfKeyFile    = "tls.key"
	// acmeAccountKeyFile is the server's ACME account key (0600).
	acmeAccountKeyFile = "acme-account.key"
)

// Run runs the server until ctx ends, then shuts down gracefully: in-flight
// requests finish, controllers stop, the store closes.
func Run(ctx context.Context, cfg config.Server, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("restrict data dir: %w", err)
	}
	keyFile, create := cfg.RootKeyFile, false
	if keyFile == "" {
		keyFile, create = filepath.Join(cfg.DataDir, RootKeyFile), true
	}
	if cfg.Restore != "" {
		// A new root key could open nothing of the backup.
		if _, err := os.Stat(keyFile); err != nil {
			return fmt.Errorf("--restore needs the root key of the backup's server at %s (or --root-key-file): %w", keyFile, err)
		}
		if err := store.Restore(cfg.Restore, filepath.Join(cfg.DataDir, StoreFile)); err != nil {
			return err
		}
		log.Info("store restored from a backup", "backup", cfg.Restore)
	}
	root, err := keys.LoadOrCreateLocal(keyFile, filepath.Join(cfg.DataDir, RootKeyArchive), create)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	storeLatency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "coligo_store_operation_duration_seconds", Help: "Store operation latency by operation.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
	}, []string{"op"})
	reg.MustRegister(storeLatency, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "coligo_store_size_bytes", Help: "Size of the store file (coligo.db).",
	}, func() float64 {
		st, err := os.Stat(filepath.Join(cfg.DataDir, StoreFile))
		if err != nil {
			return 0
		}
		return float64(st.Size())
	}))

	providers, err := newKeyProviders(root, cfg.KMSProviders, cfg.DefaultKeyProvider, reg, log)
	if err != nil {
		return err
	}
	defer providers.close()
	providers.check(ctx)
	auditKeyFile := cfg.AuditKeyFile
	if auditKeyFile == "" {
		auditKeyFile = filepath.Join(cfg.DataDir, AuditKeyFile)
	}
	auditKey, err := keys.LoadOrCreateKey(auditKeyFile, 32)
	if err != nil {
		return fmt.Errorf("audit key (--audit-key-file): %w", err)
	}
	db, err := store.Open(filepath.Join(cfg.DataDir, StoreFile), providers.sealer(), store.Options{
		Observe:  func(op string, d time.Duration) { storeLatency.WithLabelValues(op).Observe(d.Seconds()) },
		AuditKey: auditKey,
	})
	clear(auditKey) // the store keeps only keys derived from it
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Error("close store", "err", err)
		}
		log.Info("store closed")
	}()
	providers.audit = func(ev core.AuditEvent) {
		if err := db.AppendAudit(context.WithoutCancel(ctx), ev, ""); err != nil {
			log.Warn("record audit event", "action", ev.Action, "err", err)
		}
	}
	if err := ensureAdminToken(ctx, db, filepath.Join(cfg.DataDir, AdminToken), log); err != nil {
		return err
	}

	var link *engineLink // nil: no engine configured
	var functions *functionRuntimes
	if cfg.Engine == "kubernetes" || cfg.ContainerdAddress != "" {
		engCfg := cfg
		// Functions run from runtime images coligo's own registry serves
		// the engine (on Kubernetes, its nodes: --function-registry-addr).
		if functions, err = startFunctionRuntimes(ctx, cfg.FunctionRegistryAddr, cfg.FunctionRuntimes, log); err != nil {
			return err
		}
		if functions != nil {
			defer functions.close()
			engCfg.InsecureRegistries = append(slices.Clone(cfg.InsecureRegistries), functions.reg.Addr())
		}
		link = newEngineLink(engCfg, log)
		defer link.close()
	} else {
		log.Warn("no --containerd-address: running without an engine; workloads will wait")
	}
	scheme := "http"
	if cfg.TLS() {
		scheme = "https"
	}
	computeTokens := computetoken.NewKeys(db)
	objectStores, err := cfg.ObjectStores()
	if err != nil {
		return err
	}
	apiCfg := apiserver.Config{
		Store: db, Logger: log, Registry: reg, Region: cfg.Region, AccountID: cfg.AccountID,
		KeyProviders: providers.order, KeyStatus: providers.status, KeyHealth: providers.healthMap, SoftDeleteRetention: cfg.SoftDeleteRetention,
		Quotas: apiserver.Quotas{Projects: cfg.MaxProjects, Secrets: cfg.MaxSecrets, ConfigMaps: cfg.MaxConfigMaps,
			Jobs: cfg.MaxJobs, JobRuns: cfg.MaxJobRuns, Apps: cfg.MaxApps},
		Domain:           cfg.Domain,
		ObjectStorage:    objectStores,
		ComputeTokens:    computeTokens,
		CronSeconds:      cfg.CronSeconds,
		Registries:       &netguard.Guard{Allow: cfg.InsecureRegistries},
		InsecureGitHosts: cfg.InsecureGitHosts,
		EgressIPs:        defaultRouteAddrs,
		Console:          console.NewSessions(cfg.ConsoleSessionLife, nil),
	}
	if functions != nil {
		apiCfg.FunctionRuntimes = functions.api()
		apiCfg.Functions = functions
	}
	quotas := quota.NewLedger(cfg.Quota()) // apps, job runs and build runs share each project's quota
	var builds *buildrun.Controller
	if cfg.BuildKitAddress != "" {
		if cfg.BuildKitBridge != "" {
			if err := local.FenceBuildNetwork(cfg.BuildKitBridge); err != nil {
				return err
			}
		} else {
			log.Warn("build steps reach the network as buildkitd lets them: name its bridge with --buildkit-bridge for coligo to fence it")
		}
		sources := regclient.New(cfg.InsecureRegistries)
		builds = buildrun.New(buildrun.Config{Store: db, Logger: log, Quota: quotas,
			Builder: &builder.Builder{Address: cfg.BuildKitAddress, Insecure: cfg.InsecureRegistries, Logger: log, CgroupParent: cfg.BuildKitCgroup},
			FetchSource: func(ctx context.Context, ref string, auth *engine.RegistryAuth) (map[string][]byte, error) {
				f, err := bundle.Fetch(ctx, sources, ref, auth, bundle.Source)
				return f.Files, err
			},
			DeleteSource: sources.Delete,
			CheckSource: func(ctx context.Context, url string) error {
				return (&netguard.Guard{Allow: cfg.InsecureGitHosts}).CheckResolved(ctx, core.GitHost(url))
			}})
		apiCfg.BuildRuns = builds
	}
	rcfg := router.Config{QueueDepth: cfg.RouterQueueDepth, Logger: log, Registry: reg, HTTPSOff: cfg.RouterTLSAddr == ""}
	if _, port, err := net.SplitHostPort(cfg.RouterTLSAddr); err == nil && port != "443" {
		rcfg.HTTPSPort = ":" + port
	}
	if link != nil {
		apiCfg.Logs, apiCfg.Apps, apiCfg.EngineStatus = link, link, link.status
		apiCfg.AppHistory = apphistory.New(cfg.AppHistoryInterval)
		if cfg.Engine == "kubernetes" {
			rcfg.ProjectOf = link.ProjectOf // projects share the cluster's pod network
		}
	}
	rt := router.New(rcfg)
	apiCfg.Invoke = rt.Dispatch
	routerLn, err := net.Listen("tcp", cfg.RouterAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (--router-addr): %w", cfg.RouterAddr, err)
	}
	defer routerLn.Close()
	if _, port, _ := net.SplitHostPort(routerLn.Addr().String()); port != "80" {
		apiCfg.RouterPort = ":" + port
	}
	var issuer *acmecert.Issuer
	if cfg.ACMEDirectory != "" {
		if issuer, err = acmecert.New(acmecert.Config{Directory: cfg.ACMEDirectory, CAFile: cfg.ACMECAFile, Email: cfg.ACMEEmail,
			AccountKeyFile: filepath.Join(cfg.DataDir, acmeAccountKeyFile), Challenges: rt, Logger: log}); err != nil {
			return err
		}
		apiCfg.ACME = true
	}
	var routerTLSLn net.Listener
	var routerTLS *tls.Config
	if cfg.RouterTLSAddr != "" {
		if routerTLS, err = routerTLSConfig(cfg, rt, log); err != nil {
			return err
		}
		if routerTLSLn, err = net.Listen("tcp", cfg.RouterTLSAddr); err != nil {
			return fmt.Errorf("listen on %s (--router-tls-addr): %w", cfg.RouterTLSAddr, err)
		}
		defer routerTLSLn.Close()
	}
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.APIAddr, err)
	}
	if cfg.TLS() {
		tc, err := tlsConfig(cfg, log)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	external := strings.TrimSuffix(cfg.ExternalURL, "/")
	if external == "" {
		external = scheme + "://" + ln.Addr().String()
	}
	apiCfg.BaseURL = external + "/v2"
	platform := core.Platform{Region: cfg.Region, Domain: cfg.Domain, BaseURL: apiCfg.BaseURL}
	rewrap := keyctl.New(keyctl.Config{Store: db, Logger: log, Every: cfg.KeyCheckInterval, Failpoint: os.Getenv("COLIGO_FAILPOINT"),
		Retire: func(_ string, inUse map[string]bool) ([]string, error) { return root.Retire(inUse) }})
	apiCfg.RotateRootKey = func(ctx context.Context, provider string) (string, error) {
		id, err := providers.rotate(provider)
		if err == nil {
			rewrap.Kick()
		}
		return id, err
	}
	apiCfg.KeyRotated = rewrap.Kick
	var handler, routerHandler http.Handler = apiserver.New(apiCfg), rt
	if cfg.OTLPEndpoint != "" {
		stopTracing, err := tracing.Start(ctx, cfg.OTLPEndpoint, version.String())
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := stopTracing(sctx); err != nil {
				log.Warn("flush traces", "err", err)
			}
		}()
		handler, routerHandler = tracing.Handler(handler, "api"), tracing.Handler(routerHandler, "router")
		log.Info("tracing requests", "otlp_endpoint", cfg.OTLPEndpoint)
	}
	// Every connection has a deadline: a client cannot hold one open by
	// sending slowly or not at all. Followed logs lift the write deadline of
	// their own response (apiserver), and nothing else streams.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: apiserver.WriteTimeout, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ctrlCtx, stopCtrl := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	pcfg := project.Config{
		Store: db, Logger: log, Resync: reaperInterval(cfg.SoftDeleteRetention),
		Failpoint: os.Getenv("COLIGO_FAILPOINT"),
	}
	if link != nil {
		pcfg.Engine = link // a hard delete waits for the engine
		wg.Go(func() {
			if eng := link.connect(ctrlCtx); eng != nil {
				runWorkloads(ctrlCtx, eng, link, workloadConfig{cfg: cfg, db: db, rt: rt, log: log, reg: reg, platform: platform, functions: functions, quotas: quotas,
					objectStores: objectStores, computeTokens: computeTokens})
			}
		})
	} else {
		wg.Go(func() { egress.New(egress.Config{Store: db, Logger: log}).Run(ctrlCtx) })
	}
	wg.Go(func() { project.New(pcfg).Run(ctrlCtx) })
	if h := apiCfg.AppHistory; h != nil {
		wg.Go(func() { h.Run(ctrlCtx, reg, log) })
	}
	dcfg := domain.Config{Store: db, Router: rt, Domain: cfg.Domain, Logger: log}
	if issuer != nil {
		dcfg.ACME = issuer
	}
	wg.Go(func() { domain.New(dcfg).Run(ctrlCtx) })
	wg.Go(func() {
		cron.New(cron.Config{Store: db, Router: rt, Domain: cfg.Domain, Logger: log, Seconds: cfg.CronSeconds, MaxJobRuns: cfg.MaxJobRuns,
			Failpoint: os.Getenv("COLIGO_FAILPOINT")}).Run(ctrlCtx)
	})
	if builds != nil {
		wg.Go(func() { builds.Run(ctrlCtx) })
	}
	if len(cfg.KMSProviders) > 0 {
		wg.Go(func() { providers.watch(ctrlCtx, cfg.KeyCheckInterval) })
	}
	wg.Go(func() { rewrap.Run(ctrlCtx) })
	if cfg.AuditRetention > 0 {
		wg.Go(func() { pruneAudit(ctrlCtx, db, cfg.AuditRetention, log) })
	}

	// An app's request may take its whole timeout_seconds both ways, which
	// the router enforces per request; the connection itself must send its
	// headers in time and is closed when idle.
	routerSrv := &http.Server{Handler: routerHandler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
		MaxHeaderBytes: 64 << 10, Protocols: new(http.Protocols),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	routerSrv.Protocols.SetHTTP1(true)
	routerSrv.Protocols.SetUnencryptedHTTP2(true)
	// The router's own core serves its listener, and hands net/http what it
	// does not serve itself; with tracing, net/http serves every request,
	// so that each has its span.
	serveRouter, shutdownRouter := routerSrv.Serve, routerSrv.Shutdown
	if cfg.OTLPEndpoint == "" {
		core := router.NewServer(rt, routerSrv)
		if n := routerLoops(cfg.RouterLoops); n > 0 {
			if err := core.UseRings(n); err != nil {
				log.Warn("router: io_uring refused; a goroutine per connection serves the router", "err", err)
			} else {
				log.Info("router: io_uring loops serve the router", "loops", n)
			}
		}
		serveRouter, shutdownRouter = core.Serve, core.Shutdown
	}
	// HTTPS: net/http serves it (HTTP/2 and HTTP/1.1 over TLS) with the
	// same handler; sessions resume by tickets.
	var routerTLSSrv *http.Server
	if routerTLSLn != nil {
		routerTLSSrv = &http.Server{Handler: routerHandler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second,
			MaxHeaderBytes: 64 << 10, TLSConfig: routerTLS, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	}
	serveErr := make(chan error, 3)
	go func() { serveErr <- srv.Serve(ln) }()
	go func() {
		// Serve once the routes are known, so that no request after a
		// restart meets an empty table.
		if link != nil && !link.waitSynced(30*time.Second) {
			log.Warn("the app controller has not synced within 30s; serving the router anyway")
		}
		if err := serveRouter(routerLn); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("router: %w", err)
		}
	}()
	if routerTLSSrv != nil {
		go func() {
			if link != nil && !link.waitSynced(30*time.Second) {
				log.Warn("the app controller has not synced within 30s; serving HTTPS anyway")
			}
			if err := routerTLSSrv.ServeTLS(routerTLSLn, "", ""); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("router https: %w", err)
			}
		}()
		log.Info("router listening for HTTPS", "addr", routerTLSLn.Addr().String())
	}
	log.Info("router listening", "addr", routerLn.Addr().String(), "domain", cfg.Domain)
	log.Info("api listening", "url", scheme+"://"+ln.Addr().String()+"/v2", "data_dir", cfg.DataDir)

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve api: %w", err)
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = srv.Shutdown(sctx)
		shutdownRouter(sctx)
		if routerTLSSrv != nil {
			routerTLSSrv.Shutdown(sctx)
		}
		cancel()
	}
	stopCtrl()
	wg.Wait()
	return err
}

// workloadConfig is what the workload controllers share.
type workloadConfig struct {
	cfg       config.Server
	db        *store.DB
	rt        *router.Router
	log       *slog.Logger
	reg       *prometheus.Registry
	platform  core.Platform
	functions *functionRuntimes // nil: functions are not served
	quotas    *quota.Ledger
	// objectStores is --object-storage: bucket location → endpoint.
	objectStores  map[string]string
	computeTokens *computetoken.Keys
}

// runWorkloads runs the controllers that drive the engine until ctx ends.
func runWorkloads(ctx context.Context, eng serverEngine, link *engineLink, w workloadConfig) {
	apps := app.New(app.Config{
		Store: w.db, Engine: eng, Router: w.rt, Logger: w.log, Quota: w.quotas, Registry: w.reg,
		Platform: w.platform, ObjectStorage: w.objectStores, ComputeTokens: w.computeTokens, ComputeTokenLife: w.cfg.ComputeTokenLife,
		StableWindow: w.cfg.AutoscaleStableWindow, PanicWindow: w.cfg.AutoscalePanicWindow,
	})
	link.setApps(apps)
	var fns *function.Controller
	if w.functions != nil {
		pool := function.NewPool(function.PoolConfig{Engine: eng, Image: w.functions.image, Depth: w.cfg.FunctionPool, Logger: w.log})
		defer pool.Close()
		registries := regclient.New(w.cfg.InsecureRegistries)
		fns = function.New(function.Config{Store: w.db, Engine: eng, Router: w.rt, Pool: pool, Logger: w.log, Platform: w.platform,
			Family: w.functions.family,
			Fetch: func(ctx context.Context, ref string, auth *engine.RegistryAuth) (bundle.Fetched, error) {
				return bundle.Fetch(ctx, registries, ref, auth, bundle.Bundle)
			}, StableWindow: w.cfg.AutoscaleStableWindow, PanicWindow: w.cfg.AutoscalePanicWindow})
		w.functions.serve(fns)
	}
	w.rt.SetWake(func(key string) {
		if fns != nil && function.IsRevision(key) {
			fns.Wake(key)
			return
		}
		apps.Wake(key)
	})
	ecfg := egress.Config{Store: w.db, Logger: w.log}
	if f, ok := eng.(egress.Fence); ok {
		ecfg.Fence = f
	}
	var wg sync.WaitGroup
	wg.Go(func() { apps.Run(ctx) })
	wg.Go(func() {
		jobrun.New(jobrun.Config{
			Store: w.db, Engine: eng, Logger: w.log, MaxInstances: w.cfg.MaxInstances, ProjectMaxInstances: w.cfg.ProjectMaxInstances,
			Quota: w.quotas, Registry: w.reg, PruneEvery: w.cfg.ImagePruneInterval, Platform: w.platform,
			ObjectStorage: w.objectStores, ComputeTokens: w.computeTokens, ComputeTokenLife: w.cfg.ComputeTokenLife,
		}).Run(ctx)
	})
	wg.Go(func() { egress.New(ecfg).Run(ctx) })
	if files, ok := eng.(engine.FileUpdater); ok {
		refresh := tokenrefresh.New(tokenrefresh.Config{Store: w.db, Engine: struct {
			serverEngine
			engine.FileUpdater
		}{eng, files}, Tokens: w.computeTokens, Life: w.cfg.ComputeTokenLife, Logger: w.log})
		wg.Go(func() { refresh.Run(ctx) })
	}
	if fns != nil {
		wg.Go(func() { fns.Run(ctx) })
	}
	wg.Wait()
}

// defaultRouteAddrs are the IPv4 addresses of the interface of the host's
// default route (/proc/net/route): the source addresses of what instances
// send out, masqueraded, on the local engine.
func defaultRouteAddrs() []netip.Addr {
	b, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return nil
	}
	var iface string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "00000000" {
			iface = f[0]
			break
		}
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil
	}
	addrs, _ := ifi.Addrs()
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && p.Addr().IsGlobalUnicast() {
			out = append(out, p.Addr())
		}
	}
	return out
}

// pruneAudit removes audit events older than retention, at start and then
// every tenth of the retention (at most hourly); each prune is an event.
func pruneAudit(ctx context.Context, db *store.DB, retention time.Duration, log *slog.Logger) {
	every := min(max(retention/10, time.Second), time.Hour)
	for {
		n, err := db.PruneAudit(ctx, time.Now().Add(-retention), "system")
		if err != nil {
			log.Error("prune the audit log", "err", err)
		} else if n > 0 {
			log.Info("audit events pruned", "events", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// reaperInterval is how often soft-deleted projects are checked: a quarter of
// the retention, between 100 ms and one minute.
func reaperInterval(retention time.Duration) time.Duration {
	return min(max(retention/4, 100*time.Millisecond), time.Minute)
}

// ensureAdminToken makes sure the token in path is a valid admin token,
// minting one (and writing the file, 0600) when it is missing or unknown.
func ensureAdminToken(ctx context.Context, db *store.DB, path string, log *slog.Logger) error {
	if b, err := os.ReadFile(path); err == nil {
		p, err := auth.Authenticate(ctx, db, "Bearer "+strings.TrimSpace(string(b)))
		if err == nil && p.Admin() {
			return nil
		}
		if err != nil && !errors.Is(err, core.ErrUnauthenticated) {
			return fmt.Errorf("check admin token: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read admin token: %w", err)
	}
	t, value, err := auth.Mint(ctx, db, "admin", "", core.RoleAdmin)
	if err != nil {
		return fmt.Errorf("mint admin token: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(value+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	log.Info("admin token created", "token", t.ID, "file", path)
	return nil
}

func tlsConfig(cfg config.Server, log *slog.Logger) (*tls.Config, error) {
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if cfg.TLSSelfSigned {
		certFile, keyFile = filepath.Join(cfg.DataDir, selfCertFile), filepath.Join(cfg.DataDir, selfKeyFile)
		if !covers(certFile, cfg.TLSSANs) {
			if err := selfSign(cfg.APIAddr, cfg.TLSSANs, certFile, keyFile); err != nil {
				return nil, fmt.Errorf("generate self-signed certificate: %w", err)
			}
		}
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{GetCertificate: r.get, MinVersion: tls.VersionTLS12}, nil
}

// routerTLSConfig is the router's HTTPS: the operator's certificate, or
// for each name the router serves one its CA signs (in the data dir; a
// name it does not serve gets no certificate, so no handshake).
func routerTLSConfig(cfg config.Server, rt *router.Router, log *slog.Logger) (*tls.Config, error) {
	var platform func(*tls.ClientHelloInfo, string) (*tls.Certificate, error)
	if cfg.RouterTLSCert != "" {
		r := &certReloader{certFile: cfg.RouterTLSCert, keyFile: cfg.RouterTLSKey, log: log}
		if err := r.load(); err != nil {
			return nil, fmt.Errorf("--router-tls-cert: %w", err)
		}
		platform = func(hello *tls.ClientHelloInfo, _ string) (*tls.Certificate, error) { return r.get(hello) }
	} else {
		ca, err := localca.Open(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		platform = func(_ *tls.ClientHelloInfo, name string) (*tls.Certificate, error) {
			if !rt.Serves(name) {
				return nil, fmt.Errorf("no app or function is served at %q", name)
			}
			return ca.Leaf(name)
		}
	}
	// A custom domain is served with its mapping's certificate.
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		if c := rt.Certificate(name); c != nil {
			return c, nil
		}
		return platform(hello, name)
	}}, nil
}

// certReloader serves a certificate from its files and loads them again
// when they change (a renewal), at most once a second; a renewal that does
// not load keeps the certificate that did.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	mod     time.Time // of the files loaded
	checked time.Time
}

func (r *certReloader) load() error {
	mod := latestModTime(r.certFile, r.keyFile)
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load tls certificate: %w", err)
	}
	r.cert, r.mod = &cert, mod
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if latestModTime(r.certFile, r.keyFile).After(r.mod) {
			old := r.cert
			if err := r.load(); err != nil {
				r.cert = old
				r.log.Warn("a changed tls certificate does not load; the previous one is served", "err", err)
			}
		}
	}
	return r.cert, nil
}

func latestModTime(files ...string) time.Time {
	var t time.Time
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}

// covers reports whether the certificate in file exists and names every
// one of sans.
func covers(file string, sans []string) bool {
	b, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	for _, san := range sans {
		if cert.VerifyHostname(san) != nil {
			return false
		}
	}
	return true
}

func selfSign(addr string, sans []string, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "coligo"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if host != "" && ip == nil {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	if h, err := os.Hostname(); err == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	for _, san := range sans {
		if ip := net.ParseIP(san); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	return localca.SelfSign(tmpl, key, certFile, keyFile)
}

// routerLoops is how many io_uring loops serve the router for the setting
// n: -1 is a loop per core less one, which the rest of the server keeps
// (at least one loop).
func routerLoops(n int) int {
	if n < 0 {
		return max(runtime.GOMAXPROCS(0)-1, 1)
	}
	return n
}
