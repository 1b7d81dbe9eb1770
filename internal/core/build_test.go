package core

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateBuildSpec(t *testing.T) {
	good := func(change func(*BuildSpec)) BuildSpec {
		s := NewBuildSpec()
		s.OutputImage, s.OutputSecret, s.StrategyType = "registry.example:5000/ns/app:1", "push-creds", StrategyDockerfile
		s.SourceURL = "https://git.example/org/app"
		if change != nil {
			change(&s)
		}
		return s
	}
	tests := []struct {
		name  string
		spec  BuildSpec
		field string // "" valid
	}{
		{"defaults", good(nil), ""},
		{"ssh source", good(func(s *BuildSpec) { s.SourceURL, s.SourceSecret = "git@git.example:org/app.git", "ssh-key" }), ""},
		{"http source (an allowed host, checked by the API)", good(func(s *BuildSpec) { s.SourceURL = "http://127.0.0.1:8080/app.git" }), ""},
		{"local", good(func(s *BuildSpec) { s.SourceType, s.SourceURL = SourceLocal, "" }), ""},
		{"context and spec file", good(func(s *BuildSpec) { s.SourceContextDir, s.StrategySpecFile = "web/app", "docker/Dockerfile.prod" }), ""},
		{"params", good(func(s *BuildSpec) {
			s.RunBuildParams = []BuildParam{{Type: EnvLiteral, Name: "VERSION", Value: "1"}, {Type: EnvSecretKey, Name: "TOKEN", Reference: "creds", Key: "token"}}
		}), ""},
		{"no output image", good(func(s *BuildSpec) { s.OutputImage = "" }), "output_image"},
		{"bad output image", good(func(s *BuildSpec) { s.OutputImage = "Not An Image" }), "output_image"},
		{"no output secret", good(func(s *BuildSpec) { s.OutputSecret = "" }), "output_secret"},
		{"buildpacks", good(func(s *BuildSpec) { s.StrategyType = StrategyBuildpacks }), "strategy_type"},
		{"unknown strategy", good(func(s *BuildSpec) { s.StrategyType = "kaniko" }), "strategy_type"},
		{"size", good(func(s *BuildSpec) { s.StrategySize = "huge" }), "strategy_size"},
		{"spec file out of the source", good(func(s *BuildSpec) { s.StrategySpecFile = "../../etc/passwd" }), "strategy_spec_file"},
		{"absolute context", good(func(s *BuildSpec) { s.SourceContextDir = "/etc" }), "source_context_dir"},
		{"context climbing", good(func(s *BuildSpec) { s.SourceContextDir = "a/../../b" }), "source_context_dir"},
		{"git without url", good(func(s *BuildSpec) { s.SourceURL = "" }), "source_url"},
		{"file url", good(func(s *BuildSpec) { s.SourceURL = "file:///etc" }), "source_url"},
		{"revision as an option", good(func(s *BuildSpec) { s.SourceRevision = "--upload-pack=touch" }), "source_revision"},
		{"local with url", good(func(s *BuildSpec) { s.SourceType = SourceLocal }), "source_url"},
		{"source type", good(func(s *BuildSpec) { s.SourceType = "svn" }), "source_type"},
		{"timeout", good(func(s *BuildSpec) { s.Timeout = 3601 }), "timeout"},
		{"param name", good(func(s *BuildSpec) { s.RunBuildParams = []BuildParam{{Type: EnvLiteral, Name: "1X"}} }), "run_build_params"},
		{"param twice", good(func(s *BuildSpec) {
			s.RunBuildParams = []BuildParam{{Type: EnvLiteral, Name: "X"}, {Type: EnvLiteral, Name: "X"}}
		}), "run_build_params"},
		{"secret param with a value", good(func(s *BuildSpec) {
			s.RunBuildParams = []BuildParam{{Type: EnvSecretKey, Name: "X", Value: "v", Reference: "s", Key: "k"}}
		}), "run_build_params"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBuildSpec(tt.spec)
			var fe *FieldError
			switch {
			case tt.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field):
				t.Fatalf("err %v, want one naming %s", err, tt.field)
			}
		})
	}
}

func TestBuildRunName(t *testing.T) {
	at := time.Date(2026, 11, 29, 3, 4, 5, 0, time.UTC)
	if got := BuildRunName("app", at); got != "app-run-261129-030405" {
		t.Errorf("%s", got)
	}
	long := strings.Repeat("a", 60) + "-b"
	if got := BuildRunName(long, at); len(got) > 63 || ValidateBuildName(got) != nil {
		t.Errorf("%s (%d)", got, len(got))
	}
}

func FuzzValidateBuildSpec(f *testing.F) {
	f.Add("registry.example/ns/app:1", "https://git.example/org/app", "main", "web", "Dockerfile")
	f.Add("a/b", "git@h:o/r.git", "-x", "../..", "/etc/passwd")
	f.Fuzz(func(t *testing.T, image, url, rev, ctxDir, spec string) {
		s := NewBuildSpec()
		s.OutputImage, s.OutputSecret, s.StrategyType = image, "creds", StrategyDockerfile
		s.SourceURL, s.SourceRevision, s.SourceContextDir, s.StrategySpecFile = url, rev, ctxDir, spec
		if ValidateBuildSpec(s) != nil {
			return
		}
		for _, p := range []string{ctxDir, spec} {
			if strings.HasPrefix(p, "/") || strings.Contains("/"+p+"/", "/../") {
				t.Fatalf("a path out of the source was taken: %q", p)
			}
		}
		if strings.HasPrefix(rev, "-") || strings.ContainsAny(rev, " \t\n") {
			t.Fatalf("revision %q taken", rev)
		}
	})
}
