package core

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateAppSpec(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*AppSpec)
		field string // "" when valid
	}{
		{"defaults", func(s *AppSpec) {}, ""},
		{"no image", func(s *AppSpec) { s.ImageReference = "" }, "image_reference"},
		{"port 0", func(s *AppSpec) { s.ImagePort = 0 }, "image_port"},
		{"reserved port", func(s *AppSpec) { s.ImagePort = 9090 }, "image_port"},
		{"h2c", func(s *AppSpec) { s.ImagePortName = PortH2C }, ""},
		{"port name", func(s *AppSpec) { s.ImagePortName = "grpc" }, "image_port_name"},
		{"project only", func(s *AppSpec) { s.ManagedDomainMappings = VisibilityProject }, ""},
		{"private", func(s *AppSpec) { s.ManagedDomainMappings = VisibilityPrivate }, "managed_domain_mappings"},
		{"visibility", func(s *AppSpec) { s.ManagedDomainMappings = "internet" }, "managed_domain_mappings"},
		{"http probe", func(s *AppSpec) { s.ProbeReadiness = &Probe{Type: ProbeHTTP, Path: "/ready"} }, ""},
		{"probe type", func(s *AppSpec) { s.ProbeReadiness = &Probe{Type: "exec"} }, "probe_readiness"},
		{"probe path", func(s *AppSpec) { s.ProbeLiveness = &Probe{Type: ProbeHTTP, Path: "ready"} }, "probe_liveness"},
		{"tcp probe path", func(s *AppSpec) { s.ProbeReadiness = &Probe{Type: ProbeTCP, Path: "/"} }, "probe_readiness"},
		{"probe port", func(s *AppSpec) { s.ProbeReadiness = &Probe{Type: ProbeTCP, Port: 70000} }, "probe_readiness"},
		{"concurrency 0", func(s *AppSpec) { s.ScaleConcurrency = 0 }, "scale_concurrency"},
		{"concurrency 1001", func(s *AppSpec) { s.ScaleConcurrency = 1001 }, "scale_concurrency"},
		{"target", func(s *AppSpec) { s.ScaleConcurrencyTarget = 1001 }, "scale_concurrency_target"},
		{"min > max", func(s *AppSpec) { s.ScaleMinInstances = 11 }, "scale_min_instances"},
		{"max 0 unbounded", func(s *AppSpec) { s.ScaleMinInstances, s.ScaleMaxInstances = 20, 0 }, ""},
		{"max 251", func(s *AppSpec) { s.ScaleMaxInstances = 251 }, "scale_max_instances"},
		{"timeout 601", func(s *AppSpec) { s.ScaleRequestTimeout = 601 }, "scale_request_timeout"},
		{"delay 3601", func(s *AppSpec) { s.ScaleDownDelay = 3601 }, "scale_down_delay"},
		{"cpu pair", func(s *AppSpec) { s.ScaleMemoryLimit = "1G" }, "scale_memory_limit"},
		{"mount", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountSecret, Reference: "s", MountPath: "/etc/s"}}
		}, ""},
		{"mount twice", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountSecret, Reference: "s", MountPath: "/etc/s"},
				{Type: MountConfigMap, Reference: "c", MountPath: "/etc/s/"}}
		}, "run_volume_mounts"},
		{"mount relative", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountSecret, Reference: "s", MountPath: "etc"}}
		}, "run_volume_mounts"},
		{"mount type", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: "bucket", Reference: "s", MountPath: "/d"}}
		}, "run_volume_mounts"},
		{"data store", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountDataStore, Reference: "s", MountPath: "/d", SubPath: "in/bucket"}}
		}, ""},
		{"three data stores", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountDataStore, Reference: "a", MountPath: "/a"},
				{Type: MountDataStore, Reference: "b", MountPath: "/b"}, {Type: MountDataStore, Reference: "c", MountPath: "/c"}}
		}, "run_volume_mounts"},
		{"sub_path out of the bucket", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountDataStore, Reference: "s", MountPath: "/d", SubPath: "../x"}}
		}, "run_volume_mounts"},
		{"sub_path of a secret", func(s *AppSpec) {
			s.RunVolumeMounts = []VolumeMount{{Type: MountSecret, Reference: "s", MountPath: "/d", SubPath: "x"}}
		}, "run_volume_mounts"},
		{"env", func(s *AppSpec) { s.RunEnvVariables = []EnvVar{{Type: EnvLiteral, Name: "1A"}} }, "run_env_variables"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewAppSpec()
			s.ImageReference = "registry.example/app:1"
			tt.edit(&s)
			err := ValidateAppSpec(s)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an error of field %s", err, tt.field)
			}
		})
	}
}

func TestValidateAppName(t *testing.T) {
	for name, ok := range map[string]bool{
		"a": true, "my-app": true, "app1": true, "": false, "1app": false, "app-": false, "App": false,
		strings.Repeat("a", 57): true, strings.Repeat("a", 58): false,
	} {
		if err := ValidateAppName(name); (err == nil) != ok {
			t.Errorf("ValidateAppName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestAppStatus(t *testing.T) {
	ready := &Revision{Status: RevisionReady}
	failed := &Revision{Status: RevisionFailed}
	loading := &Revision{Status: RevisionLoading}
	tests := []struct {
		latest, ready  *Revision
		status, reason string
	}{
		{nil, nil, AppDeploying, ReasonDeploying},
		{loading, nil, AppDeploying, ReasonDeploying},
		{loading, ready, AppDeploying, ReasonDeploying},
		{ready, ready, AppReady, ReasonReady},
		{failed, ready, AppWarning, ReasonLatestFailed},
		{failed, nil, AppFailed, ReasonNoRevisionReady},
	}
	for i, tt := range tests {
		if s, r := AppStatus(tt.latest, tt.ready); s != tt.status || r != tt.reason {
			t.Errorf("case %d: got %s/%s, want %s/%s", i, s, r, tt.status, tt.reason)
		}
	}
}

func TestAppSpecTarget(t *testing.T) {
	s := NewAppSpec()
	if s.Target() != 100 {
		t.Errorf("default target %d", s.Target())
	}
	s.ScaleConcurrencyTarget = 10
	if s.Target() != 10 {
		t.Errorf("target %d", s.Target())
	}
	s.ScaleConcurrency = 5
	if s.Target() != 5 {
		t.Errorf("target above the hard cap: %d", s.Target())
	}
}
