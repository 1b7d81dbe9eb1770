package runenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// Store is what resolving needs of the store.
type Store interface {
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
}

// BindingStore is what resolving bindings needs of the store.
type BindingStore interface {
	Store
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
}

// WithBindings puts before env the PREFIX_KEY variables of the secrets
// bound to the component kind (app or job) named name, in the order of
// the bindings and of each secret's keys; a variable env sets wins.
func WithBindings(ctx context.Context, st BindingStore, project, kind, name string, env []string) ([]string, *Failure) {
	recs, _, err := st.List(ctx, project, core.KindBinding, "", core.MaxBindingsPerProject+1)
	if err != nil {
		return nil, &Failure{Reason: fmt.Sprintf("read bindings: %v", err), Wait: true}
	}
	own := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		own[k] = true
	}
	var out []string
	for _, rec := range recs {
		var b core.Binding
		if json.Unmarshal(rec.Value, &b) != nil || core.BindingKinds[b.Component.ResourceType] != kind || b.Component.Name != name {
			continue
		}
		s, err := Secret(ctx, st, project, b.SecretName)
		if err != nil {
			return nil, &Failure{Reason: fmt.Sprintf("waiting for secret %q, which binding %s binds", b.SecretName, b.ID), Wait: true}
		}
		for _, k := range slices.Sorted(maps.Keys(s.Data)) {
			if n := core.BindingEnvName(b.Prefix, k); !own[n] {
				out = append(out, n+"="+s.Data[k])
			}
		}
	}
	return append(out, env...), nil
}

// Failure is why an instance cannot start: a reason users see, and whether
// it waits for something that may exist later (a secret, a key).
type Failure struct {
	Reason string
	Wait   bool
}

// PullAuth reads a registry secret as pull credentials; nil when secret is "".
func PullAuth(ctx context.Context, st Store, project, secret string) (*engine.RegistryAuth, *Failure) {
	if secret == "" {
		return nil, nil
	}
	s, err := Secret(ctx, st, project, secret)
	if errors.Is(err, core.ErrNotFound) {
		return nil, &Failure{Reason: "fetch_image_failed_missing_pull_secret"}
	}
	if err != nil || s.Format != core.FormatRegistry {
		return nil, &Failure{Reason: "fetch_image_failed_missing_pull_secret"}
	}
	return &engine.RegistryAuth{Server: s.Data["server"], Username: s.Data["username"], Password: s.Data["password"]}, nil
}

// Secret reads a secret.
func Secret(ctx context.Context, st Store, project, name string) (core.Secret, error) {
	var s core.Secret
	rec, err := st.Get(ctx, core.Ref{Project: project, Kind: core.KindSecret, Name: name})
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(rec.Value, &s)
}

// ConfigMap reads a config map's data.
func ConfigMap(ctx context.Context, st Store, project, name string) (map[string]string, error) {
	rec, err := st.Get(ctx, core.Ref{Project: project, Kind: core.KindConfigMap, Name: name})
	if err != nil {
		return nil, err
	}
	var cm core.ConfigMap
	return cm.Data, json.Unmarshal(rec.Value, &cm)
}

// UserEnv resolves run_env_variables with Code Engine's precedence: full
// references in order (the last wins), then literals and key references,
// which beat full references whatever their order.
func UserEnv(ctx context.Context, st Store, project string, vars []core.EnvVar) ([]string, *Failure) {
	values := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := values[k]; !ok {
			order = append(order, k)
		}
		values[k] = v
	}
	load := func(typ, ref string) (map[string]string, *Failure) {
		var data map[string]string
		var err error
		if typ == core.EnvSecretFull || typ == core.EnvSecretKey {
			var s core.Secret
			s, err = Secret(ctx, st, project, ref)
			data = s.Data
		} else {
			data, err = ConfigMap(ctx, st, project, ref)
		}
		if errors.Is(err, core.ErrNotFound) {
			return nil, &Failure{Reason: fmt.Sprintf("waiting for %s %q, which does not exist", kindWord(typ), ref), Wait: true}
		}
		if err != nil {
			return nil, &Failure{Reason: fmt.Sprintf("read %s %q: %v", kindWord(typ), ref, err), Wait: true}
		}
		return data, nil
	}
	for _, full := range []bool{true, false} {
		for _, v := range vars {
			switch {
			case full && (v.Type == core.EnvSecretFull || v.Type == core.EnvConfigMapFull):
				data, f := load(v.Type, v.Reference)
				if f != nil {
					return nil, f
				}
				keys := make([]string, 0, len(data))
				for k := range data {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				for _, k := range keys {
					set(v.Prefix+k, data[k])
				}
			case !full && (v.Type == core.EnvLiteral || v.Type == ""):
				set(v.Name, v.Value)
			case !full && (v.Type == core.EnvSecretKey || v.Type == core.EnvConfigMapKey):
				data, f := load(v.Type, v.Reference)
				if f != nil {
					return nil, f
				}
				val, ok := data[v.Key]
				if !ok {
					return nil, &Failure{Reason: fmt.Sprintf("waiting for key %q in %s %q", v.Key, kindWord(v.Type), v.Reference), Wait: true}
				}
				name := v.Name
				if name == "" {
					name = v.Key
				}
				set(name, val)
			}
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+values[k])
	}
	return out, nil
}

