package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestBindings: a generic secret bound to an app (by the CLI, its prefix
// defaulted) and to a job (by the API, a prefix given) reaches their
// instances as PREFIX_KEY; the app gets a new revision on bind and unbind,
// and its next instances go without the variables; what is refused is
// refused with the field named, another project's token sees nothing, and
// a deleted app takes its bindings with it.
func TestBindings(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "bindings")
	q := activeProject(t, c, "bindings-other")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "db", Format: "generic", Data: map[string]string{"password": "pw-1", "api-key.v2": "k-2"}}); err != nil {
		t.Fatal(err)
	}
	deployApp(t, c, p.ID, testApp("bound", image))
	_, cli := s.adminCLI(t, p.Name)
	cli("app", "bind", "--name", "bound", "--secret", "db")
	a := waitApp(t, c, p.ID, "bound", 2*time.Minute, func(a *api.App) bool {
		return a.Status == "ready" && a.StatusDetails.LatestReadyRevision == "bound-00002"
	})
	if env := mustCall(t, s, a, "/env"); !strings.Contains(env, "DB_PASSWORD=pw-1") || !strings.Contains(env, "DB_API_KEY_V2=k-2") {
		t.Errorf("the bound app's environment:\n%s", env)
	}

	if _, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: "batch", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands: []string{"/bin/sh", "-c", "echo creds=$CREDS_PASSWORD"}}}); err != nil {
		t.Fatal(err)
	}
	jb, err := c.CreateBinding(ctx, p.ID, api.BindingPrototype{Component: api.BindingComponent{Name: "batch", ResourceType: "job_v2"}, SecretName: "db", Prefix: "CREDS"})
	if err != nil || jb.Prefix != "CREDS" || jb.ResourceType != "binding_v2" || jb.Status != "active" {
		t.Fatalf("bind the job: %+v %v", jb, err)
	}
	if ok, out := runJob(t, c, p.ID, api.JobRunPrototype{JobName: "batch"}); !ok || !strings.Contains(out, "creds=pw-1") {
		t.Fatalf("the bound job's run printed %q (completed: %v)", out, ok)
	}

	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "pull", Format: "registry", Data: map[string]string{"server": "r.example", "username": "u", "password": "p"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "b-other", ProjectID: q.ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	other := s.client(tok.Token)
	app := api.BindingComponent{Name: "bound", ResourceType: "app_v2"}
	for what, tc := range map[string]struct {
		c      *api.Client
		proto  api.BindingPrototype
		status int
	}{
		"a registry secret":        {c, api.BindingPrototype{Component: app, SecretName: "pull"}, 400},
		"no such secret":           {c, api.BindingPrototype{Component: app, SecretName: "nope"}, 400},
		"no such app":              {c, api.BindingPrototype{Component: api.BindingComponent{Name: "nope", ResourceType: "app_v2"}, SecretName: "db"}, 400},
		"a function":               {c, api.BindingPrototype{Component: api.BindingComponent{Name: "bound", ResourceType: "function_v2"}, SecretName: "db"}, 400},
		"a lower-case prefix":      {c, api.BindingPrototype{Component: app, SecretName: "db", Prefix: "db"}, 400},
		"the same secret twice":    {c, api.BindingPrototype{Component: app, SecretName: "db", Prefix: "AGAIN"}, 409},
		"another project's writer": {other, api.BindingPrototype{Component: app, SecretName: "db", Prefix: "EVIL"}, 404},
	} {
		_, err := tc.c.CreateBinding(ctx, p.ID, tc.proto)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.StatusCode != tc.status && !(tc.status == 404 && ae.StatusCode == 403) {
			t.Errorf("%s: %v, want %d", what, err, tc.status)
		}
	}
	if _, err := other.ListBindings(ctx, p.ID, api.ListOptions{}); err == nil {
		t.Error("another project's token lists the bindings")
	}
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "svc", Format: "service_access", Data: map[string]string{"k": "v"}}); err == nil ||
		!strings.Contains(err.Error(), "self-hosted") {
		t.Errorf("a service_access secret: %v", err)
	}

	cli("app", "unbind", "--name", "bound", "--all")
	a = waitApp(t, c, p.ID, "bound", 2*time.Minute, func(a *api.App) bool {
		return a.Status == "ready" && a.StatusDetails.LatestReadyRevision == "bound-00003"
	})
	if env := mustCall(t, s, a, "/env"); strings.Contains(env, "DB_PASSWORD") {
		t.Errorf("the unbound app's environment still has the secret:\n%s", env)
	}
	if err := c.DeleteJob(ctx, p.ID, "batch"); err != nil {
		t.Fatal(err)
	}
	if l, err := c.ListBindings(ctx, p.ID, api.ListOptions{}); err != nil || len(l.Bindings) != 0 {
		t.Errorf("bindings after the unbind and the job's deletion: %+v %v", l, err)
	}
}

// TestJobVolumeMounts: a job's run_volume_mounts (a secret, a config map
// with read_only) are files in its runs' instances, and round-trip.
func TestJobVolumeMounts(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "jobmounts")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "files", Format: "generic", Data: map[string]string{"token": "t-1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "conf", Data: map[string]string{"mode": "fast"}}); err != nil {
		t.Fatal(err)
	}
	ro := true
	j, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: "reader", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands:     []string{"/bin/sh", "-c", "echo $(cat /run/s/token) $(cat /etc/c/mode)"},
		RunVolumeMounts: []api.VolumeMount{{Type: "secret", Reference: "files", MountPath: "/run/s"}, {Type: "config_map", Reference: "conf", MountPath: "/etc/c", ReadOnly: &ro}}}})
	if err != nil || len(j.RunVolumeMounts) != 2 || j.RunVolumeMounts[1].ReadOnly == nil || !*j.RunVolumeMounts[1].ReadOnly {
		t.Fatalf("the job: %+v %v", j, err)
	}
	if ok, out := runJob(t, c, p.ID, api.JobRunPrototype{JobName: "reader"}); !ok || !strings.Contains(out, "t-1 fast") {
		t.Fatalf("the run printed %q (completed: %v)", out, ok)
	}
	if _, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: "bad", RunSpec: api.RunSpec{ImageReference: image,
		RunVolumeMounts: []api.VolumeMount{{Type: "secret", Reference: "files", MountPath: "relative"}}}}); err == nil || !strings.Contains(err.Error(), "run_volume_mounts") {
		t.Errorf("a relative mount path: %v", err)
	}
}
