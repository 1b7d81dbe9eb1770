package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func (a *API) secretView(r *http.Request, p core.Project, rec core.Record, s core.Secret, withValues bool) api.Secret {
	data := map[string]string(s.Data)
	if !withValues {
		data = s.Data.Redact()
	}
	return api.Secret{
		CreatedAt: rfc3339(s.CreatedAt), Data: data, EntityTag: etag(rec.Version), Format: s.Format,
		GeneratedBy: "user", Href: a.linkBase + "/v2/projects/" + p.ID + "/secrets/" + s.Name,
		ID: s.ID, Name: s.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.SecretResourceType(s.Format),
	}
}

func (a *API) configMapView(r *http.Request, p core.Project, rec core.Record, c core.ConfigMap) api.ConfigMap {
	return api.ConfigMap{
		CreatedAt: rfc3339(c.CreatedAt), Data: c.Data, EntityTag: etag(rec.Version),
		Href: a.linkBase + "/v2/projects/" + p.ID + "/config_maps/" + c.Name,
		ID:   c.ID, Name: c.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeConfigMap,
	}
}

// loadRecord reads a record and decodes its value.
func loadRecord[T any](a *API, r *http.Request, ref core.Ref) (core.Record, T, error) {
	rec, err := a.cfg.Store.Get(r.Context(), ref)
	if err != nil {
		var zero T
		return rec, zero, err
	}
	v, err := unmarshalRecord[T](rec)
	return rec, v, err
}

// getRecord answers GET of a project's record of kind {name}, as view
// shows it, with its ETag.
func getRecord[T any, V any](a *API, w http.ResponseWriter, r *http.Request, kind string, view func(core.Project, core.Record, T) V) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, v, err := loadRecord[T](a, r, core.Ref{Project: p.ID, Kind: kind, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, view(p, rec, v))
	return nil
}

// createRecord stores v as the new record ref, at most limit of its kind
// in the project, and answers 201 with the record's ETag and view.
func createRecord[T any](a *API, w http.ResponseWriter, r *http.Request, ref core.Ref, v T, limit int, view func(core.Record) any) error {
	return createRecordWith(a.cfg.Store.Create, w, r, ref, v, limit, view)
}

// createRecordWith is createRecord with the store's create of a name no
// other project may hold (CreateUnique) or Create.
func createRecordWith[T any](create func(context.Context, core.Ref, []byte, int) (core.Record, error), w http.ResponseWriter, r *http.Request,
	ref core.Ref, v T, limit int, view func(core.Record) any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rec, err := create(r.Context(), ref, raw, limit)
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusCreated, view(rec))
	return nil
}

// replaceRecord stores v over the record ref if it is still at version
// (If-Match), and answers 200 with the record's new ETag and view.
func replaceRecord[T any](a *API, w http.ResponseWriter, r *http.Request, ref core.Ref, v T, version uint64, view func(core.Record) any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	rec, err := a.cfg.Store.Replace(r.Context(), ref, raw, version)
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, view(rec))
	return nil
}

func unmarshalRecord[T any](rec core.Record) (T, error) {
	var v T
	if err := json.Unmarshal(rec.Value, &v); err != nil {
		return v, fmt.Errorf("decode %s %q: %w", rec.Kind, rec.Name, err)
	}
	return v, nil
}

func (a *API) createSecret(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.SecretPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	s := core.Secret{ID: uuid.NewString(), Name: in.Name, Format: in.Format, Data: in.Data, CreatedAt: a.cfg.Now().UTC()}
	if s.Data == nil {
		s.Data = core.SecretData{}
	}
	if err := core.ValidateSecret(s); err != nil {
		return err
	}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: s.Name}, s, a.cfg.Quotas.Secrets, func(rec core.Record) any { return a.secretView(r, p, rec, s, true) })
}

