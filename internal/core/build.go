package core

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// Build defaults, limits, statuses and reasons from the Code Engine
// reference (CE-BUILDS.md §2–§4).
const (
	KindBuild    = "build"
	KindBuildRun = "build_run"

	StrategyDockerfile     = "dockerfile"
	StrategyBuildpacks     = "buildpacks"
	DefaultStrategySize    = "medium"
	DefaultStrategySpec    = "Dockerfile"
	SourceGit              = "git"
	SourceLocal            = "local"
	DefaultBuildTimeout    = 600
	MaxBuildTimeout        = 3600
	MaxBuildsPerProject    = 100
	MaxBuildRunsPerProject = 100

	BuildReady  = "ready"
	BuildFailed = "failed"
	// ReasonRegistered is a build's reason once stored: Code Engine checks
	// a build only when it runs.
	ReasonRegistered = "registered"

	BuildRunPending   = "pending"
	BuildRunRunning   = "running"
	BuildRunSucceeded = "succeeded"
	BuildRunFailed    = "failed"

	ReasonBuildNotFound         = "build_not_found"
	ReasonBuildRunFailed        = "failed_to_execute_build_run"
	ReasonInvalidBuildConfig    = "invalid_build_configuration"
	ReasonMissingCodeRepoAccess = "missing_code_repo_access"
	ReasonMissingRegistryAccess = "missing_registry_access"
	ReasonMissingSecrets        = "missing_secrets"
	ReasonBuildTimeout          = "timeout"
	// ReasonBuildCanceled is coligo's: Code Engine's CLI cancels runs
	// (buildrun cancel) by means its API does not show.
	ReasonBuildCanceled            = "canceled"
	ReasonUnknownStrategy          = "unknown_strategy"
	ReasonExceededEphemeralStorage = "exceeded_ephemeral_storage"
)

// BuildSize is the resources of a build's strategy_size (§4).
type BuildSize struct {
	MilliCPU               int64
	MemoryBytes, DiskBytes int64
}

// BuildSizes are Code Engine's strategy sizes.
var BuildSizes = map[string]BuildSize{
	"small":   {500, 2e9, 2e9},
	"medium":  {1000, 4e9, 4e9},
	"large":   {2000, 8e9, 8e9},
	"xlarge":  {4000, 16e9, 16e9},
	"xxlarge": {12000, 48e9, 48e9},
}

var (
	// gitURL is Code Engine's pattern of source_url: https, or ssh
	// (ssh://git@host/… or git@host:…). coligo also takes http:// for the
	// hosts an operator allows (--insecure-git-host), checked by the API.
	gitURL     = regexp.MustCompile(`^((https?://[a-z0-9]([\-.]?[a-z0-9])+(:\d{1,5})?)|((ssh://)?git@[a-z0-9]([\-.]{0,1}[a-z0-9])+(:[a-zA-Z0-9/][\w\-.]*)?))(/([\w\-.]|%20)+)*$`)
	noSpace    = regexp.MustCompile(`^\S*$`)
	buildArg   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	buildTypes = map[string]bool{EnvLiteral: true, EnvSecretKey: true, EnvConfigMapKey: true}
)

// BuildParam is one of run_build_params: a Dockerfile ARG's value, literal
// or from a key of a secret (given to the build as a BuildKit secret of
// that name, never as an argument) or config map.
type BuildParam struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	Reference string `json:"reference,omitempty"`
	Key       string `json:"key,omitempty"`
}

// BuildSpec is what a build (or a build run) builds: every field of the
// build prototype but its name.
type BuildSpec struct {
	OutputImage      string       `json:"output_image"`
	OutputSecret     string       `json:"output_secret"`
	StrategyType     string       `json:"strategy_type"`
	StrategySize     string       `json:"strategy_size"`
	StrategySpecFile string       `json:"strategy_spec_file"`
	SourceType       string       `json:"source_type"`
	SourceURL        string       `json:"source_url,omitempty"`
	SourceRevision   string       `json:"source_revision,omitempty"`
	SourceSecret     string       `json:"source_secret,omitempty"`
	SourceContextDir string       `json:"source_context_dir,omitempty"`
	Timeout          int          `json:"timeout"`
	RunBuildParams   []BuildParam `json:"run_build_params"`
}

