package runenv

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store/storetest"
)

// TestWithBindings: the secrets bound to a component come first, as
// PREFIX_KEY in the order of the bindings and keys; another component's
// bindings are left out; a variable the component sets wins; a bound
// secret that is gone makes the instance wait.
func TestWithBindings(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t)
	if _, err := db.CreateProject(ctx, core.Project{ID: "p", Name: "p", Subdomain: "sub", Status: core.ProjectActive}, func() string { return "sub" }); err != nil {
		t.Fatal(err)
	}
	put := func(kind, name string, v any) {
		b, _ := json.Marshal(v)
		if _, err := db.Create(ctx, core.Ref{Project: "p", Kind: kind, Name: name}, b, 0); err != nil {
			t.Fatal(err)
		}
	}
	put(core.KindSecret, "db", core.Secret{Name: "db", Format: core.FormatGeneric, Data: map[string]string{"user": "u", "pass-word": "pw"}})
	put(core.KindSecret, "mq", core.Secret{Name: "mq", Format: core.FormatGeneric, Data: map[string]string{"url": "amqp://mq"}})
	put(core.KindBinding, "b1", core.Binding{ID: "b1", Component: core.BindingComponent{Name: "web", ResourceType: "app_v2"}, SecretName: "db", Prefix: "DB"})
	put(core.KindBinding, "b2", core.Binding{ID: "b2", Component: core.BindingComponent{Name: "web", ResourceType: "app_v2"}, SecretName: "mq", Prefix: "MQ"})
	put(core.KindBinding, "b3", core.Binding{ID: "b3", Component: core.BindingComponent{Name: "web", ResourceType: "job_v2"}, SecretName: "db", Prefix: "JOB"})
	put(core.KindBinding, "b4", core.Binding{ID: "b4", Component: core.BindingComponent{Name: "api", ResourceType: "app_v2"}, SecretName: "gone", Prefix: "GONE"})

	env, f := WithBindings(ctx, db, "p", core.KindApp, "web", []string{"DB_USER=mine", "MODE=fast"})
	if want := []string{"DB_PASS_WORD=pw", "MQ_URL=amqp://mq", "DB_USER=mine", "MODE=fast"}; f != nil || !slices.Equal(env, want) {
		t.Errorf("the app's environment: %q %v, want %q", env, f, want)
	}
	if env, f := WithBindings(ctx, db, "p", core.KindJob, "web", nil); f != nil || !slices.Equal(env, []string{"JOB_PASS_WORD=pw", "JOB_USER=u"}) {
		t.Errorf("the job's environment: %q %v", env, f)
	}
	if env, f := WithBindings(ctx, db, "p", core.KindApp, "other", []string{"A=1"}); f != nil || !slices.Equal(env, []string{"A=1"}) {
		t.Errorf("an unbound app's environment: %q %v", env, f)
	}
	if _, f := WithBindings(ctx, db, "p", core.KindApp, "api", nil); f == nil || !f.Wait {
		t.Errorf("a bound secret that is gone: %+v", f)
	}
}
