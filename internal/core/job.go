package core

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Run modes of jobs.
const (
	ModeTask   = "task"
	ModeDaemon = "daemon"
)

// Job defaults and limits from the Code Engine reference (§1.4, §1.12).
const (
	DefaultArraySpec        = "0"
	DefaultCPU              = "1"
	DefaultMemory           = "4G"
	DefaultEphemeral        = "400M"
	DefaultMaxExecutionTime = 7200
	DefaultRetryLimit       = 3
	MaxArrayIndices         = 1000
	MaxArrayIndex           = 9_999_999
	MaxRetryLimit           = 5
	MaxExecutionTime        = 86400
	MaxJobDefinitionBytes   = 10 << 10
)

var (
	jobName    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	envVarName = regexp.MustCompile(`^[-._a-zA-Z][-._a-zA-Z0-9]*$`)
)

// EnvVar is one entry of run_env_variables.
type EnvVar struct {
	Type      string `json:"type"`
	Name      string `json:"name,omitempty"`
	Value     string `json:"value,omitempty"`
	Reference string `json:"reference,omitempty"`
	Key       string `json:"key,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
}

// Env var types.
const (
	EnvLiteral       = "literal"
	EnvSecretFull    = "secret_full_reference"
	EnvSecretKey     = "secret_key_reference"
	EnvConfigMapFull = "config_map_full_reference"
	EnvConfigMapKey  = "config_map_key_reference"
)

// RunSpec is what a job template and a job run share.
type RunSpec struct {
	// Build and BuildRun name the build configuration and the build run
	// that made the image, where the CLI built it (--build-source).
	Build          string   `json:"build,omitempty"`
	BuildRun       string   `json:"build_run,omitempty"`
	ImageReference string   `json:"image_reference"`
	ImageSecret    string   `json:"image_secret,omitempty"`
	RunArguments   []string `json:"run_arguments"`
	RunCommands    []string `json:"run_commands"`
	RunAsUser      int      `json:"run_as_user"`
	// RunComputeResourceTokenEnabled mounts a compute resource token into
	// the instances (computetoken.Path).
	RunComputeResourceTokenEnabled bool          `json:"run_compute_resource_token_enabled"`
	RunEnvVariables                []EnvVar      `json:"run_env_variables"`
	RunVolumeMounts                []VolumeMount `json:"run_volume_mounts,omitempty"`
	RunMode                        string        `json:"run_mode"`
	RunServiceAccount              string        `json:"run_service_account"`
	ScaleArraySpec                 string        `json:"scale_array_spec"`
	ScaleCPULimit                  string        `json:"scale_cpu_limit"`
	ScaleMemoryLimit               string        `json:"scale_memory_limit"`
	ScaleEphemeralStorageLimit     string        `json:"scale_ephemeral_storage_limit"`
	ScaleMaxExecutionTime          int           `json:"scale_max_execution_time,omitempty"`
	ScaleRetryLimit                int           `json:"scale_retry_limit,omitempty"`
}

// Defaults fills what is unset with Code Engine's defaults.
func (s *RunSpec) Defaults() {
	if s.RunMode == "" {
		s.RunMode = ModeTask
	}
	if s.ScaleArraySpec == "" {
		s.ScaleArraySpec = DefaultArraySpec
	}
	if s.ScaleCPULimit == "" {
		s.ScaleCPULimit = DefaultCPU
	}
	if s.ScaleMemoryLimit == "" {
		s.ScaleMemoryLimit = DefaultMemory
	}
	if s.ScaleEphemeralStorageLimit == "" {
		s.ScaleEphemeralStorageLimit = DefaultEphemeral
	}
	if s.RunServiceAccount == "" {
		s.RunServiceAccount = "default"
	}
	if s.RunArguments == nil {
		s.RunArguments = []string{}
	}
	if s.RunCommands == nil {
		s.RunCommands = []string{}
	}
	if s.RunEnvVariables == nil {
		s.RunEnvVariables = []EnvVar{}
	}
}

// Job is a batch job template.
type Job struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	RunSpec
}

// ValidateJobName checks a job name: [a-z0-9-], begins and ends alphanumeric, ≤63.
func ValidateJobName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if len(name) > 63 || !jobName.MatchString(name) {
		return Invalid("name", "%q must be at most 63 lowercase letters, digits and '-', beginning and ending with a letter or digit", clip(name))
	}
	return nil
}

// ValidateJobRunName checks a job run name: like a job's, at most 53.
func ValidateJobRunName(name string) error {
	if name == "" {
		return Invalid("name", "must not be empty")
	}
	if len(name) > 53 || !jobName.MatchString(name) {
		return Invalid("name", "%q must be at most 53 lowercase letters, digits and '-', beginning and ending with a letter or digit", clip(name))
	}
	return nil
}

// ValidateRunSpec checks a defaulted spec.
func ValidateRunSpec(s RunSpec) error {
	if err := validateImage(s.ImageReference, s.ImageSecret); err != nil {
		return err
	}
	if err := validateBuildRefs(s.Build, s.BuildRun); err != nil {
		return err
	}
	if err := validateMounts(s.RunVolumeMounts); err != nil {
		return err
	}
	switch s.RunMode {
	case ModeTask:
		if s.ScaleMaxExecutionTime < 0 || s.ScaleMaxExecutionTime > MaxExecutionTime {
			return Invalid("scale_max_execution_time", "must be from 1 to %d seconds", MaxExecutionTime)
		}
		if s.ScaleRetryLimit < 0 || s.ScaleRetryLimit > MaxRetryLimit {
			return Invalid("scale_retry_limit", "must be from 0 to %d", MaxRetryLimit)
		}
	case ModeDaemon:
		if s.ScaleMaxExecutionTime != 0 {
			return Invalid("scale_max_execution_time", "cannot be set in daemon mode")
		}
		if s.ScaleRetryLimit != 0 {
			return Invalid("scale_retry_limit", "cannot be set in daemon mode")
		}
	default:
		return Invalid("run_mode", "%q is not task or daemon", clip(s.RunMode))
	}
	if _, err := ParseArraySpec(s.ScaleArraySpec); err != nil {
		return err
	}
	if err := validateRun(s.ScaleCPULimit, s.ScaleMemoryLimit, s.ScaleEphemeralStorageLimit, s.RunServiceAccount, s.RunAsUser, s.RunEnvVariables); err != nil {
		return err
	}
	return nil
}

// validateRun checks what jobs and apps share: resources, service
// account, user and environment.
func validateRun(cpu, memory, ephemeral, serviceAccount string, uid int, env []EnvVar) error {
	if err := ValidateResources(cpu, memory, ephemeral); err != nil {
		return err
	}
	switch serviceAccount {
	case "default", "manager", "none", "reader", "writer":
	default:
		return Invalid("run_service_account", "%q is not default, manager, none, reader or writer", clip(serviceAccount))
	}
	if uid < 0 {
		return Invalid("run_as_user", "must not be negative")
	}
	for i, e := range env {
		if err := validateEnvVar(e); err != nil {
			return Invalid("run_env_variables", "entry %d: %s", i, err.(*FieldError).Message)
		}
	}
	return nil
}

func validateEnvVar(e EnvVar) error {
	switch e.Type {
	case EnvLiteral, "":
		if !envVarName.MatchString(e.Name) {
			return Invalid("name", "%q is not a valid variable name", clip(e.Name))
		}
	case EnvSecretFull, EnvConfigMapFull:
		if err := ValidateResourceName(e.Reference); err != nil {
			return Invalid("reference", "%s", err.(*FieldError).Message)
		}
		if e.Prefix != "" && !envVarName.MatchString(e.Prefix) {
			return Invalid("prefix", "%q is not a valid variable name prefix", clip(e.Prefix))
		}
	case EnvSecretKey, EnvConfigMapKey:
		if err := ValidateResourceName(e.Reference); err != nil {
			return Invalid("reference", "%s", err.(*FieldError).Message)
		}
		if e.Key == "" || !dataKey.MatchString(e.Key) {
			return Invalid("key", "%q is not a valid key", clip(e.Key))
		}
		if e.Name != "" && !envVarName.MatchString(e.Name) {
			return Invalid("name", "%q is not a valid variable name", clip(e.Name))
		}
	default:
		return Invalid("type", "%q is not literal, secret_full_reference, secret_key_reference, config_map_full_reference or config_map_key_reference", clip(e.Type))
	}
	return nil
}

// ParseArraySpec parses a job's array spec ("0-9", "1,3,5-7") into sorted,
// distinct indices: at most 1000 of them, each at most 9,999,999.
func ParseArraySpec(spec string) ([]int, error) {
	if spec == "" {
		return nil, Invalid("scale_array_spec", "must not be empty")
	}
	if len(spec) > 253 {
		return nil, Invalid("scale_array_spec", "must be at most 253 characters")
	}
	seen := map[int]bool{}
	var out []int
	for _, part := range strings.Split(spec, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parseIndex(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parseIndex(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, Invalid("scale_array_spec", "range %q ends before it begins", clip(part))
			}
		}
		if b-a+1 > MaxArrayIndices {
			return nil, Invalid("scale_array_spec", "holds more than %d indices", MaxArrayIndices)
		}
		for i := a; i <= b; i++ {
			if !seen[i] {
				seen[i] = true
				out = append(out, i)
			}
		}
		if len(out) > MaxArrayIndices {
			return nil, Invalid("scale_array_spec", "holds more than %d indices", MaxArrayIndices)
		}
	}
	slices.Sort(out)
	return out, nil
}

func parseIndex(s string) (int, error) {
	if s == "" || len(s) > 7 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, Invalid("scale_array_spec", "%q is not an index (1 to 7 digits) or a range of two", clip(s))
	}
	n, _ := strconv.Atoi(s)
	return n, nil
}

// FormatIndices writes indices as an array spec with ranges ("1,3,5-7").
func FormatIndices(idx []int) string {
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j == i {
			fmt.Fprintf(&b, "%d", idx[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", idx[i], idx[j])
		}
		i = j + 1
	}
	return b.String()
}