// NewBuildSpec returns a spec with Code Engine's defaults.
func NewBuildSpec() BuildSpec {
	return BuildSpec{StrategySize: DefaultStrategySize, StrategySpecFile: DefaultStrategySpec, SourceType: SourceGit,
		Timeout: DefaultBuildTimeout, RunBuildParams: []BuildParam{}}
}

// Build is a build's record.
type Build struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Spec      BuildSpec `json:"spec"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
}

// BuildRun is a build run's record: the spec it runs (its build's, with
// the run's own values over it) and what happened.
type BuildRun struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	BuildName      string    `json:"build_name,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	Spec           BuildSpec `json:"spec"`
	ServiceAccount string    `json:"service_account"`
	// SourceImage is a local source as the CLI uploaded it: an image of
	// its files in the registry of the output, pinned (coligo's).
	SourceImage string `json:"source_image,omitempty"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	// Message says what failed, in words (coligo's).
	Message         string     `json:"message,omitempty"`
	StartTime       *time.Time `json:"start_time,omitempty"`
	CompletionTime  *time.Time `json:"completion_time,omitempty"`
	OutputDigest    string     `json:"output_digest,omitempty"`
	GitCommitSHA    string     `json:"git_commit_sha,omitempty"`
	GitCommitAuthor string     `json:"git_commit_author,omitempty"`
	GitBranchName   string     `json:"git_branch_name,omitempty"`
	SourceTimestamp *time.Time `json:"source_timestamp,omitempty"`
}

// BuildRunName is the name Code Engine gives a run of build at t:
// <build>-run-<yymmdd>-<hhmmss>, within 63 characters.
func BuildRunName(build string, t time.Time) string {
	suffix := "-run-" + t.UTC().Format("060102-150405")
	if len(build)+len(suffix) > 63 {
		build = strings.TrimRight(build[:63-len(suffix)], "-")
	}
	return build + suffix
}

// ValidateBuildName checks a build's or a build run's name.
func ValidateBuildName(name string) error {
	if !IsDNSLabel(name) || name == "" {
		return Invalid("name", "%q must be 1 to 63 lowercase letters, digits and '-', beginning and ending with a letter or digit", clip(name))
	}
	return nil
}

// GitHost is the host (host:port where the URL has a port) a Git URL
// names: https://HOST/…, ssh://git@HOST/…, git@HOST:org/repo.
func GitHost(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" {
		return u.Host
	}
	if _, rest, ok := strings.Cut(raw, "@"); ok {
		host, _, _ := strings.Cut(rest, ":")
		return host
	}
	return ""
}

// validateBuildRefs checks the build and build_run an app or a job names
// ("" for none): names of a build and of a build run.
func validateBuildRefs(build, run string) error {
	for field, v := range map[string]string{"build": build, "build_run": run} {
		if v != "" && !IsDNSLabel(v) {
			return Invalid(field, "%q is not the name of a build or build run (1 to 63 lowercase letters, digits and '-')", clip(v))
		}
	}
	return nil
}

// ValidateBuildSpec checks a defaulted spec.
func ValidateBuildSpec(s BuildSpec) error {
	if s.OutputImage == "" {
		return Invalid("output_image", "is required")
	}
	if len(s.OutputImage) > 256 || !codeBundle.MatchString(s.OutputImage) {
		return Invalid("output_image", "%q is not an image reference (registry/namespace/repository[:tag])", clip(s.OutputImage))
	}
	if err := subdomainField("output_secret", s.OutputSecret, true); err != nil {
		return err
	}
	switch {
	case s.StrategyType == StrategyDockerfile:
	case s.StrategyType == "":
		return Invalid("strategy_type", "is required: dockerfile")
	case s.StrategyType == StrategyBuildpacks:
		return Invalid("strategy_type", "buildpacks is not available on this installation (its builder images cannot be fetched here); use dockerfile")
	case strings.HasPrefix(s.StrategyType, "codebundle-"):
		return Invalid("strategy_type", "%s is not available yet; build the code bundle with coligo function create --build-source", clip(s.StrategyType))
	default:
		return Invalid("strategy_type", "%q is not dockerfile", clip(s.StrategyType))
	}
	if _, ok := BuildSizes[s.StrategySize]; !ok {
		return Invalid("strategy_size", "%q is not small, medium, large, xlarge or xxlarge", clip(s.StrategySize))
	}
	if err := relPath("strategy_spec_file", s.StrategySpecFile, 1); err != nil {
		return err
	}
	if err := relPath("source_context_dir", s.SourceContextDir, 0); err != nil {
		return err
	}
	switch s.SourceType {
	case SourceGit:
		if s.SourceURL == "" {
			return Invalid("source_url", "is required for source_type git")
		}
		if len(s.SourceURL) > 253 || !gitURL.MatchString(s.SourceURL) {
			return Invalid("source_url", "%q is not a Git URL (https://host/org/repo or git@host:org/repo.git)", clip(s.SourceURL))
		}
		if len(s.SourceRevision) > 253 || !noSpace.MatchString(s.SourceRevision) || strings.HasPrefix(s.SourceRevision, "-") {
			return Invalid("source_revision", "%q is not a branch, tag or commit", clip(s.SourceRevision))
		}
		if err := subdomainField("source_secret", s.SourceSecret, false); err != nil {
			return err
		}
	case SourceLocal:
		for field, v := range map[string]string{"source_url": s.SourceURL, "source_revision": s.SourceRevision, "source_secret": s.SourceSecret} {
			if v != "" {
				return Invalid(field, "must not be set for source_type local")
			}
		}
	default:
		return Invalid("source_type", "%q is not git or local", clip(s.SourceType))
	}
	if s.Timeout < 1 || s.Timeout > MaxBuildTimeout {
		return Invalid("timeout", "%d is not from 1 to %d seconds", s.Timeout, MaxBuildTimeout)
	}
	seen := map[string]bool{}
	for i, p := range s.RunBuildParams {
		if err := validateBuildParam(p); err != nil {
			return Invalid("run_build_params", "entry %d: %s", i, err)
		}
		if seen[p.Name] {
			return Invalid("run_build_params", "entry %d: %s is given twice", i, p.Name)
		}
		seen[p.Name] = true
	}
	return nil
}

func validateBuildParam(p BuildParam) error {
	switch {
	case !buildTypes[p.Type]:
		return fmt.Errorf("type %q is not literal, secret_key_reference or config_map_key_reference", clip(p.Type))
	case len(p.Name) > 253 || !buildArg.MatchString(p.Name):
		return fmt.Errorf("name %q is not a build argument's name", clip(p.Name))
	case p.Type == EnvLiteral && (p.Reference != "" || p.Key != ""):
		return fmt.Errorf("a literal takes a value, not reference or key")
	case p.Type == EnvLiteral && len(p.Value) > 32<<10:
		return fmt.Errorf("value is over 32 KiB")
	case p.Type != EnvLiteral && p.Value != "":
		return fmt.Errorf("a reference takes reference and key, not a value")
	case p.Type != EnvLiteral && (!IsDNSSubdomain(p.Reference) || p.Key == "" || len(p.Key) > 253):
		return fmt.Errorf("reference %q and key %q must name a key of a secret or config map", clip(p.Reference), clip(p.Key))
	}
	return nil
}

// relPath checks a path inside the source: relative, no "..", no
// whitespace, at most 253 characters, at least min.
func relPath(field, p string, min int) error {
	switch {
	case len(p) < min:
		return Invalid(field, "is required")
	case len(p) > 253 || !noSpace.MatchString(p):
		return Invalid(field, "%q is not a path of at most 253 characters without spaces", clip(p))
	case strings.HasPrefix(p, "/") || strings.HasPrefix(path.Clean("/"+p), "/..") || strings.Contains("/"+p+"/", "/../"):
		return Invalid(field, "%q must stay inside the source (relative, without ..)", clip(p))
	}
	return nil
}

// subdomainField checks a field naming a secret.
func subdomainField(field, v string, required bool) error {
	if v == "" {
		if required {
			return Invalid(field, "is required")
		}
		return nil
	}
	if !IsDNSSubdomain(v) {
		return Invalid(field, "%q is not a secret's name", clip(v))
	}
	return nil
}

// IsImageRef reports whether s is an image reference as Code Engine
// writes one (registry/namespace/repository[:tag][@digest]).
func IsImageRef(s string) bool { return len(s) <= 256 && codeBundle.MatchString(s) }

// IsDNSSubdomain reports whether s is a DNS-1123 subdomain (≤253).
func IsDNSSubdomain(s string) bool {
	return len(s) <= MaxSubdomainish && dns1123Subdomain.MatchString(s)
}
