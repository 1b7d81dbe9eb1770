package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/quota"
)

// Server is the configuration of `coligo server`.
type Server struct {
	DataDir             string
	APIAddr             string
	ExternalURL         string // where clients reach the API; links are built from it ("" : the listen address)
	TLSCert             string
	TLSKey              string
	TLSSelfSigned       bool
	TLSSANs             []string // more names and addresses of the self-signed certificate
	RootKeyFile         string
	Restore             string        // a backup to make the store of an empty data dir
	AuditKeyFile        string        // "" : <data-dir>/audit.key
	AuditRetention      time.Duration // 0 keeps audit events forever
	SoftDeleteRetention time.Duration
	Region              string
	AccountID           string
	MaxProjects         int
	MaxSecrets          int
	MaxConfigMaps       int
	LogLevel            string
	LogFormat           string
	OTLPEndpoint        string // an OTLP/HTTP collector's base URL: traces of requests go there; "" traces nothing

	Domain             string
	ContainerdAddress  string // "" runs without an engine
	CNIBinDir          string
	CNISubnet          string
	InsecureRegistries []string
	// ObjectStorage maps bucket locations to S3-compatible endpoints
	// (LOCATION=URL); InsecureObjectStorage names the HOST:PORTs of those
	// served over plain HTTP that are not on loopback.
	ObjectStorage         []string
	InsecureObjectStorage []string
	MaxInstances          int
	PidsLimit             int  // processes an instance may hold
	UserNS                bool // instances in user namespaces (local engine)
	ProjectMaxInstances   int  // one project's share of MaxInstances; 0: 3/4 of it
	// A project's quota of what its running instances hold together.
	QuotaInstances     int
	QuotaCPU           string // vCPU, e.g. "128"
	QuotaMemory        string // bytes, e.g. "512G"
	QuotaEphemeral     string // bytes, e.g. "512G"
	ImagePruneInterval time.Duration
	MaxJobs            int
	MaxJobRuns         int

	MaxApps       int
	RouterAddr    string
	RouterTLSAddr string // "" serves no HTTPS
	RouterTLSCert string // the operator's certificate of the router; "" signs one per name with the router's CA
	RouterTLSKey  string
	// ACMEDirectory is the ACME server that issues the certificates of
	// domain mappings created without a TLS secret; "" none.
	ACMEDirectory string
	ACMECAFile    string // roots for the ACME server's own HTTPS; "" the system's
	ACMEEmail     string
	// CronSeconds takes cron schedules with a leading seconds field: a test
	// aid, for ticks every few seconds.
	CronSeconds bool
	// AppHistoryInterval is how often the console's app charts are sampled.
	AppHistoryInterval time.Duration
	// ComputeTokenLife is how long a compute resource token is valid.
	ComputeTokenLife time.Duration
	// ConsoleSessionLife is how long a web console login lasts.
	ConsoleSessionLife time.Duration
	RouterQueueDepth   int
	// RouterLoops is how many io_uring loops serve the router's
	// connections: -1, a loop per core less one (at least one); 0, none
	// (a goroutine per connection).
	RouterLoops           int
	AutoscaleStableWindow time.Duration
	AutoscalePanicWindow  time.Duration
	OCIRuntime            string   // the runc shim's OCI runtime binary: runc or crun
	FunctionPool          int      // pre-warmed runtime instances per project, runtime and size in use
	FunctionRegistryAddr  string   // where the registry of function runtime images listens (pull only)
	FunctionRuntimes      []string // the operator's interpreters, FAMILY=PATH, before the host's usual ones
	InsecureGitHosts      []string // Git hosts (host:port) builds may fetch from over plain HTTP
	BuildKitAddress       string   // buildkitd's address; "" runs no builds
	BuildKitBridge        string   // the bridge buildkitd puts build steps on, fenced by coligo; "" fences none
	BuildKitCgroup        string   // the cgroup under which each build gets its strategy_size's CPU and memory; "" limits none

	Engine      string // local or kubernetes
	Kubeconfig  string // "" uses the in-cluster config
	KubeGateway string // where pods reach coligo; default $POD_IP in a cluster
	KubePodCIDR string // the cluster's pod network, which holds the gateway

	KMSProviders       []string // NAME=SOCKET of KMS v2 plugins
	DefaultKeyProvider string   // wraps the DEKs of projects that name none
	KeyCheckInterval   time.Duration
}

