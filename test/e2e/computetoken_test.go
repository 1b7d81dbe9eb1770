package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/computetoken"
)

// TestComputeResourceToken: an app with run_compute_resource_token_enabled
// finds a token at Code Engine's path; it is a writer of the app's own
// project (it lists and creates there, audited as the app; it manages no
// tokens and reads no other project), a forged one is refused, and the
// file is renewed in place before the token expires. A job run gets one
// too; an app without the field has no file.
func TestComputeResourceToken(t *testing.T) {
	s := newServer(t, "local", "--autoscale-stable-window", "4s", "--autoscale-panic-window", "1s", "--compute-token-life", "30s")
	s.start()
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "identity")
	other := activeProject(t, c, "identity-other")
	on := true
	proto := testApp("ident", image)
	proto.RunComputeResourceTokenEnabled = &on
	a := deployApp(t, c, p.ID, proto)
	if a.RunComputeResourceTokenEnabled == nil || !*a.RunComputeResourceTokenEnabled {
		t.Errorf("the app does not show the field: %+v", a.AppSpec)
	}
	tok := strings.TrimSpace(mustCall(t, s, a, "/file?path="+computetoken.Path))
	if !strings.HasPrefix(tok, computetoken.Prefix) {
		t.Fatalf("the token file holds %q", tok)
	}
	wc := s.client(tok)
	if l, err := wc.ListApps(ctx, p.ID, api.ListOptions{}); err != nil || len(l.Apps) != 1 {
		t.Fatalf("the token lists its project's apps: %+v %v", l, err)
	}
	if _, err := wc.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "by-the-app", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatalf("the token, a writer, creates a config map: %v", err)
	}
	_, err := wc.ListTokens(ctx)
	wantForbidden(t, err, "the token lists API tokens")
	_, err = wc.ListApps(ctx, other.ID, api.ListOptions{})
	wantForbidden(t, err, "the token lists another project's apps")
	evs, err := c.ListAuditEvents(ctx, api.ListOptions{Limit: 100}, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs.AuditEvents {
		found = found || ev.Actor == "compute-resource:app/ident" && ev.Action == "config_map.create"
	}
	if !found {
		t.Errorf("no audit event of the config map created by the app: %+v", evs.AuditEvents)
	}
	body, _, _ := strings.Cut(strings.TrimPrefix(tok, computetoken.Prefix), ".")
	for what, bad := range map[string]string{
		"a forged signature": computetoken.Prefix + body + ".AAAA",
		"another project's claims under this signature": computetoken.Mint([]byte(strings.Repeat("k", 32)),
			computetoken.Claims{Project: other.ID, Subject: "app/ident", Expires: time.Now().Add(time.Hour)}),
	} {
		if _, err := s.client(bad).ListApps(ctx, p.ID, api.ListOptions{}); !isStatus(err, 401) {
			t.Errorf("%s: %v, want 401", what, err)
		}
	}
	waitServed(t, func() bool {
		next := strings.TrimSpace(mustCall(t, s, a, "/file?path="+computetoken.Path))
		return next != tok && strings.HasPrefix(next, computetoken.Prefix)
	}, "the renewed token (every 5 s with a life of 30 s)")

	proto = testApp("anon", image)
	b := deployApp(t, c, p.ID, proto)
	if code, _, _ := routerGet(s, b, "/file?path="+computetoken.Path); code != 404 {
		t.Errorf("an app without the field has a token file: %d", code)
	}
	ok, logs := runJob(t, c, p.ID, api.JobRunPrototype{Name: "ident-run", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunComputeResourceTokenEnabled: &on, RunCommands: []string{"sh", "-c", "head -c 10 " + computetoken.Path}}})
	if !ok || !strings.Contains(logs, computetoken.Prefix) {
		t.Errorf("the job run's token file: %v %q", ok, logs)
	}
}
