package core

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestValidateProjectName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"myproject", true},
		{"My Project: v1.2_b-c", true},
		{"Projekt ä 日本", true},
		{strings.Repeat("p", 128), true},
		{strings.Repeat("日", 128), true},
		{"", false},
		{strings.Repeat("p", 129), false},
		{"a/b", false},
		{"tab\there", false},
		{"bad\xffutf8", false},
		{"semi;colon", false},
		// display spoofing: a name that shows as another
		{"prod\u202egnp.exe", false}, // right-to-left override
		{"a\u2066b\u2069", false},    // isolates
		{"pro\u200bd", false},        // zero-width space
		{"pro\u200dd", false},        // zero-width joiner
		{"\ufeffprod", false},        // BOM
		{"prod\u0085", false},        // C1 (next line)
		{"prod\u009b", false},        // C1 CSI
		{"prod\u2028x", false},       // line separator
		{"prod\u3164", false},        // Hangul filler, renders blank
		{"prod\ue000", false},        // private use
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%.20q", tt.name), func(t *testing.T) {
			err := ValidateProjectName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateProjectName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
		})
	}
}

func TestValidateResourceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"db-creds", true},
		{"my.secret.v2", true},
		{"0start", true},
		{strings.Repeat("a", 253), true},
		{strings.Repeat("a", 254), false},
		{"", false},
		{"Upper", false},
		{"-lead", false},
		{"trail-", false},
		{"a..b", false},
		{"under_score", false},
	}
	for _, tt := range tests {
		if err := ValidateResourceName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateResourceName(%.30q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidateSecretData(t *testing.T) {
	tests := []struct {
		format string
		data   map[string]string
		field  string // "" when valid
	}{
		{"generic", map[string]string{"A_b.c-1": "v"}, ""},
		{"generic", nil, ""},
		{"generic", map[string]string{"a b": "v"}, "data"},
		{"generic", map[string]string{strings.Repeat("k", 254): "v"}, "data"},
		{"generic", map[string]string{"k": strings.Repeat("v", MaxDataBytes)}, "data"},
		{"registry", map[string]string{"server": "s", "username": "u", "password": "p"}, ""},
		{"registry", map[string]string{"server": "s", "username": "u", "password": "p", "email": "e"}, ""},
		{"registry", map[string]string{"server": "s", "username": "u"}, "data"},
		{"registry", map[string]string{"server": "s", "username": "u", "password": "p", "x": "y"}, "data"},
		{"basic_auth", map[string]string{"username": "u", "password": "p"}, ""},
		{"ssh_auth", map[string]string{"ssh_key": "k", "known_hosts": "h"}, ""},
		{"tls", map[string]string{"tls_cert": "c"}, "data"},
		{"hmac_auth", map[string]string{"access_key_id": "a", "secret_access_key": "s"}, ""},
		{"", nil, "format"},
		{"other", nil, "format"},
	}
	for _, tt := range tests {
		err := ValidateSecretData(tt.format, tt.data)
		var fe *FieldError
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%s %v: unexpected %v", tt.format, keys(tt.data), err)
		case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
			t.Errorf("%s %v: got %v, want an error on %s", tt.format, keys(tt.data), err, tt.field)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%.10s", k))
	}
	return out
}

// TestSecretDataNeverPrints guards against a secret value reaching a log or
// an error through fmt or slog.
func TestSecretDataNeverPrints(t *testing.T) {
	d := SecretData{"password": "hunter2"}
	s := Secret{Name: "x", Data: d}
	for _, out := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s", d, s, s, d), fmt.Errorf("wrap %v", s).Error()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("formatted output shows the value: %s", out)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "data", d, "secret", s.Data)
	if strings.Contains(buf.String(), "hunter2") {
		t.Errorf("slog shows the value: %s", buf.String())
	}
}

func TestValidateTokenName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"ci", true}, {"deploy bot (main)", true}, {"日本 ci", true},
		{"", false}, {strings.Repeat("x", 129), false}, {"a\nb", false}, {"a\x7fb", false},
		{"ci\u202e", false}, {"c\u200bi", false}, {"ci\u0085", false}, {"bad\xffutf8", false},
	} {
		if err := ValidateTokenName(tt.name); (err == nil) != tt.ok {
			t.Errorf("ValidateTokenName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func FuzzValidateProjectName(f *testing.F) {
	for _, s := range []string{"a", "My Project", "日本", "a/b", strings.Repeat("x", 129), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateProjectName(name); err == nil && (name == "" || len([]rune(name)) > MaxProjectName) {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzValidateResourceName(f *testing.F) {
	for _, s := range []string{"a", "db-creds", "a.b", "-a", "A", strings.Repeat("a", 254)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if err := ValidateResourceName(name); err == nil && (len(name) > 253 || strings.ToLower(name) != name || strings.ContainsAny(name, "_ /")) {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzValidateSecretData(f *testing.F) {
	f.Add("generic", "k", "v")
	f.Add("registry", "server", "s")
	f.Add("tls", "tls_cert", "c")
	f.Add("generic", "a b", "v")
	f.Fuzz(func(t *testing.T, format, key, value string) {
		value = "SeCrEt:" + value
		err := ValidateSecretData(format, map[string]string{key: value})
		if err != nil && strings.Contains(err.Error(), value) && !strings.Contains(key, "SeCrEt:") && !strings.Contains(format, "SeCrEt:") {
			t.Fatalf("error quotes the value: %v", err)
		}
	})
}
