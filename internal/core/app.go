package core

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// App defaults and limits from the Code Engine reference (§1.3, §1.12, §4.6).
const (
	DefaultImagePort        = 8080
	DefaultConcurrency      = 100
	DefaultMaxInstances     = 10
	DefaultInitialInstances = 1
	DefaultRequestTimeout   = 300
	MaxScaleInstances       = 250
	MaxConcurrency          = 1000
	MaxRequestTimeout       = 600
	MaxScaleDownDelay       = 3600
	DefaultProbeInterval    = 10
	DefaultProbeTimeout     = 1
	DefaultProbeFailures    = 1
)

// Port protocols: image_port_name.
const (
	PortHTTP1 = "http1"
	PortH2C   = "h2c"
)

// Visibility of an app: managed_domain_mappings.
const (
	VisibilityPublic  = "local_public"
	VisibilityPrivate = "local_private"
	VisibilityProject = "local"
)

// How an app's public endpoint answers plain HTTP (http_option, coligo's):
// it serves it, or redirects it to HTTPS, as Code Engine does on port 80.
const (
	HTTPEnabled    = "enabled"
	HTTPRedirected = "redirected"
)

// Probe types.
const (
	ProbeTCP  = "tcp"
	ProbeHTTP = "http"
)

// Volume mount types.
const (
	MountSecret    = "secret"
	MountConfigMap = "config_map"
	MountDataStore = "persistent_data_store"
)

// reservedPorts are ports an app may not listen on (§3.1).
var reservedPorts = map[int]bool{8008: true, 8012: true, 8022: true, 9090: true, 9091: true, 15090: true}

var appName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// Probe is a liveness or readiness probe.
type Probe struct {
	Type             string `json:"type"`
	Path             string `json:"path,omitempty"`
	Port             int    `json:"port,omitempty"` // 0: the app's port
	Interval         int    `json:"interval,omitempty"`
	InitialDelay     int    `json:"initial_delay,omitempty"`
	Timeout          int    `json:"timeout,omitempty"`
	FailureThreshold int    `json:"failure_threshold,omitempty"`
}

// VolumeMount is an entry of run_volume_mounts: a secret or config map
// mounted as one file per key.
type VolumeMount struct {
	Type      string `json:"type"`
	Reference string `json:"reference"`
	MountPath string `json:"mount_path"`
	SubPath   string `json:"sub_path,omitempty"`
	// ReadOnly is kept as given; secrets and config maps are mounted
	// read-only whatever it says.
	ReadOnly *bool `json:"read_only,omitempty"`
}

// AppSpec is what an app's revisions run: every field of the prototype
// but its name.
type AppSpec struct {
	// Build and BuildRun name the build configuration and the build run
	// that made the image, where the CLI built it (--build-source).
	Build                 string   `json:"build,omitempty"`
	BuildRun              string   `json:"build_run,omitempty"`
	ImageReference        string   `json:"image_reference"`
	ImageSecret           string   `json:"image_secret,omitempty"`
	ImagePort             int      `json:"image_port"`
	ImagePortName         string   `json:"image_port_name"`
	ManagedDomainMappings string   `json:"managed_domain_mappings"`
	HTTPOption            string   `json:"http_option,omitempty"` // "" is HTTPEnabled
	ProbeLiveness         *Probe   `json:"probe_liveness,omitempty"`
	ProbeReadiness        *Probe   `json:"probe_readiness"`
	RunArguments          []string `json:"run_arguments"`
	RunCommands           []string `json:"run_commands"`
	RunAsUser             int      `json:"run_as_user"`
	// RunComputeResourceTokenEnabled mounts a compute resource token into
	// the instances (computetoken.Path).
	RunComputeResourceTokenEnabled bool          `json:"run_compute_resource_token_enabled"`
	RunEnvVariables                []EnvVar      `json:"run_env_variables"`
	RunServiceAccount              string        `json:"run_service_account"`
	RunVolumeMounts                []VolumeMount `json:"run_volume_mounts"`
	ScaleConcurrency               int           `json:"scale_concurrency"`
	ScaleConcurrencyTarget         int           `json:"scale_concurrency_target,omitempty"` // 0: scale_concurrency
	ScaleCPULimit                  string        `json:"scale_cpu_limit"`
	ScaleMemoryLimit               string        `json:"scale_memory_limit"`
	ScaleEphemeralStorageLimit     string        `json:"scale_ephemeral_storage_limit"`
	ScaleDownDelay                 int           `json:"scale_down_delay"`
	ScaleInitialInstances          int           `json:"scale_initial_instances"`
	ScaleMaxInstances              int           `json:"scale_max_instances"` // 0: no cap but the project's
	ScaleMinInstances              int           `json:"scale_min_instances"`
	ScaleRequestTimeout            int           `json:"scale_request_timeout"`
}