// Default returns the defaults a user sees.
func Default() Server {
	return Server{
		DataDir:             DefaultDataDir(),
		APIAddr:             "127.0.0.1:7070",
		SoftDeleteRetention: 168 * time.Hour,
		ComputeTokenLife:    time.Hour,
		ConsoleSessionLife:  8 * time.Hour,
		AppHistoryInterval:  15 * time.Second,
		Region:              "local",
		AccountID:           "local",
		MaxProjects:         20,
		MaxSecrets:          100,
		MaxConfigMaps:       100,
		LogLevel:            "info",
		LogFormat:           "text",
		Domain:              "localhost",
		ContainerdAddress:   "/run/containerd/containerd.sock",
		CNISubnet:           "10.89.0.0/16",
		MaxInstances:        64,
		PidsLimit:           1024,
		UserNS:              true,
		QuotaInstances:      250,
		QuotaCPU:            "128",
		QuotaMemory:         "512G",
		QuotaEphemeral:      "512G",
		ImagePruneInterval:  30 * time.Second,
		MaxJobs:             100,
		MaxJobRuns:          100,

		MaxApps:               40,
		RouterAddr:            "127.0.0.1:8080",
		RouterTLSAddr:         "127.0.0.1:8443",
		RouterQueueDepth:      100,
		RouterLoops:           -1,
		AutoscaleStableWindow: 60 * time.Second,
		AutoscalePanicWindow:  6 * time.Second,
		OCIRuntime:            "runc",
		FunctionPool:          1,
		FunctionRegistryAddr:  "127.0.0.1:0",
		Engine:                "local",
		KubeGateway:           os.Getenv("POD_IP"),
		KubePodCIDR:           "10.244.0.0/16",
		DefaultKeyProvider:    "local",
		KeyCheckInterval:      10 * time.Second,
	}
}

// DefaultDataDir is $COLIGO_DATA_DIR, else /var/lib/coligo as root, else
// $XDG_DATA_HOME/coligo (~/.local/share/coligo).
func DefaultDataDir() string {
	if d := os.Getenv("COLIGO_DATA_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/coligo"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "coligo")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", "coligo")
}

