package core

import (
	"encoding/base64"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Function defaults and limits from the Code Engine reference
// (CE-FUNCTIONS.md §2, §10).
const (
	KindFunction = "function"

	DefaultFunctionMain           = "main"
	DefaultFunctionConcurrency    = 1
	MaxFunctionConcurrency        = 100
	DefaultFunctionCPU            = "1"
	DefaultFunctionMemory         = "4G"
	DefaultFunctionScaleDownDelay = 1
	MaxFunctionScaleDownDelay     = 600
	DefaultFunctionExecutionTime  = 60
	MaxFunctionExecutionTime      = 120
	MaxFunctionsPerProject        = 20
	// MaxInlineCode is the most a data URL code_reference may hold, base64
	// included: the documented 100 KB (limits.md).
	MaxInlineCode = 100 << 10
	// MaxCodeReference is the API's limit on code_reference.
	MaxCodeReference = 1 << 20
)

// Function statuses and reasons (§3).
const (
	FunctionDeploying = "deploying"
	FunctionReady     = "ready"
	FunctionFailed    = "failed"
	FunctionOffline   = "offline"

	ReasonNoCodeBundle    = "no_code_bundle"
	ReasonFunctionUnknown = "unknown_reason"
)

// functionPairs are the valid CPU/memory pairs of a function (§10).
var functionPairs = map[string]string{"0.25": "1G", "0.5": "2G", "1": "4G"}

var (
	functionRuntime = regexp.MustCompile(`^[a-z]*-[0-9]*(\.[0-9]*)?$`)
	functionMain    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	// codeBundle is Code Engine's pattern of a code bundle's image
	// reference, with an optional registry port.
	codeBundle = regexp.MustCompile(`^([a-z0-9][a-z0-9\-_.]+[a-z0-9](:[0-9]{1,5})?/)?([a-z0-9][a-z0-9\-_]+[a-z0-9]/)?[a-z0-9][a-z0-9\-_./]+[a-z0-9](:[\w][\w.\-]{0,127})?(@sha256:[a-fA-F0-9]{64})?$`)
	// dataURL is RFC 2397 as Code Engine takes it: base64 only.
	dataURL = regexp.MustCompile(`^data:([-\w]+/[-+\w.]+)?(;?\w+=[-\w]+)*;base64,`)
)

// FunctionSpec is what a function runs: every field of its prototype but
// its name.
type FunctionSpec struct {
	Runtime                        string   `json:"runtime"`
	CodeReference                  string   `json:"code_reference"`
	CodeBinary                     bool     `json:"code_binary"`
	CodeMain                       string   `json:"code_main"`
	CodeSecret                     string   `json:"code_secret,omitempty"`
	ManagedDomainMappings          string   `json:"managed_domain_mappings"`
	RunEnvVariables                []EnvVar `json:"run_env_variables"`
	RunComputeResourceTokenEnabled bool     `json:"run_compute_resource_token_enabled"`
	ScaleConcurrency               int      `json:"scale_concurrency"`
	ScaleCPULimit                  string   `json:"scale_cpu_limit"`
	ScaleMemoryLimit               string   `json:"scale_memory_limit"`
	ScaleDownDelay                 int      `json:"scale_down_delay"`
	ScaleMaxExecutionTime          int      `json:"scale_max_execution_time"`
}

// NewFunctionSpec returns a spec with Code Engine's defaults.
func NewFunctionSpec() FunctionSpec {
	return FunctionSpec{
		CodeMain: DefaultFunctionMain, ManagedDomainMappings: VisibilityPublic, RunEnvVariables: []EnvVar{},
		ScaleConcurrency: DefaultFunctionConcurrency, ScaleCPULimit: DefaultFunctionCPU, ScaleMemoryLimit: DefaultFunctionMemory,
		ScaleDownDelay: DefaultFunctionScaleDownDelay, ScaleMaxExecutionTime: DefaultFunctionExecutionTime,
	}
}

// Function is a function's record.
type Function struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	CreatedAt time.Time    `json:"created_at"`
	Spec      FunctionSpec `json:"spec"`
	// Generation counts the changes of Spec; the controller serves the
	// latest.
	Generation int    `json:"generation"`
	Status     string `json:"status"`
	Reason     string `json:"reason"`
	// CodePinned is the code bundle this generation runs, pinned to its
	// digest when first fetched: a tag moved later changes nothing until
	// the function is updated.
	CodePinned string `json:"code_pinned,omitempty"`
}

// Code is a function's code as a code_reference gives it: inline source,
// or the image reference of a code bundle.
type Code struct {
	Inline []byte // the source of a data URL
	Bundle string // a code bundle's image reference
}

