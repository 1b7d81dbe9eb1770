package core

import (
	"encoding/base64"
	"strings"
	"testing"
)

func inline(src string) string {
	return "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(src))
}

func TestParseCodeReference(t *testing.T) {
	tests := []struct {
		ref, inline, bundle, err string
	}{
		{ref: inline("function main() {}"), inline: "function main() {}"},
		{ref: "data:;base64," + base64.StdEncoding.EncodeToString([]byte("x")), inline: "x"},
		{ref: "data:text/plain;charset=utf-8;base64," + base64.StdEncoding.EncodeToString([]byte("x")), inline: "x"},
		{ref: "icr.io/ns/repo:tag", bundle: "icr.io/ns/repo:tag"},
		{ref: "cr://icr.io/ns/repo", bundle: "icr.io/ns/repo"},
		{ref: "127.0.0.1:5000/ns/repo:v1", bundle: "127.0.0.1:5000/ns/repo:v1"},
		{ref: "", err: "is required"},
		{ref: "data:text/plain,plain", err: "data URL must read"},
		{ref: "data:text/plain;base64,!!!", err: "not base64"},
		{ref: "data:text/plain;base64,", err: "holds no code"},
		{ref: "data:text/plain;base64," + strings.Repeat("QUFB", 30000), err: "the limit is 102400"},
		{ref: "Not An Image", err: "neither a data URL"},
		{ref: "http://example.com/code.js", err: "neither a data URL"},
		{ref: strings.Repeat("a", MaxCodeReference+1), err: "longer than"},
	}
	for _, tt := range tests {
		code, err := ParseCodeReference(tt.ref)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "code_reference") {
				t.Errorf("%.40q: %v, want an error on code_reference saying %q", tt.ref, err, tt.err)
			}
			continue
		}
		if err != nil || string(code.Inline) != tt.inline || code.Bundle != tt.bundle {
			t.Errorf("%.40q: %+v %v, want inline %q bundle %q", tt.ref, code, err, tt.inline, tt.bundle)
		}
	}
}

func TestValidateFunctionSpec(t *testing.T) {
	known := func(id string) bool { return id == "nodejs-20" || id == "python-3.11" }
	valid := func() FunctionSpec {
		s := NewFunctionSpec()
		s.Runtime, s.CodeReference = "nodejs-20", inline("function main() {}")
		return s
	}
	tests := []struct {
		name   string
		change func(*FunctionSpec)
		field  string // "" when valid
	}{
		{"defaults", func(*FunctionSpec) {}, ""},
		{"python", func(s *FunctionSpec) { s.Runtime = "python-3.11" }, ""},
		{"a code bundle", func(s *FunctionSpec) { s.CodeReference, s.CodeBinary, s.CodeSecret = "icr.io/ns/fn:1", true, "regcred" }, ""},
		{"small pair", func(s *FunctionSpec) { s.ScaleCPULimit, s.ScaleMemoryLimit = "0.25", "1G" }, ""},
		{"pair in other units", func(s *FunctionSpec) { s.ScaleCPULimit, s.ScaleMemoryLimit = "0.5", "2000M" }, ""},
		{"no runtime", func(s *FunctionSpec) { s.Runtime = "" }, "runtime"},
		{"runtime pattern", func(s *FunctionSpec) { s.Runtime = "Node 20" }, "runtime"},
		{"unknown runtime", func(s *FunctionSpec) { s.Runtime = "nodejs-99" }, "runtime"},
		{"a bundle not binary", func(s *FunctionSpec) { s.CodeReference = "icr.io/ns/fn:1" }, "code_binary"},
		{"main", func(s *FunctionSpec) { s.CodeMain = "1main" }, "code_main"},
		{"code secret", func(s *FunctionSpec) { s.CodeSecret = "Bad_Name" }, "code_secret"},
		{"private visibility", func(s *FunctionSpec) { s.ManagedDomainMappings = VisibilityPrivate }, "managed_domain_mappings"},
		{"odd pair", func(s *FunctionSpec) { s.ScaleCPULimit, s.ScaleMemoryLimit = "1", "2G" }, "scale_cpu_limit"},
		{"an app's pair", func(s *FunctionSpec) { s.ScaleCPULimit, s.ScaleMemoryLimit = "2", "8G" }, "scale_cpu_limit"},
		{"concurrency", func(s *FunctionSpec) { s.ScaleConcurrency = 101 }, "scale_concurrency"},
		{"scale down delay", func(s *FunctionSpec) { s.ScaleDownDelay = 601 }, "scale_down_delay"},
		{"execution time", func(s *FunctionSpec) { s.ScaleMaxExecutionTime = 121 }, "scale_max_execution_time"},
		{"no execution time", func(s *FunctionSpec) { s.ScaleMaxExecutionTime = 0 }, "scale_max_execution_time"},
		{"env", func(s *FunctionSpec) { s.RunEnvVariables = []EnvVar{{Type: EnvLiteral, Name: "1X"}} }, "run_env_variables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := valid()
			tt.change(&s)
			err := ValidateFunctionSpec(s, known)
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("%v, want valid", err)
			case tt.field != "" && (err == nil || err.(*FieldError).Field != tt.field):
				t.Errorf("%v, want an error on %s", err, tt.field)
			}
		})
	}
}

// FuzzParseCodeReference: any code_reference is taken or refused with an
// error naming the field, never a panic; inline code is at most 100 KB.
func FuzzParseCodeReference(f *testing.F) {
	for _, s := range []string{inline("x"), "data:;base64,", "data:text/plain;a=b;base64,eA==", "cr://icr.io/a/b:c", "a/b@sha256:" + strings.Repeat("0", 64), "data:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		code, err := ParseCodeReference(ref)
		if err != nil {
			if fe, ok := err.(*FieldError); !ok || fe.Field != "code_reference" {
				t.Fatalf("%q: %v", ref, err)
			}
			return
		}
		if (len(code.Inline) > 0) == (code.Bundle != "") || len(code.Inline) > MaxInlineCode {
			t.Fatalf("%q: %+v", ref, code)
		}
	})
}