// NewAppSpec returns a spec with Code Engine's defaults for every field.
func NewAppSpec() AppSpec {
	return AppSpec{
		ImagePort: DefaultImagePort, ImagePortName: PortHTTP1, ManagedDomainMappings: VisibilityPublic, HTTPOption: HTTPEnabled,
		ProbeReadiness: &Probe{Type: ProbeTCP}, RunArguments: []string{}, RunCommands: []string{},
		RunEnvVariables: []EnvVar{}, RunServiceAccount: "default", RunVolumeMounts: []VolumeMount{},
		ScaleConcurrency: DefaultConcurrency, ScaleCPULimit: DefaultCPU, ScaleMemoryLimit: DefaultMemory,
		ScaleEphemeralStorageLimit: DefaultEphemeral, ScaleInitialInstances: DefaultInitialInstances,
		ScaleMaxInstances: DefaultMaxInstances, ScaleRequestTimeout: DefaultRequestTimeout,
	}
}

// Target is the concurrency per instance the autoscaler aims at.
func (s AppSpec) Target() int {
	if s.ScaleConcurrencyTarget > 0 {
		return min(s.ScaleConcurrencyTarget, s.ScaleConcurrency)
	}
	return s.ScaleConcurrency
}

// Readiness is the readiness probe with its defaults filled in.
func (s AppSpec) Readiness() Probe { return s.ProbeReadiness.withDefaults(s.ImagePort) }

// Liveness is the liveness probe with its defaults, if there is one.
func (s AppSpec) Liveness() (Probe, bool) {
	if s.ProbeLiveness == nil {
		return Probe{}, false
	}
	return s.ProbeLiveness.withDefaults(s.ImagePort), true
}

func (p *Probe) withDefaults(port int) Probe {
	out := Probe{Type: ProbeTCP}
	if p != nil {
		out = *p
	}
	if out.Port == 0 {
		out.Port = port
	}
	if out.Interval == 0 {
		out.Interval = DefaultProbeInterval
	}
	if out.Timeout == 0 {
		out.Timeout = DefaultProbeTimeout
	}
	if out.FailureThreshold == 0 {
		out.FailureThreshold = DefaultProbeFailures
	}
	if out.Type == ProbeHTTP && out.Path == "" {
		out.Path = "/"
	}
	return out
}

// App is an app: its spec and the generation that each update advances.
// Each generation is run by the revision named RevisionName(Name, Generation).
type App struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	Generation int       `json:"generation"`
	AppSpec
}

// RevisionName is the name of an app's revision of a generation.
func RevisionName(app string, generation int) string { return fmt.Sprintf("%s-%05d", app, generation) }

// Revision statuses. A revision goes
//
//	loading ──► ready            (an instance passed its readiness probe; with
//	   │  ▲                       scale_initial_instances 0: its image is pinned)
//	   │  └── failed              (the image pulls again after a pull failure)
//	   └────► failed             (pull failure, a missing registry secret, the
//	                              command not in the image, instances exiting
//	                              before ready, or no instance ready in time)
//
// loading with reason "waiting" means a secret or config map it needs is
// missing. A ready revision stays ready while it scales, to zero too.
const (
	RevisionLoading RevisionStatus = "loading"
	RevisionReady   RevisionStatus = "ready"
	RevisionFailed  RevisionStatus = "failed"
)