// Validate checks the configuration; its errors name the flag.
func (s Server) Validate() error {
	var errs []error
	if s.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	host, _, err := net.SplitHostPort(s.APIAddr)
	if err != nil {
		errs = append(errs, fmt.Errorf("--api-addr %q: %w", s.APIAddr, err))
	} else if !s.TLS() && !isLoopback(host) {
		errs = append(errs, fmt.Errorf("--api-addr %s is not a loopback address: plain HTTP is allowed only on loopback; give --tls-cert and --tls-key, or --tls-self-signed", s.APIAddr))
	}
	if s.ExternalURL != "" {
		if u, err := url.Parse(s.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
			errs = append(errs, fmt.Errorf("--external-url %q must be http(s)://HOST[:PORT] with no path, query or user", s.ExternalURL))
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key must be given together"))
	}
	if len(s.TLSSANs) > 0 && !s.TLSSelfSigned {
		errs = append(errs, errors.New("--tls-san names what the self-signed certificate covers: give it with --tls-self-signed"))
	}
	for _, san := range s.TLSSANs {
		if san == "" || strings.ContainsAny(san, " /:@") && net.ParseIP(san) == nil {
			errs = append(errs, fmt.Errorf("--tls-san %q must be a DNS name or an IP address", san))
		}
	}
	if s.TLSSelfSigned && s.TLSCert != "" {
		errs = append(errs, errors.New("--tls-self-signed cannot be combined with --tls-cert"))
	}
	if s.AuditRetention < 0 || s.AuditRetention > 0 && s.AuditRetention < time.Minute {
		errs = append(errs, fmt.Errorf("--audit-retention must be 0 (keep forever) or at least 1m, got %s", s.AuditRetention))
	}
	if s.SoftDeleteRetention <= 0 {
		errs = append(errs, fmt.Errorf("--soft-delete-retention must be positive, got %s", s.SoftDeleteRetention))
	}
	for _, q := range []struct {
		flag string
		v    int
	}{{"--max-projects", s.MaxProjects}, {"--max-secrets", s.MaxSecrets}, {"--max-config-maps", s.MaxConfigMaps},
		{"--max-jobs", s.MaxJobs}, {"--max-job-runs", s.MaxJobRuns}, {"--max-apps", s.MaxApps}} {
		if q.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", q.flag))
		}
	}
	if _, _, err := net.SplitHostPort(s.RouterAddr); err != nil {
		errs = append(errs, fmt.Errorf("--router-addr %q: %w", s.RouterAddr, err))
	}
	if _, _, err := net.SplitHostPort(s.RouterTLSAddr); err != nil && s.RouterTLSAddr != "" {
		errs = append(errs, fmt.Errorf("--router-tls-addr %q: %w", s.RouterTLSAddr, err))
	}
	if (s.RouterTLSCert == "") != (s.RouterTLSKey == "") {
		errs = append(errs, errors.New("--router-tls-cert and --router-tls-key must be given together"))
	}
	if s.ACMEDirectory != "" {
		if u, err := url.Parse(s.ACMEDirectory); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("--acme-directory %q is not an https URL", s.ACMEDirectory))
		}
		if s.RouterTLSAddr == "" {
			errs = append(errs, errors.New("--acme-directory needs --router-tls-addr: its certificates are served there"))
		}
	}
	if s.AppHistoryInterval < 100*time.Millisecond || s.AppHistoryInterval > 5*time.Minute {
		errs = append(errs, fmt.Errorf("--app-history-interval must be from 100ms to 5m, got %s", s.AppHistoryInterval))
	}
	if s.ConsoleSessionLife < time.Minute || s.ConsoleSessionLife > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("--console-session-life must be from 1m to 168h, got %s", s.ConsoleSessionLife))
	}
	if s.ComputeTokenLife < 30*time.Second || s.ComputeTokenLife > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--compute-token-life must be from 30s to 24h, got %s", s.ComputeTokenLife))
	}
	if s.RouterQueueDepth < 1 {
		errs = append(errs, fmt.Errorf("--router-queue-depth must be at least 1"))
	}
	if s.RouterLoops < -1 || s.RouterLoops > 256 {
		errs = append(errs, fmt.Errorf("--router-loops must be -1 (a loop per core less one), 0 (none) or up to 256, got %d", s.RouterLoops))
	}
	if _, _, err := net.SplitHostPort(s.FunctionRegistryAddr); err != nil {
		errs = append(errs, fmt.Errorf("--function-registry-addr %q: %w", s.FunctionRegistryAddr, err))
	}
	if s.FunctionPool < 0 || s.FunctionPool > 16 {
		errs = append(errs, fmt.Errorf("--function-pool must be from 0 to 16, got %d", s.FunctionPool))
	}
	if s.AutoscaleStableWindow < time.Second {
		errs = append(errs, fmt.Errorf("--autoscale-stable-window must be at least 1s, got %s", s.AutoscaleStableWindow))
	}
	if s.AutoscalePanicWindow < 100*time.Millisecond || s.AutoscalePanicWindow > s.AutoscaleStableWindow {
		errs = append(errs, fmt.Errorf("--autoscale-panic-window must be from 100ms to --autoscale-stable-window, got %s", s.AutoscalePanicWindow))
	}
	switch s.Engine {
	case "local":
	case "kubernetes":
		gw, err := netip.ParseAddr(s.KubeGateway)
		if err != nil {
			errs = append(errs, fmt.Errorf("--kube-gateway must be the address pods reach coligo at (the default is $POD_IP in a cluster), got %q", s.KubeGateway))
		}
		if cidr, err := netip.ParsePrefix(s.KubePodCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--kube-pod-cidr %q: %w", s.KubePodCIDR, err))
		} else if gw.IsValid() && !cidr.Contains(gw) {
			errs = append(errs, fmt.Errorf("--kube-gateway %s is not in --kube-pod-cidr %s", gw, cidr))
		}
	default:
		errs = append(errs, fmt.Errorf("--engine must be local or kubernetes, got %q", s.Engine))
	}
	if s.OCIRuntime == "" || strings.ContainsAny(s.OCIRuntime, " \t\n") {
		errs = append(errs, fmt.Errorf("--oci-runtime must name an OCI runtime binary such as runc or crun, got %q", s.OCIRuntime))
	}
	names := map[string]bool{"local": true}
	for _, kp := range s.KMSProviders {
		name, sock, ok := strings.Cut(kp, "=")
		switch {
		case !ok || sock == "" || !filepath.IsAbs(sock):
			errs = append(errs, fmt.Errorf("--kms-provider %q must be NAME=/absolute/path/to/plugin.sock", kp))
		case names[name]:
			errs = append(errs, fmt.Errorf("--kms-provider %q: the name %s is taken", kp, name))
		case !dnsLabel(name):
			errs = append(errs, fmt.Errorf("--kms-provider %q: the name must be a DNS label (a-z, 0-9, -)", kp))
		}
		names[name] = true
	}
	if s.KeyCheckInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--key-check-interval must be at least 100ms, got %s", s.KeyCheckInterval))
	}
	if !names[s.DefaultKeyProvider] {
		errs = append(errs, fmt.Errorf("--default-key-provider %q is neither local nor a --kms-provider", s.DefaultKeyProvider))
	}
	if s.ProjectMaxInstances < 0 || s.ProjectMaxInstances > s.MaxInstances {
		errs = append(errs, fmt.Errorf("--project-max-instances must be from 0 (3/4 of --max-instances) to --max-instances, got %d", s.ProjectMaxInstances))
	}
	if s.QuotaInstances < 1 {
		errs = append(errs, fmt.Errorf("--project-quota-instances must be at least 1, got %d", s.QuotaInstances))
	}
	if _, err := core.ParseCPU(s.QuotaCPU); err != nil {
		errs = append(errs, fmt.Errorf("--project-quota-cpu %q must be a vCPU amount such as 128 or 0.5", s.QuotaCPU))
	}
	for flag, v := range map[string]string{"--project-quota-memory": s.QuotaMemory, "--project-quota-ephemeral-storage": s.QuotaEphemeral} {
		if _, err := core.ParseBytes(flag, v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q must be a size such as 512G or 64Gi", flag, v))
		}
	}
	if s.PidsLimit < 16 {
		errs = append(errs, fmt.Errorf("--pids-limit must be at least 16, got %d", s.PidsLimit))
	}
	if s.MaxInstances < 1 {
		errs = append(errs, fmt.Errorf("--max-instances must be at least 1"))
	}
	if p, err := netip.ParsePrefix(s.CNISubnet); err != nil || !p.Addr().Is4() || p.Bits() > 23 {
		errs = append(errs, fmt.Errorf("--cni-subnet %q must be an IPv4 prefix of /23 or larger, e.g. 10.89.0.0/16", s.CNISubnet))
	}
	if _, err := s.ObjectStores(); err != nil {
		errs = append(errs, err)
	}
	for _, r := range s.InsecureRegistries {
		if _, _, err := net.SplitHostPort(r); err != nil {
			errs = append(errs, fmt.Errorf("--insecure-registry %q must be HOST:PORT", r))
		}
	}
	for _, h := range s.InsecureGitHosts {
		if _, _, err := net.SplitHostPort(h); err != nil {
			errs = append(errs, fmt.Errorf("--insecure-git-host %q must be HOST:PORT", h))
		}
	}
	if c := s.BuildKitCgroup; c != "" && (path.IsAbs(c) || path.Clean(c) != c || strings.HasPrefix(c, "..") || strings.ContainsAny(c, " \t\n:")) {
		errs = append(errs, fmt.Errorf("--buildkit-cgroup %q must be a relative cgroup path such as coligo-builds", c))
	}
	if s.OTLPEndpoint != "" {
		if u, err := url.Parse(s.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--otlp-endpoint must be the http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318, got %q", s.OTLPEndpoint))
		}
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", s.LogFormat))
	}
	switch s.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", s.LogLevel))
	}
	return errors.Join(errs...)
}

