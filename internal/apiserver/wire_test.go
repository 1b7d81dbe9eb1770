package apiserver

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		body, code, mention string
	}{
		{`{"name":"a","format":"generic","data":{"k":"v"}}`, "", ""},
		{`{"name":"a",}`, "bad_request", "malformed JSON"},
		{`{"name":"a"} x`, "bad_request", "after the JSON"},
		{`{"name":"a"}{}`, "bad_request", "after the JSON"},
		{`{"nme":"a"}`, "invalid_field", `"nme"`},
		{`{"name":["a"]}`, "invalid_name", "string"},
		{`{"data":{"k":{"x":1}}}`, "invalid_data", "string"},
		{`{"data":{"k":"1","k":"2"}}`, "invalid_data", `"data.k" appears more than once`},
		{`"str"`, "bad_request", "JSON object"},
		{` `, "bad_request", "empty"},
		{`{"name":"a"`, "bad_request", "unexpected end"},
	}
	for _, tt := range tests {
		var v api.SecretPrototype
		err := DecodeJSON([]byte(tt.body), &v)
		if tt.code == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.body, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.code != tt.code || !strings.Contains(ae.msg, tt.mention) {
			t.Errorf("%s: got %v, want %s mentioning %q", tt.body, err, tt.code, tt.mention)
		}
	}
}

func TestIfMatch(t *testing.T) {
	tests := []struct {
		header string
		want   uint64
		err    error
	}{
		{"", 0, errPreconditionRequired},
		{"*", 0, nil},
		{"17", 17, nil},
		{`"17"`, 17, nil},
		{`W/"17"`, 17, nil},
		{"abc", 0, core.ErrConflict},
		{"0", 0, core.ErrConflict},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("PUT", "/", nil)
		if tt.header != "" {
			r.Header.Set("If-Match", tt.header)
		}
		got, err := ifMatch(r)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("If-Match %q: got %d %v, want %d %v", tt.header, got, err, tt.want, tt.err)
		}
	}
}

func TestStartRoundTrip(t *testing.T) {
	for _, pos := range []string{"a", "2026-01-01T00:00:00Z|0000", "ä/日本"} {
		got, err := DecodeStart(EncodeStart(pos))
		if err != nil || got != pos {
			t.Errorf("%q: got %q %v", pos, got, err)
		}
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a","format":"generic","data":{"k":"v"}}`, `{"name":1}`, `{"a":{"a":1,"a":2}}`, `[`, `{"data":{"k":"v","k":"w"}}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s api.SecretPrototype
		err := DecodeJSON(b, &s)
		if err == nil {
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != 400 && ae.status != 413 {
			t.Fatalf("decode error %v is not a 400", err)
		}
	})
}

func FuzzDecodeStart(f *testing.F) {
	f.Add(EncodeStart("name"))
	f.Add("!!!")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := DecodeStart(s)
		if err == nil && EncodeStart(pos) != s {
			t.Fatalf("start %q decodes to %q which encodes differently", s, pos)
		}
	})
}

// FuzzAppSpecFrom decodes an app prototype and builds its spec: no input
// panics, and whatever is accepted is a valid spec.
func FuzzAppSpecFrom(f *testing.F) {
	f.Add([]byte(`{"name":"a","image_reference":"r/i:1","scale_max_instances":0,"probe_readiness":{"type":"http","path":"/"}}`))
	f.Add([]byte(`{"image_reference":"r","run_volume_mounts":[{"type":"secret","reference":"s","mount_path":"/s"}],"scale_concurrency_target":0}`))
	f.Add([]byte(`{"image_reference":"r","image_port":9090,"managed_domain_mappings":"local","scale_cpu_limit":"0.5","scale_memory_limit":"2G"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var in api.AppPrototype
		if DecodeJSON(b, &in) != nil {
			return
		}
		s, err := appSpecFrom(in.AppSpec)
		if err != nil {
			if !errors.Is(err, core.ErrInvalid) {
				t.Fatalf("error of another class: %v", err)
			}
			return
		}
		if err := core.ValidateAppSpec(s); err != nil {
			t.Fatalf("accepted an invalid spec: %v", err)
		}
		if s.Target() < 1 || s.Target() > s.ScaleConcurrency {
			t.Fatalf("target %d outside 1..%d", s.Target(), s.ScaleConcurrency)
		}
	})
}
