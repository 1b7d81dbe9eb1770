package apiserver

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/controller/domain"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

func (a *API) domainMappingView(p core.Project, rec core.Record, m core.DomainMapping) api.DomainMapping {
	return api.DomainMapping{CnameTarget: "custom." + p.Subdomain + "." + a.cfg.Domain, Component: api.DomainMappingComponent(m.Component),
		CreatedAt: rfc3339(m.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/domain_mappings/" + m.Name,
		ID: m.ID, Name: m.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeDomainMapping,
		Status: m.Status, StatusDetails: api.DomainMappingStatusDetails{Reason: m.Reason, Message: m.Message},
		TLSSecret: m.TLSSecret, UserManaged: true, Visibility: "custom"}
}

// checkDomainMapping validates a mapping as it is written: its target
// exists and its TLS secret's certificate fits its name now and is its
// key's, as Code Engine checks at create.
func (a *API) checkDomainMapping(r *http.Request, p core.Project, m core.DomainMapping) error {
	if err := core.ValidateDomainMapping(m, a.cfg.Domain, a.cfg.ACME); err != nil {
		return err
	}
	kind := core.DomainTargetKinds[m.Component.ResourceType]
	if _, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: p.ID, Kind: kind, Name: m.Component.Name}); isNotFound(err) {
		return core.Invalid("component", "the project has no %s %s", kind, clipTag(m.Component.Name))
	} else if err != nil {
		return err
	}
	if m.TLSSecret == "" {
		return nil // ACME gets it
	}
	if _, err := domain.Certificate(r.Context(), a.cfg.Store, p.ID, m, a.cfg.Now()); err != nil {
		return core.Invalid("tls_secret", "%v", err)
	}
	return nil
}

// createDomainMapping maps a name, unique across all projects, to an app
// or a function.
func (a *API) createDomainMapping(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.DomainMappingPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	m := core.DomainMapping{ID: uuid.NewString(), Name: in.Name, Component: core.DomainComponent(in.Component), TLSSecret: in.TLSSecret,
		CreatedAt: a.cfg.Now().UTC(), Status: core.DomainDeploying, Reason: core.DomainDeploying}
	if err := core.ValidateDomainMapping(m, a.cfg.Domain, a.cfg.ACME); err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindDomainMapping, Name: m.Name}
	if held, err := a.cfg.Store.HeldElsewhere(r.Context(), ref); err != nil {
		return err
	} else if held {
		return fmt.Errorf("domain %s is served by another project of this server: %w", m.Name, core.ErrExists)
	}
	if err := a.checkDomainMapping(r, p, m); err != nil {
		return err
	}
	return createRecordWith(a.cfg.Store.CreateUnique, w, r, ref, m,
		core.MaxDomainMappingsPerProject, func(rec core.Record) any { return a.domainMappingView(p, rec, m) })
}

func (a *API) getDomainMapping(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindDomainMapping, a.domainMappingView)
}

func (a *API) listDomainMappings(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindDomainMapping, func(p core.Project, rec core.Record, l *api.DomainMappingList) (bool, error) {
		m, err := unmarshalRecord[core.DomainMapping](rec)
		if err != nil {
			return false, err
		}
		l.DomainMappings = append(l.DomainMappings, a.domainMappingView(p, rec, m))
		return true, nil
	}, func(l *api.DomainMappingList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.DomainMappings == nil {
			l.DomainMappings = []api.DomainMapping{}
		}
	})
}

// updateDomainMapping applies a merge patch: component and tls_secret
// may change; the router takes the change up without a restart.
func (a *API) updateDomainMapping(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindDomainMapping, Name: r.PathValue("name")}
	_, m, err := loadRecord[core.DomainMapping](a, r, ref)
	if err != nil {
		return err
	}
	cur := api.DomainMappingComponent(m.Component)
	in, err := applyPatch[api.DomainMappingPatch](api.DomainMappingPatch{Component: &cur, TLSSecret: m.TLSSecret}, patch)
	if err != nil {
		return err
	}
	if in.Component == nil {
		return core.Invalid("component", "cannot be removed: a domain mapping serves one app or function")
	}
	m.Component, m.TLSSecret = core.DomainComponent(*in.Component), in.TLSSecret
	m.Status, m.Reason, m.Message = core.DomainDeploying, core.DomainDeploying, ""
	if err := a.checkDomainMapping(r, p, m); err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, m, version, func(rec core.Record) any { return a.domainMappingView(p, rec, m) })
}

func (a *API) deleteDomainMapping(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindDomainMapping)
}

// unmapAll deletes the domain mappings of a component that is deleted, as
// Code Engine does.
func (a *API) unmapAll(r *http.Request, project string, c core.DomainComponent) error {
	for d, err := range store.All[core.DomainMapping](r.Context(), a.cfg.Store, project, core.KindDomainMapping) {
		if err != nil {
			return err
		}
		if d.Value.Component != c {
			continue
		}
		if err := a.cfg.Store.Delete(r.Context(), d.Record.Ref); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete domain mapping %s of %s %s: %w", d.Value.Name, strings.TrimSuffix(c.ResourceType, "_v2"), c.Name, err)
		}
	}
	return nil
}