// ParseCodeReference reads a code_reference: a base64 data URL of at most
// MaxInlineCode, or a code bundle's image reference (cr:// prefix
// dropped).
func ParseCodeReference(ref string) (Code, error) {
	if ref == "" {
		return Code{}, Invalid("code_reference", "is required")
	}
	if len(ref) > MaxCodeReference {
		return Code{}, Invalid("code_reference", "is longer than %d characters", MaxCodeReference)
	}
	if strings.HasPrefix(ref, "data:") {
		if len(ref) > MaxInlineCode {
			return Code{}, Invalid("code_reference", "inline code is %d bytes with its base64; the limit is %d (100 KB)", len(ref), MaxInlineCode)
		}
		head := dataURL.FindString(ref)
		if head == "" {
			return Code{}, Invalid("code_reference", "a data URL must read data:[<type>][;<name>=<value>];base64,<code>")
		}
		src, err := base64.StdEncoding.DecodeString(ref[len(head):])
		if err != nil {
			return Code{}, Invalid("code_reference", "the data URL's code is not base64")
		}
		if len(src) == 0 {
			return Code{}, Invalid("code_reference", "the data URL holds no code")
		}
		return Code{Inline: src}, nil
	}
	bundle := strings.TrimPrefix(ref, "cr://")
	if len(bundle) > 256 || !codeBundle.MatchString(bundle) {
		return Code{}, Invalid("code_reference", "%q is neither a data URL (data:text/plain;base64,...) nor a code bundle's image reference (registry/namespace/repository[:tag])", clip(ref))
	}
	return Code{Bundle: bundle}, nil
}

// FunctionEnv is what coligo sets in a function's instances
// (computed_env_variables, §9), sorted by name.
func FunctionEnv(pl Platform, p Project, name string) []EnvVar {
	out := append(PlatformEnv(pl, p), EnvVar{Type: EnvLiteral, Name: "CE_FUNCTION", Value: name})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ValidateFunctionName checks a function name as an app's.
func ValidateFunctionName(name string) error { return ValidateAppName(name) }

// ValidateFunctionSpec checks a defaulted spec; known tells which runtime
// ids this server runs.
func ValidateFunctionSpec(s FunctionSpec, known func(runtime string) bool) error {
	if s.Runtime == "" {
		return Invalid("runtime", "is required")
	}
	if len(s.Runtime) > 63 || !functionRuntime.MatchString(s.Runtime) {
		return Invalid("runtime", "%q is not a runtime id such as nodejs-20 or python-3.11", clip(s.Runtime))
	}
	if !known(s.Runtime) {
		return Invalid("runtime", "%q is not a runtime of this server; GET /v2/function_runtimes lists them", clip(s.Runtime))
	}
	code, err := ParseCodeReference(s.CodeReference)
	if err != nil {
		return err
	}
	if code.Bundle != "" && !s.CodeBinary {
		return Invalid("code_binary", "must be true for a code bundle")
	}
	if len(s.CodeMain) > 63 || !functionMain.MatchString(s.CodeMain) {
		return Invalid("code_main", "%q is not an identifier of at most 63 characters", clip(s.CodeMain))
	}
	if s.CodeSecret != "" {
		if err := ValidateResourceName(s.CodeSecret); err != nil {
			return Invalid("code_secret", "%s", err.(*FieldError).Message)
		}
	}
	switch s.ManagedDomainMappings {
	case VisibilityPublic, VisibilityProject:
	case VisibilityPrivate:
		return Invalid("managed_domain_mappings", "local_private needs a private network, which this server does not have; use local_public or local")
	default:
		return Invalid("managed_domain_mappings", "%q is not local_public, local_private or local", clip(s.ManagedDomainMappings))
	}
	if mem, ok := functionPairs[s.ScaleCPULimit]; !ok || !sameSize(mem, s.ScaleMemoryLimit) {
		return Invalid("scale_cpu_limit", "%q with %q is not a valid pair; a function takes 0.25 vCPU with 1G, 0.5 with 2G or 1 with 4G", clip(s.ScaleCPULimit), clip(s.ScaleMemoryLimit))
	}
	for i, e := range s.RunEnvVariables {
		if err := validateEnvVar(e); err != nil {
			return Invalid("run_env_variables", "entry %d: %s", i, err.(*FieldError).Message)
		}
	}
	ints := []struct {
		field   string
		v, a, b int
	}{
		{"scale_concurrency", s.ScaleConcurrency, 1, MaxFunctionConcurrency},
		{"scale_down_delay", s.ScaleDownDelay, 0, MaxFunctionScaleDownDelay},
		{"scale_max_execution_time", s.ScaleMaxExecutionTime, 1, MaxFunctionExecutionTime},
	}
	for _, n := range ints {
		if n.v < n.a || n.v > n.b {
			return Invalid(n.field, "%d is not from %d to %d", n.v, n.a, n.b)
		}
	}
	return nil
}

// sameSize reports whether two sizes are the same number of bytes.
func sameSize(a, b string) bool {
	x, err := ParseBytes("scale_memory_limit", a)
	if err != nil {
		return false
	}
	y, err := ParseBytes("scale_memory_limit", b)
	return err == nil && x == y
}
