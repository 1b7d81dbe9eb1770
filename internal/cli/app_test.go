package cli

import (
	"encoding/json"
	"testing"

	"github.com/coligo/coligo/api"
)

func TestProbeFlag(t *testing.T) {
	tests := []struct {
		in   []string
		want *api.Probe // nil when an error is expected
	}{
		{[]string{"type=http,path=/ready,interval=5"}, &api.Probe{Type: "http", Path: "/ready", Interval: 5}},
		{[]string{"type=tcp", "port=9000", "failure-threshold=3"}, &api.Probe{Type: "tcp", Port: 9000, FailureThreshold: 3}},
		{[]string{"path=/"}, nil},
		{[]string{"type=http,interval=x"}, nil},
		{[]string{"type=http,colour=blue"}, nil},
		{[]string{"type"}, nil},
	}
	for _, tt := range tests {
		p, err := probe("--probe-ready", tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("%v: want an error, got %+v", tt.in, p)
			}
			continue
		}
		if err != nil || *p != *tt.want {
			t.Errorf("%v: got %+v %v, want %+v", tt.in, p, err, tt.want)
		}
	}
}

// FuzzProbeFlag: no input panics, and an accepted probe has a type.
func FuzzProbeFlag(f *testing.F) {
	f.Add("type=http,path=/,interval=5,timeout=1")
	f.Add("type=tcp,port=8080")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := probe("--probe-ready", []string{s})
		if err == nil && p.Type == "" {
			t.Fatalf("accepted %q without a type", s)
		}
	})
}

// FuzzEnvVars: no input panics, and every variable has a type.
func FuzzEnvVars(f *testing.F) {
	f.Add("A=1", "PREFIX_=sec", "cm:K1,NEW=K2")
	f.Fuzz(func(t *testing.T, env, fromSecret, fromConfigMap string) {
		vars, err := envVars([]string{env}, []string{fromSecret}, []string{fromConfigMap})
		if err != nil {
			return
		}
		for _, v := range vars {
			if v.Type == "" {
				t.Fatalf("variable without a type from %q %q %q", env, fromSecret, fromConfigMap)
			}
		}
	})
}

// TestEnvPatch: --env and --env-rm merge with the current variables and
// keep the patch's other fields; removing every variable sends an empty
// list, not nothing.
func TestEnvPatch(t *testing.T) {
	one := 1
	cur := []api.EnvVar{{Type: "literal", Name: "A", Value: "1"}, {Type: "literal", Name: "B", Value: "2"}}
	tests := []struct {
		name string
		spec api.AppSpec
		set  []api.EnvVar
		rm   []string
		want string
	}{
		{"no env change", api.AppSpec{ScaleMinInstances: &one}, nil, nil, `{"scale_min_instances":1}`},
		{"set one", api.AppSpec{}, []api.EnvVar{{Type: "literal", Name: "A", Value: "9"}}, nil,
			`{"run_env_variables":[{"type":"literal","name":"B","value":"2"},{"type":"literal","name":"A","value":"9"}]}`},
		{"remove all, change another field", api.AppSpec{ScaleMinInstances: &one}, nil, []string{"A", "B"},
			`{"run_env_variables":[],"scale_min_instances":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			patch, err := envPatch(tt.spec, cur, tt.set, tt.rm)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := json.Marshal(patch); string(b) != tt.want {
				t.Errorf("%s, want %s", b, tt.want)
			}
		})
	}
}