func kindWord(typ string) string {
	if typ == core.EnvSecretFull || typ == core.EnvSecretKey {
		return "secret"
	}
	return "config map"
}

// Mounts reads the secrets and config maps of run_volume_mounts as
// directories of files, one per key, and its persistent data stores as
// buckets (stores: the object store of each location).
func Mounts(ctx context.Context, st Store, project string, ms []core.VolumeMount, stores map[string]string) ([]engine.Mount, []engine.Bucket, *Failure) {
	buckets, fail := dataStores(ctx, st, project, ms, stores)
	if fail != nil {
		return nil, nil, fail
	}
	var out []engine.Mount
	for _, m := range ms {
		if m.Type == core.MountDataStore {
			continue // Buckets
		}
		var data map[string]string
		var err error
		what := "config map"
		if m.Type == core.MountSecret {
			what = "secret"
			var s core.Secret
			s, err = Secret(ctx, st, project, m.Reference)
			data = s.Data
		} else {
			data, err = ConfigMap(ctx, st, project, m.Reference)
		}
		if errors.Is(err, core.ErrNotFound) {
			return nil, nil, &Failure{Reason: fmt.Sprintf("waiting for %s %q, which does not exist", what, m.Reference), Wait: true}
		}
		if err != nil {
			return nil, nil, &Failure{Reason: fmt.Sprintf("read %s %q: %v", what, m.Reference, err), Wait: true}
		}
		files := make(map[string][]byte, len(data))
		for k, v := range data {
			files[k] = []byte(v)
		}
		out = append(out, engine.Mount{Dir: m.MountPath, Files: files})
	}
	return out, buckets, nil
}

// dataStores reads the persistent data stores of run_volume_mounts as
// buckets to mount: the bucket, the endpoint of its location and its
// hmac_auth credentials. A mount is read-only unless read_only is false.
func dataStores(ctx context.Context, st Store, project string, ms []core.VolumeMount, stores map[string]string) ([]engine.Bucket, *Failure) {
	var out []engine.Bucket
	for _, m := range ms {
		if m.Type != core.MountDataStore {
			continue
		}
		rec, err := st.Get(ctx, core.Ref{Project: project, Kind: core.KindDataStore, Name: m.Reference})
		if errors.Is(err, core.ErrNotFound) {
			return nil, &Failure{Reason: fmt.Sprintf("waiting for persistent data store %q, which does not exist", m.Reference), Wait: true}
		}
		var d core.DataStore
		if err == nil {
			err = json.Unmarshal(rec.Value, &d)
		}
		if err != nil {
			return nil, &Failure{Reason: fmt.Sprintf("read persistent data store %q: %v", m.Reference, err), Wait: true}
		}
		endpoint := stores[d.Data[core.DataBucketLocation]]
		if endpoint == "" {
			return nil, &Failure{Reason: fmt.Sprintf("persistent data store %q: this server has no object store for location %q", m.Reference, d.Data[core.DataBucketLocation])}
		}
		name := d.Data[core.DataSecretName]
		s, err := Secret(ctx, st, project, name)
		if errors.Is(err, core.ErrNotFound) {
			return nil, &Failure{Reason: fmt.Sprintf("waiting for secret %q of persistent data store %q, which does not exist", name, m.Reference), Wait: true}
		}
		if err != nil {
			return nil, &Failure{Reason: fmt.Sprintf("read secret %q: %v", name, err), Wait: true}
		}
		if s.Format != core.FormatHMACAuth {
			return nil, &Failure{Reason: fmt.Sprintf("secret %q of persistent data store %q is not an hmac_auth secret", name, m.Reference)}
		}
		out = append(out, engine.Bucket{Dir: m.MountPath, Endpoint: endpoint, Name: d.Data[core.DataBucketName], SubPath: m.SubPath,
			ReadOnly: m.ReadOnly == nil || *m.ReadOnly, AccessKeyID: s.Data["access_key_id"], SecretAccessKey: s.Data["secret_access_key"]})
	}
	return out, nil
}

// TokenIssuer issues compute resource tokens.
type TokenIssuer interface {
	Issue(ctx context.Context, project, subject string, now time.Time, life time.Duration) (string, error)
}

// ComputeToken adds to spec the compute resource token of subject: a
// mount at computetoken.Dir and the label the refresher renews it by. An
// engine that cannot replace a file in place (nil updates) would let it
// expire: the instance does not start there.
func ComputeToken(ctx context.Context, issuer TokenIssuer, updates engine.FileUpdater, life time.Duration, now time.Time, spec *engine.Spec, subject string) *Failure {
	if issuer == nil || updates == nil {
		return &Failure{Reason: "run_compute_resource_token_enabled: this server's engine cannot renew a token in a running instance (the local engine can)"}
	}
	tok, err := issuer.Issue(ctx, spec.Project, subject, now, life)
	if err != nil {
		return &Failure{Reason: fmt.Sprintf("issue the compute resource token: %v", err), Wait: true}
	}
	spec.Mounts = append(spec.Mounts, engine.Mount{Dir: computetoken.Dir, Files: map[string][]byte{computetoken.File: []byte(tok)}})
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[computetoken.Label] = subject
	return nil
}
