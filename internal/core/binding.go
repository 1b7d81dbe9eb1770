package core

import (
	"regexp"
	"strings"
	"time"
)

// KindBinding is the store kind of bindings, keyed by id.
const KindBinding = "binding"

// MaxBindingsPerProject bounds a project's bindings.
const MaxBindingsPerProject = 100

// Binding gives a component (an app or a job) a secret's keys as
// PREFIX_KEY environment variables.
type Binding struct {
	ID         string           `json:"id"`
	Component  BindingComponent `json:"component"`
	SecretName string           `json:"secret_name"`
	Prefix     string           `json:"prefix"`
	CreatedAt  time.Time        `json:"created_at"`
}

// BindingComponent names what a binding binds: resource type app_v2 or
// job_v2.
type BindingComponent struct {
	Name         string `json:"name"`
	ResourceType string `json:"resource_type"`
}

// The components a secret binds to, by resource type, and their kinds.
var BindingKinds = map[string]string{"app_v2": KindApp, "job_v2": KindJob}

var bindingPrefix = regexp.MustCompile(`^[A-Z]([_A-Z0-9]*[A-Z0-9])*$`)

// ValidateBinding checks a binding with its prefix set.
func ValidateBinding(b Binding) error {
	if BindingKinds[b.Component.ResourceType] == "" {
		return Invalid("component", "resource_type %q is not app_v2 or job_v2", clip(b.Component.ResourceType))
	}
	if !IsDNSLabel(b.Component.Name) {
		return Invalid("component", "name %q is not the name of an app or a job", clip(b.Component.Name))
	}
	if err := subdomainField("secret_name", b.SecretName, true); err != nil {
		return err
	}
	if len(b.Prefix) > 31 || !bindingPrefix.MatchString(b.Prefix) {
		return Invalid("prefix", "%q is not 1 to 31 upper-case letters, digits and '_', beginning with a letter and not ending with '_'", clip(b.Prefix))
	}
	return nil
}

// BindingPrefix is the prefix of a binding that names none: its secret's
// name in upper snake case (my-db → MY_DB), at most 31 characters.
func BindingPrefix(secret string) string {
	p := strings.Trim(upperSnake(secret), "_")
	if p == "" || p[0] < 'A' || p[0] > 'Z' {
		p = "S_" + p
	}
	if len(p) > 31 {
		p = strings.TrimRight(p[:31], "_")
	}
	return p
}

// BindingEnvName is the variable a bound key becomes: PREFIX_KEY, the key
// in upper case with '_' for anything but letters and digits.
func BindingEnvName(prefix, key string) string { return prefix + "_" + upperSnake(key) }

func upperSnake(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}