// Quota is a project's quota of what its instances hold; call it on a
// valid configuration.
func (s Server) Quota() quota.Amount {
	cpu, _ := core.ParseCPU(s.QuotaCPU)
	mem, _ := core.ParseBytes("", s.QuotaMemory)
	eph, _ := core.ParseBytes("", s.QuotaEphemeral)
	return quota.Amount{Instances: s.QuotaInstances, MilliCPU: cpu, Memory: mem, Ephemeral: eph}
}

// TLS reports whether the API is served over TLS.
func (s Server) TLS() bool { return s.TLSCert != "" || s.TLSSelfSigned }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// ObjectStores is --object-storage as bucket location → endpoint URL. An
// endpoint is https, or http on loopback or on a host of
// --insecure-object-storage.
func (s Server) ObjectStores() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range s.ObjectStorage {
		loc, raw, ok := strings.Cut(kv, "=")
		if !ok || loc == "" {
			return nil, fmt.Errorf("--object-storage %q must be LOCATION=URL", kv)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return nil, fmt.Errorf("--object-storage %s: %q is not an http(s) URL of a host", loc, raw)
		}
		if u.Scheme == "http" && !loopbackHost(u.Hostname()) && !slices.Contains(s.InsecureObjectStorage, u.Host) {
			return nil, fmt.Errorf("--object-storage %s: %s is plain HTTP; use https, or name %s with --insecure-object-storage", loc, raw, u.Host)
		}
		if _, dup := out[loc]; dup {
			return nil, fmt.Errorf("--object-storage: location %s is given twice", loc)
		}
		out[loc] = strings.TrimSuffix(raw, "/")
	}
	return out, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
