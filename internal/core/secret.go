package core

import (
	"log/slog"
	"time"
)

// Redacted is what a secret value shows in logs, errors and reader output.
const Redacted = "REDACTED"

// SecretData holds secret values. It never prints them: fmt and slog show
// REDACTED, while encoding/json still encodes the map for the sealed store and
// the one API response that returns values.
type SecretData map[string]string

// LogValue implements slog.LogValuer.
func (d SecretData) LogValue() slog.Value { return slog.StringValue(Redacted) }

// String implements fmt.Stringer so that %v and %s never show values.
func (d SecretData) String() string { return Redacted }

// GoString implements fmt.GoStringer so that %#v never shows values.
func (d SecretData) GoString() string { return Redacted }

// Redact returns a copy with every value replaced by REDACTED.
func (d SecretData) Redact() map[string]string {
	out := make(map[string]string, len(d))
	for k := range d {
		out[k] = Redacted
	}
	return out
}

// Secret formats coligo manages.
const (
	FormatGeneric   = "generic"
	FormatRegistry  = "registry"
	FormatBasicAuth = "basic_auth"
	FormatSSHAuth   = "ssh_auth"
	FormatTLS       = "tls"
	FormatHMACAuth  = "hmac_auth"
)

// secretFormats maps each format to its required and optional keys; generic
// takes any keys.
var secretFormats = map[string]struct{ required, optional []string }{
	FormatGeneric:   {},
	FormatRegistry:  {required: []string{"server", "username", "password"}, optional: []string{"email"}},
	FormatBasicAuth: {required: []string{"username", "password"}},
	FormatSSHAuth:   {required: []string{"ssh_key"}, optional: []string{"known_hosts"}},
	FormatTLS:       {required: []string{"tls_cert", "tls_key"}},
	FormatHMACAuth:  {required: []string{"access_key_id", "secret_access_key"}},
}

// Secret is a named set of sensitive key/value pairs in a project.
type Secret struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Format    string     `json:"format"`
	Data      SecretData `json:"data"`
	CreatedAt time.Time  `json:"created_at"`
}

// ConfigMap is a named set of non-sensitive key/value pairs in a project.
type ConfigMap struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Data      map[string]string `json:"data"`
	CreatedAt time.Time         `json:"created_at"`
}