// RevisionStatus is an app revision's status.
type RevisionStatus string

// Revision status reasons (besides the pull reasons of the engine).
const (
	ReasonReady             = "ready"
	ReasonDeploying         = "deploying"
	ReasonWaiting           = "waiting"
	ReasonInitialScaleNever = "initial_scale_never_achieved"
	ReasonNoRevisionReady   = "no_revision_ready"
	ReasonLatestFailed      = "ready_but_latest_revision_failed"
	// A revision that waits for room in its project's quota, and its app;
	// a job run some of whose indices wait for a slot or for that room.
	ReasonDeployingWaitingForResources = "deploying_waiting_for_resources"
	ReasonWaitingForResources          = "waiting_for_resources"
)

// ReasonContainerExit is the reason of a revision whose instances exit.
func ReasonContainerExit(code int) string { return fmt.Sprintf("container_failed_exit_code_%d", code) }

// Revision is an immutable snapshot of an app's spec, with its image pinned
// to a digest once resolved, and its status as the app controller sees it.
type Revision struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	AppName    string    `json:"app_name"`
	Generation int       `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	AppSpec
	ImageDigest string         `json:"image_digest,omitempty"` // name@sha256:…, once pulled
	Status      RevisionStatus `json:"status"`
	Reason      string         `json:"reason"`
	Message     string         `json:"message,omitempty"`
}

// App statuses.
const (
	AppDeploying = "deploying"
	AppReady     = "ready"
	AppWarning   = "warning"
	AppFailed    = "failed"
)

// AppStatus derives an app's status from its latest created revision and
// its newest ready one (nil when there is none).
func AppStatus(latest, ready *Revision) (status, reason string) {
	switch {
	case latest != nil && latest.Status == RevisionReady:
		return AppReady, ReasonReady
	case latest != nil && latest.Status == RevisionFailed && ready != nil:
		return AppWarning, ReasonLatestFailed
	case latest != nil && latest.Status == RevisionFailed:
		return AppFailed, ReasonNoRevisionReady
	case latest != nil && latest.Reason == ReasonDeployingWaitingForResources:
		return AppDeploying, ReasonWaitingForResources
	}
	return AppDeploying, ReasonDeploying
}

// ValidateAppName checks an app name: a lowercase letter first, then
// [a-z0-9-], ending alphanumeric, at most 63.
func ValidateAppName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if len(name) > 57 || !appName.MatchString(name) {
		return Invalid("name", "%q must be at most 57 lowercase letters, digits and '-', beginning with a letter and ending with a letter or digit (revision names add 6 characters)", clip(name))
	}
	return nil
}

// ValidateAppSpec checks a defaulted spec.
func ValidateAppSpec(s AppSpec) error {
	if err := validateImage(s.ImageReference, s.ImageSecret); err != nil {
		return err
	}
	if err := validateBuildRefs(s.Build, s.BuildRun); err != nil {
		return err
	}
	if s.ImagePort < 1 || s.ImagePort > 65535 {
		return Invalid("image_port", "%d is not a port from 1 to 65535", s.ImagePort)
	}
	if reservedPorts[s.ImagePort] {
		return Invalid("image_port", "%d is reserved (8008, 8012, 8022, 9090, 9091 and 15090 are)", s.ImagePort)
	}
	if s.ImagePortName != PortHTTP1 && s.ImagePortName != PortH2C {
		return Invalid("image_port_name", "%q is not http1 or h2c", clip(s.ImagePortName))
	}
	switch s.HTTPOption {
	case "", HTTPEnabled, HTTPRedirected:
	default:
		return Invalid("http_option", "%q is not enabled or redirected", clip(s.HTTPOption))
	}
	switch s.ManagedDomainMappings {
	case VisibilityPublic, VisibilityProject:
	case VisibilityPrivate:
		return Invalid("managed_domain_mappings", "local_private needs a private network, which this server does not have; use local_public or local")
	default:
		return Invalid("managed_domain_mappings", "%q is not local_public, local_private or local", clip(s.ManagedDomainMappings))
	}
	for _, p := range []struct {
		field string
		probe *Probe
	}{{"probe_readiness", s.ProbeReadiness}, {"probe_liveness", s.ProbeLiveness}} {
		if err := validateProbe(p.field, p.probe); err != nil {
			return err
		}
	}
	if err := validateRun(s.ScaleCPULimit, s.ScaleMemoryLimit, s.ScaleEphemeralStorageLimit, s.RunServiceAccount, s.RunAsUser, s.RunEnvVariables); err != nil {
		return err
	}
	if err := validateMounts(s.RunVolumeMounts); err != nil {
		return err
	}
	ints := []struct {
		field   string
		v, a, b int
	}{
		{"scale_concurrency", s.ScaleConcurrency, 1, MaxConcurrency},
		{"scale_concurrency_target", s.ScaleConcurrencyTarget, 0, MaxConcurrency},
		{"scale_down_delay", s.ScaleDownDelay, 0, MaxScaleDownDelay},
		{"scale_min_instances", s.ScaleMinInstances, 0, MaxScaleInstances},
		{"scale_max_instances", s.ScaleMaxInstances, 0, MaxScaleInstances},
		{"scale_initial_instances", s.ScaleInitialInstances, 0, MaxScaleInstances},
		{"scale_request_timeout", s.ScaleRequestTimeout, 1, MaxRequestTimeout},
	}
	for _, n := range ints {
		if n.v < n.a || n.v > n.b {
			return Invalid(n.field, "%d is not from %d to %d", n.v, n.a, n.b)
		}
	}
	if s.ScaleMaxInstances > 0 && s.ScaleMinInstances > s.ScaleMaxInstances {
		return Invalid("scale_min_instances", "%d is more than scale_max_instances (%d)", s.ScaleMinInstances, s.ScaleMaxInstances)
	}
	return nil
}

func validateImage(ref, secret string) error {
	if ref == "" {
		return Invalid("image_reference", "is required")
	}
	if len(ref) > 256 || strings.ContainsAny(ref, " \t\n") {
		return Invalid("image_reference", "must be at most 256 characters without spaces")
	}
	if secret != "" {
		if err := ValidateResourceName(secret); err != nil {
			return Invalid("image_secret", "%v", err.(*FieldError).Message)
		}
	}
	return nil
}

func validateProbe(field string, p *Probe) error {
	if p == nil {
		return nil
	}
	switch p.Type {
	case ProbeTCP:
		if p.Path != "" {
			return Invalid(field, "path is only for http probes")
		}
	case ProbeHTTP:
		if p.Path != "" && (!strings.HasPrefix(p.Path, "/") || len(p.Path) > 1024 || strings.ContainsAny(p.Path, " \t\r\n")) {
			return Invalid(field, "path %q must begin with / and hold no spaces", clip(p.Path))
		}
	default:
		return Invalid(field, "type %q is not tcp or http", clip(p.Type))
	}
	switch {
	case p.Port < 0 || p.Port > 65535:
		return Invalid(field, "port %d is not from 0 to 65535", p.Port)
	case p.Interval < 0 || p.Interval > 3600:
		return Invalid(field, "interval %d is not from 1 to 3600 seconds", p.Interval)
	case p.InitialDelay < 0 || p.InitialDelay > 3600:
		return Invalid(field, "initial_delay %d is not from 0 to 3600 seconds", p.InitialDelay)
	case p.Timeout < 0 || p.Timeout > 3600:
		return Invalid(field, "timeout %d is not from 1 to 3600 seconds", p.Timeout)
	case p.FailureThreshold < 0 || p.FailureThreshold > 10:
		return Invalid(field, "failure_threshold %d is not from 1 to 10", p.FailureThreshold)
	}
	return nil
}

func validateMounts(ms []VolumeMount) error {
	seen := map[string]bool{}
	stores := 0
	for i, m := range ms {
		switch m.Type {
		case MountSecret, MountConfigMap:
			if m.SubPath != "" {
				return Invalid("run_volume_mounts", "entry %d: sub_path is only for persistent data stores", i)
			}
		case MountDataStore:
			if stores++; stores > MaxDataStoreMounts {
				return Invalid("run_volume_mounts", "entry %d: at most %d persistent data stores are mounted", i, MaxDataStoreMounts)
			}
			if p := m.SubPath; len(p) > 1024 || strings.Contains(p, "..") || strings.ContainsAny(p, "\x00:\n") {
				return Invalid("run_volume_mounts", "entry %d: sub_path %q is not a path in the bucket", i, clip(p))
			}
		default:
			return Invalid("run_volume_mounts", "entry %d: type %q is not secret, config_map or persistent_data_store", i, clip(m.Type))
		}
		if err := ValidateResourceName(m.Reference); err != nil {
			return Invalid("run_volume_mounts", "entry %d: reference: %s", i, err.(*FieldError).Message)
		}
		p := m.MountPath
		if !strings.HasPrefix(p, "/") || p == "/" || len(p) > 1024 || strings.Contains(p, "..") || strings.ContainsAny(p, "\x00:\n") {
			return Invalid("run_volume_mounts", "entry %d: mount_path %q must be an absolute directory other than /, without '..'", i, clip(p))
		}
		clean := strings.TrimSuffix(p, "/")
		if seen[clean] {
			return Invalid("run_volume_mounts", "entry %d: mount_path %q is used twice; each mount needs its own directory", i, clip(p))
		}
		seen[clean] = true
	}
	return nil
}

// Platform is what the server tells instances about where they run.
type Platform struct {
	Region  string // CE_REGION
	Domain  string // CE_DOMAIN
	BaseURL string // CE_API_BASE_URL
}

// PlatformEnv is what every instance is told of where it runs (§2.1, §2.2).
func PlatformEnv(pl Platform, p Project) []EnvVar {
	lit := func(k, v string) EnvVar { return EnvVar{Type: EnvLiteral, Name: k, Value: v} }
	return []EnvVar{lit("CE_API_BASE_URL", pl.BaseURL), lit("CE_DOMAIN", pl.Domain), lit("CE_PROJECT_ID", p.ID),
		lit("CE_REGION", pl.Region), lit("CE_SUBDOMAIN", p.Subdomain)}
}

// AppEnv is the environment coligo sets in an app's instances
// (computed_env_variables), as Code Engine does (§2.1), sorted by name.
func AppEnv(pl Platform, p Project, app, revision string, port int) []EnvVar {
	lit := func(k, v string) EnvVar { return EnvVar{Type: EnvLiteral, Name: k, Value: v} }
	out := append(PlatformEnv(pl, p), lit("CE_APP", app), lit("K_CONFIGURATION", app), lit("K_REVISION", revision),
		lit("K_SERVICE", app), lit("PORT", fmt.Sprint(port)))
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// AppHost is the host name of an app on the router: <app>.<subdomain>.<domain>.
func AppHost(app string, p Project, domain string) string {
	return app + "." + p.Subdomain + "." + domain
}

// Instance statuses of apps.
const (
	InstancePending = "pending"
	InstanceRunning = "running"
)

// AppInstance is an app instance as the app controller observes it.
type AppInstance struct {
	Name      string
	App       string
	Revision  string
	Status    string // pending, running, failed
	Ready     bool
	Draining  bool
	StartedAt time.Time
	IP        string
}
