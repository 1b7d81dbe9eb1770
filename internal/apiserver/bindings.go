package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func (a *API) bindingView(p core.Project, _ core.Record, b core.Binding) api.Binding {
	return api.Binding{Component: api.BindingComponent(b.Component), Href: a.linkBase + "/v2/projects/" + p.ID + "/bindings/" + b.ID, ID: b.ID,
		Prefix: b.Prefix, ProjectID: p.ID, ResourceType: api.ResourceTypeBinding, SecretName: b.SecretName, Status: "active"}
}

// createBinding binds a generic secret to an app or a job. The component's
// next instances get the secret's keys as PREFIX_KEY; an app gets a new
// revision, as in Code Engine.
func (a *API) createBinding(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.BindingPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	b := core.Binding{ID: uuid.NewString(), Component: core.BindingComponent(in.Component), SecretName: in.SecretName, Prefix: in.Prefix, CreatedAt: a.cfg.Now().UTC()}
	if b.Prefix == "" {
		b.Prefix = core.BindingPrefix(b.SecretName)
	}
	if err := core.ValidateBinding(b); err != nil {
		return err
	}
	kind := core.BindingKinds[b.Component.ResourceType]
	if _, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: kind, Name: b.Component.Name}); isNotFound(err) {
		return core.Invalid("component", "the project has no %s %s", strings.TrimSuffix(b.Component.ResourceType, "_v2"), clipTag(b.Component.Name))
	} else if err != nil {
		return err
	}
	_, sec, err := loadRecord[core.Secret](a, r, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: b.SecretName})
	switch {
	case isNotFound(err):
		return core.Invalid("secret_name", "the project has no secret %s", clipTag(b.SecretName))
	case err != nil:
		return err
	case sec.Format != core.FormatGeneric:
		return core.Invalid("secret_name", "secret %s is a %s secret; bind a generic one", clipTag(b.SecretName), sec.Format)
	}
	bound, err := a.bindingsOf(r, p.ID, b.Component)
	if err != nil {
		return err
	}
	for _, o := range bound {
		if o.SecretName == b.SecretName {
			return fmt.Errorf("secret %s is bound to %s already (binding %s): %w", b.SecretName, b.Component.Name, o.ID, core.ErrExists)
		}
		if o.Prefix == b.Prefix {
			return core.Invalid("prefix", "%s is the prefix of binding %s of %s already; give another", b.Prefix, o.ID, b.Component.Name)
		}
	}
	raw, _ := json.Marshal(b)
	rec, err := a.cfg.Store.Create(r.Context(), core.Ref{Project: p.ID, Kind: core.KindBinding, Name: b.ID}, raw, core.MaxBindingsPerProject)
	if err != nil {
		return err
	}
	nameForAudit(r, b.ID)
	if err := a.rollApp(r, p.ID, b.Component); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.bindingView(p, rec, b))
	return nil
}

// bindingsOf are the bindings of one component.
func (a *API) bindingsOf(r *http.Request, project string, c core.BindingComponent) ([]core.Binding, error) {
	recs, _, err := a.cfg.Store.List(r.Context(), project, core.KindBinding, "", core.MaxBindingsPerProject+1)
	if err != nil {
		return nil, err
	}
	var out []core.Binding
	for _, rec := range recs {
		if b, err := unmarshalRecord[core.Binding](rec); err == nil && b.Component == c {
			out = append(out, b)
		}
	}
	return out, nil
}

// rollApp gives an app whose bindings changed a new revision, which its
// instances take up; a job's next runs read its bindings anyway.
func (a *API) rollApp(r *http.Request, project string, c core.BindingComponent) error {
	if c.ResourceType != "app_v2" {
		return nil
	}
	ref := core.Ref{Project: project, Kind: core.KindApp, Name: c.Name}
	for range 10 {
		rec, app, err := loadRecord[core.App](a, r, ref)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		app.Generation++
		raw, _ := json.Marshal(app)
		if _, err = a.cfg.Store.Replace(r.Context(), ref, raw, rec.Version); !errors.Is(err, core.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("app %s changes too often: %w", c.Name, core.ErrConflict)
}

func (a *API) getBinding(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindBinding, a.bindingView)
}

func (a *API) listBindings(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindBinding, func(p core.Project, rec core.Record, l *api.BindingList) (bool, error) {
		b, err := unmarshalRecord[core.Binding](rec)
		if err != nil {
			return false, err
		}
		l.Bindings = append(l.Bindings, a.bindingView(p, rec, b))
		return true, nil
	}, func(l *api.BindingList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Bindings == nil {
			l.Bindings = []api.Binding{}
		}
	})
}

// deleteBinding unbinds: an app gets a new revision without the secret's
// variables.
func (a *API) deleteBinding(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindBinding, Name: r.PathValue("name")}
	_, b, err := loadRecord[core.Binding](a, r, ref)
	if err != nil {
		return err
	}
	if err := a.cfg.Store.Delete(r.Context(), ref); err != nil {
		return err
	}
	if err := a.rollApp(r, p.ID, b.Component); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// unbindAll deletes the bindings of a component that is deleted.
func (a *API) unbindAll(r *http.Request, project string, c core.BindingComponent) error {
	bound, err := a.bindingsOf(r, project, c)
	if err != nil {
		return err
	}
	for _, b := range bound {
		if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: project, Kind: core.KindBinding, Name: b.ID}); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}
