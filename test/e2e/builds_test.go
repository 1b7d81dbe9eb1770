package e2e

import (
	"context"
	"errors"
	"testing"

	"github.com/coligo/coligo/api"
)

// TestBuildConfigurations: builds with Code Engine's defaults, status and
// reason, PATCH as a merge patch, and the input a build refuses — each a
// 400 naming the field; another project's writer and a reader change
// nothing.
func TestBuildConfigurations(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "builds")
	q := activeProject(t, c, "builds-b")
	spec := api.BuildSpec{OutputImage: "registry.example:5000/ns/app:1", OutputSecret: "push", StrategyType: "dockerfile",
		SourceURL: "https://git.example/org/app", RunBuildParams: []api.BuildParam{{Type: "secret_key_reference", Name: "TOKEN", Reference: "creds", Key: "token"}}}
	b, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "app", BuildSpec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if b.ResourceType != "build_v2" || b.Status != "ready" || b.StatusDetails.Reason != "registered" || b.StrategySize != "medium" ||
		b.StrategySpecFile != "Dockerfile" || b.SourceType != "git" || *b.Timeout != 600 || b.EntityTag == "" || len(b.RunBuildParams) != 1 {
		t.Errorf("created build lacks Code Engine's defaults: %+v", b)
	}
	b, err = c.UpdateBuild(ctx, p.ID, "app", b.EntityTag, map[string]any{"source_revision": "v2", "timeout": 900})
	if err != nil || b.SourceRevision != "v2" || *b.Timeout != 900 || b.SourceURL != spec.SourceURL {
		t.Fatalf("patched: %+v %v", b, err)
	}
	if l, err := c.ListBuilds(ctx, p.ID, api.ListOptions{}); err != nil || len(l.Builds) != 1 {
		t.Fatalf("list: %+v %v", l, err)
	}

	for field, in := range map[string]api.BuildSpec{
		"strategy_type":      {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "buildpacks", SourceURL: spec.SourceURL},
		"source_url":         {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: "http://git.example/org/app"},
		"source_url ":        {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: "https://127.0.0.1/org/app"},
		"source_url  ":       {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceType: "local", SourceURL: spec.SourceURL},
		"source_context_dir": {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: spec.SourceURL, SourceContextDir: "../../etc"},
		"output_image":       {OutputImage: "127.0.0.1:2/ns/app:1", OutputSecret: "push", StrategyType: "dockerfile", SourceURL: spec.SourceURL},
		"output_secret":      {OutputImage: spec.OutputImage, StrategyType: "dockerfile", SourceURL: spec.SourceURL},
	} {
		_, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "bad", BuildSpec: in})
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Errorf("%s: %v, want 400", field, err)
		}
	}
	if _, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "Bad_Name", BuildSpec: spec}); err == nil {
		t.Error("a build with a bad name was created")
	}

	tokens := map[string]string{}
	for name, tp := range map[string]api.TokenPrototype{"reader": {Name: "b-reader", ProjectID: p.ID, Role: "reader"}, "other": {Name: "b-other", ProjectID: q.ID, Role: "writer"}} {
		tok, err := c.CreateToken(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok.Token
	}
	reader, other := s.client(tokens["reader"]), s.client(tokens["other"])
	if _, err := reader.GetBuild(ctx, p.ID, "app"); err != nil {
		t.Errorf("a reader reads the build: %v", err)
	}
	_, readerCreate := reader.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "planted", BuildSpec: spec})
	readerDelete := reader.DeleteBuild(ctx, p.ID, "app")
	_, otherGet := other.GetBuild(ctx, p.ID, "app")
	_, otherPatch := other.UpdateBuild(ctx, p.ID, "app", "*", map[string]any{"output_image": "evil.example/x/y:1"})
	otherDelete := other.DeleteBuild(ctx, p.ID, "app")
	for what, err := range map[string]error{"reader create": readerCreate, "reader delete": readerDelete, "other get": otherGet, "other patch": otherPatch, "other delete": otherDelete} {
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 && apiErr.StatusCode != 404 {
			t.Errorf("%s: %v, want 403 or 404", what, err)
		}
	}
	if got, err := c.GetBuild(ctx, p.ID, "app"); err != nil || got.OutputImage != spec.OutputImage {
		t.Errorf("the build after the refused calls: %+v %v", got, err)
	}
	if err := c.DeleteBuild(ctx, p.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBuild(ctx, p.ID, "app"); err == nil {
		t.Error("a deleted build is still there")
	}
}