func (a *API) getSecret(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, s, err := loadRecord[core.Secret](a, r, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	// ?redact=true (coligo's addition) asks for keys only, so that showing a
	// secret masked does not count as reading its values.
	withValues := principal(r).Role.AtLeast(core.RoleWriter) && r.URL.Query().Get("redact") != "true"
	if withValues {
		if err := a.audit(r, core.AuditSecretRead, "secret", p.ID, s.Name); err != nil {
			return err
		}
		a.log.Info("secret values read", "project", p.ID, "token", principal(r).TokenID)
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, a.secretView(r, p, rec, s, withValues))
	return nil
}

func (a *API) listSecrets(w http.ResponseWriter, r *http.Request) error {
	format := r.URL.Query().Get("format")
	return listRecords(a, w, r, core.KindSecret, func(p core.Project, rec core.Record, l *api.SecretList) (bool, error) {
		s, err := unmarshalRecord[core.Secret](rec)
		if err != nil || (format != "" && s.Format != format) {
			return false, err
		}
		l.Secrets = append(l.Secrets, a.secretView(r, p, rec, s, false))
		return true, nil
	}, func(l *api.SecretList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Secrets == nil {
			l.Secrets = []api.Secret{}
		}
	})
}

func (a *API) replaceSecret(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var in api.SecretReplace
	if err := decode(r, &in); err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindSecret, Name: r.PathValue("name")}
	_, s, err := loadRecord[core.Secret](a, r, ref)
	if err != nil {
		return err
	}
	if in.Format != s.Format {
		return core.Invalid("format", "is %s and cannot change to %q; delete and create the secret instead", s.Format, clipTag(in.Format))
	}
	s.Data = in.Data
	if s.Data == nil {
		s.Data = core.SecretData{}
	}
	if err := core.ValidateSecretData(s.Format, s.Data); err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, s, version, func(rec core.Record) any { return a.secretView(r, p, rec, s, true) })
}

func (a *API) deleteSecret(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindSecret)
}

func (a *API) createConfigMap(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.ConfigMapPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	c := core.ConfigMap{ID: uuid.NewString(), Name: in.Name, Data: in.Data, CreatedAt: a.cfg.Now().UTC()}
	if c.Data == nil {
		c.Data = map[string]string{}
	}
	if err := core.ValidateConfigMap(c); err != nil {
		return err
	}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindConfigMap, Name: c.Name}, c, a.cfg.Quotas.ConfigMaps, func(rec core.Record) any { return a.configMapView(r, p, rec, c) })
}

func (a *API) getConfigMap(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, c, err := loadRecord[core.ConfigMap](a, r, core.Ref{Project: p.ID, Kind: core.KindConfigMap, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, http.StatusOK, a.configMapView(r, p, rec, c))
	return nil
}

func (a *API) listConfigMaps(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindConfigMap, func(p core.Project, rec core.Record, l *api.ConfigMapList) (bool, error) {
		c, err := unmarshalRecord[core.ConfigMap](rec)
		if err != nil {
			return false, err
		}
		l.ConfigMaps = append(l.ConfigMaps, a.configMapView(r, p, rec, c))
		return true, nil
	}, func(l *api.ConfigMapList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.ConfigMaps == nil {
			l.ConfigMaps = []api.ConfigMap{}
		}
	})
}

func (a *API) replaceConfigMap(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	var in api.ConfigMapReplace
	if err := decode(r, &in); err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindConfigMap, Name: r.PathValue("name")}
	_, c, err := loadRecord[core.ConfigMap](a, r, ref)
	if err != nil {
		return err
	}
	c.Data = in.Data
	if c.Data == nil {
		c.Data = map[string]string{}
	}
	if err := core.ValidateData(c.Data); err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, c, version, func(rec core.Record) any { return a.configMapView(r, p, rec, c) })
}

func (a *API) deleteConfigMap(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindConfigMap)
}

// deleteRecord answers DELETE of a project's record of kind {name}: 202,
// the controllers do the rest.
func (a *API) deleteRecord(w http.ResponseWriter, r *http.Request, kind string) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: kind, Name: r.PathValue("name")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// listRecords pages through one kind of a project's records in name order.
// add appends a record to the page and reports whether it counted (a filter
// may skip it); finish sets the page fields.
func listRecords[L any](a *API, w http.ResponseWriter, r *http.Request, kind string,
	add func(core.Project, core.Record, *L) (bool, error), finish func(l *L, limit int, first, next *api.PageRef)) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	var out L
	after, n, next := pg.start, 0, ""
	for n < pg.limit {
		recs, more, err := a.cfg.Store.List(r.Context(), p.ID, kind, after, pg.limit-n)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			ok, err := add(p, rec, &out)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
			after = rec.Name
		}
		if !more {
			break
		}
		if n == pg.limit {
			next = after
		}
	}
	first, nextRef := a.pageRefs(r, pg.limit, next)
	finish(&out, pg.limit, first, nextRef)
	writeJSON(w, http.StatusOK, out)
	return nil
}
