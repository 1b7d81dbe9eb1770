package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/auth"
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
		// Case variants are other keys, not the field: once {"name":"aa","NAME":"bb"} created "bb".
		{`{"name":"aa","NAME":"bb"}`, "invalid_field", `"NAME"`},
		{`{"Name":"a"}`, "invalid_field", `"Name"`},
		{`{"name":"a","data":{"k":"v","K":"w"}}`, "", ""}, // data keys are the user's, and case-sensitive
		// Nesting is capped before anything walks the body: 1,500,000 '[' once overflowed the stack.
		{strings.Repeat("[", 1_500_000), "bad_request", "deeper than 64"},
		{`{"data":` + strings.Repeat(`{"a":`, 64) + `1` + strings.Repeat("}", 65), "bad_request", "deeper than 64"},
		{`{"name":"` + strings.Repeat("[", 100) + `"}`, "", ""}, // brackets in a string do not nest
		{`{"name":"\"` + strings.Repeat("{", 100) + `"}`, "", ""},
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
	for _, s := range []string{`{"name":"a","format":"generic","data":{"k":"v"}}`, `{"name":1}`, `{"a":{"a":1,"a":2}}`, `[`, `{"data":{"k":"v","k":"w"}}`, `null`,
		`{"name":"aa","NAME":"bb"}`, `{"nAmE":"x","data":{"k":"v"}}`, strings.Repeat("[", 100), strings.Repeat(`{"a":`, 70), `{"name":"\\\"["}`} {
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

// TestMergePatch replays RFC 7396's appendix A (the cases whose patch and
// target are objects, as every PATCH body here is) through applyPatch.
func TestMergePatch(t *testing.T) {
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// once answered 400: nested objects were replaced, not merged
		{`{"probe_readiness":{"type":"http","path":"/a","port":8080}}`, `{"probe_readiness":{"path":"/b"}}`,
			`{"probe_readiness":{"type":"http","path":"/b","port":8080}}`},
	}
	for _, tt := range tests {
		var cur map[string]any
		if err := json.Unmarshal([]byte(tt.target), &cur); err != nil {
			t.Fatal(err)
		}
		got, err := applyPatch[map[string]any](cur, []byte(tt.patch))
		if err != nil {
			t.Errorf("%s + %s: %v", tt.target, tt.patch, err)
			continue
		}
		var want map[string]any
		json.Unmarshal([]byte(tt.want), &want)
		if diff := cmp.Diff(want, normalize(got)); diff != "" {
			t.Errorf("%s + %s (-want +got):\n%s", tt.target, tt.patch, diff)
		}
	}
}

// normalize turns the int64s of a strict decode into the float64s of
// encoding/json, so both sides compare alike.
func normalize(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// TestReadPatchRefusesNestedDuplicates: a merge patch collapses what it
// parses, so duplicates inside it are refused before, at any depth.
func TestReadPatchRefusesNestedDuplicates(t *testing.T) {
	for _, body := range []string{`{"probe_readiness":{"path":"/a","path":"/b"}}`, `{"a":1,"a":2}`, `{"run_env_variables":[{"name":"A","name":"B"}]}`} {
		r := httptest.NewRequest("PATCH", "/", strings.NewReader(body))
		r.Header.Set("If-Match", "*")
		_, _, err := readPatch(r)
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != 400 || !strings.Contains(ae.msg, "more than once") {
			t.Errorf("%s: got %v, want a 400 naming the duplicate", body, err)
		}
	}
}

// TestFollowStreamsPerToken: a token follows at most MaxFollowsPerToken
// log streams at once; another token is not held back by it, and a slot
// comes back when its stream ends.
func TestFollowStreamsPerToken(t *testing.T) {
	a := &API{follows: map[string]int{}}
	req := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		return r.WithContext(context.WithValue(r.Context(), principalKey{}, auth.Principal{TokenID: tok}))
	}
	var releases []func()
	for range MaxFollowsPerToken {
		rel, err := a.stream(httptest.NewRecorder(), req("t1"), true)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, rel)
	}
	var ae *apiError
	if _, err := a.stream(httptest.NewRecorder(), req("t1"), true); !errors.As(err, &ae) || ae.status != http.StatusTooManyRequests {
		t.Fatalf("one stream over the cap: %v, want 429", err)
	}
	if rel, err := a.stream(httptest.NewRecorder(), req("t1"), false); err != nil {
		t.Fatalf("a log read without follow is not capped: %v", err)
	} else {
		rel()
	}
	rel, err := a.stream(httptest.NewRecorder(), req("t2"), true)
	if err != nil {
		t.Fatalf("another token: %v", err)
	}
	rel()
	releases[0]()
	if rel, err := a.stream(httptest.NewRecorder(), req("t1"), true); err != nil {
		t.Fatalf("after one stream ended: %v", err)
	} else {
		rel()
	}
	for _, rel := range releases[1:] {
		rel()
	}
	if len(a.follows) != 0 {
		t.Errorf("slots left taken: %v", a.follows)
	}
}

// TestEveryMutatingRouteIsAudited builds the API: handle panics on a route
// that changes something and has no audit action (or one that has an
// action and changes nothing).
func TestEveryMutatingRouteIsAudited(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatal(r)
		}
	}()
	New(Config{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
}
