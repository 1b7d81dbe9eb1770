package apiserver

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/core"
)

func (a *API) projectView(r *http.Request, p core.Project) api.Project {
	out := api.Project{
		AccountID:       a.cfg.AccountID,
		CreatedAt:       rfc3339(p.CreatedAt),
		CRN:             fmt.Sprintf("crn:v1:coligo:local:codeengine:%s:a/%s:%s::", a.cfg.Region, a.cfg.AccountID, p.ID),
		Href:            a.linkBase + "/v2/projects/" + p.ID,
		ID:              p.ID,
		Name:            p.Name,
		Region:          a.cfg.Region,
		ResourceGroupID: p.ResourceGroupID,
		ResourceType:    api.ResourceTypeProject,
		Status:          string(p.Status),
		EntityTag:       etag(p.Version),
		Subdomain:       p.Subdomain,
		Encryption: &api.Encryption{
			Provider: p.Encryption.Provider, KeyID: p.Encryption.KeyID,
			KeyVersion: p.Encryption.KeyVersion, DEKCreatedAt: rfc3339(p.Encryption.DEKCreatedAt),
		},
	}
	if !p.DeletedAt.IsZero() {
		out.DeletedAt = rfc3339(p.DeletedAt)
	}
	if !p.HardDeleteAt.IsZero() {
		out.HardDeleteAt = rfc3339(p.HardDeleteAt)
	}
	return out
}

// project loads the project named in the path and authorizes the caller for
// need; a caller of another project gets 404.
func (a *API) project(r *http.Request, need core.Role) (core.Project, error) {
	id := r.PathValue("project")
	if err := auth.Authorize(principal(r), id, need); err != nil {
		return core.Project{}, err
	}
	if !core.IsUUID(id) {
		return core.Project{}, fmt.Errorf("project %q: %w", clipTag(id), core.ErrNotFound)
	}
	return a.cfg.Store.GetProject(r.Context(), id)
}

// activeProject is project for calls on a project's resources, which need
// the project to be usable.
func (a *API) activeProject(r *http.Request, need core.Role) (core.Project, error) {
	p, err := a.project(r, need)
	if err != nil {
		return p, err
	}
	if !p.Usable() {
		return p, fmt.Errorf("project %s is %s; restore it first: %w", p.Name, p.Status, core.ErrNotActive)
	}
	return p, nil
}

func (a *API) createProject(w http.ResponseWriter, r *http.Request) error {
	if !principal(r).Admin() {
		return fmt.Errorf("only an admin token may create projects: %w", core.ErrForbidden)
	}
	var in api.ProjectPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := core.ValidateProjectName(in.Name); err != nil {
		return err
	}
	rg := in.ResourceGroupID
	if rg == "" {
		rg = "default"
	} else if len(rg) > 64 || strings.ContainsFunc(rg, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') }) {
		return core.Invalid("resource_group_id", "must be at most 64 characters of [a-z0-9_-]")
	}
	if in.Encryption != nil && in.Encryption.Provider != "" && !slices.Contains(a.cfg.KeyProviders, in.Encryption.Provider) {
		return core.Invalid("encryption", "provider %q is not configured; configured: %s", clipTag(in.Encryption.Provider), strings.Join(a.cfg.KeyProviders, ", "))
	}
	provider := ""
	if in.Encryption != nil {
		provider = in.Encryption.Provider
		if err := a.checkKeyID(r, provider, in.Encryption.KeyID); err != nil {
			return err
		}
	}
	if q := a.cfg.Quotas.Projects; q > 0 {
		all, err := a.cfg.Store.ListProjects(r.Context())
		if err != nil {
			return err
		}
		if len(all) >= q {
			return fmt.Errorf("the server holds at most %d projects, soft-deleted ones included: %w", q, core.ErrQuota)
		}
	}
	p := core.Project{ID: uuid.NewString(), Name: in.Name, ResourceGroupID: rg, Status: core.ProjectCreating, CreatedAt: a.cfg.Now().UTC(),
		Encryption: core.Encryption{Provider: provider}}
	if core.IsDNSLabel(in.Name) {
		p.Subdomain = in.Name
	}
	p, err := a.cfg.Store.CreateProject(r.Context(), p, newSubdomain)
	if err != nil {
		return err
	}
	note(r, func(n *auditNote) { n.project, n.name = p.ID, p.Name })
	a.log.Info("project created", "project", p.ID)
	writeJSON(w, http.StatusAccepted, a.projectView(r, p))
	return nil
}

// newSubdomain returns a random 11-character DNS label.
func newSubdomain() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 11)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	b[0] = alphabet[int(b[0])%26] // begin with a letter
	return string(b)
}

func (a *API) listProjects(w http.ResponseWriter, r *http.Request) error {
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	withDeleted := r.URL.Query().Get("include_deleted") == "true"
	all, err := a.cfg.Store.ListProjects(r.Context())
	if err != nil {
		return err
	}
	pr := principal(r)
	visible := all[:0]
	for _, p := range all {
		if !pr.Admin() && p.ID != pr.ProjectID {
			continue
		}
		if !withDeleted && !p.Usable() {
			continue
		}
		visible = append(visible, p)
	}
	slices.SortFunc(visible, func(x, y core.Project) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	pos := func(p core.Project) string { return p.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + p.ID }
	i := 0
	if pg.start != "" {
		i, _ = slices.BinarySearchFunc(visible, pg.start, func(p core.Project, s string) int { return strings.Compare(pos(p), s) })
		if i < len(visible) && pos(visible[i]) == pg.start {
			i++
		}
	}
	out := api.ProjectList{Limit: pg.limit, Projects: []api.Project{}}
	end := min(i+pg.limit, len(visible))
	for _, p := range visible[i:end] {
		out.Projects = append(out.Projects, a.projectView(r, p))
	}
	next := ""
	if end < len(visible) {
		next = pos(visible[end-1])
	}
	out.First, out.Next = a.pageRefs(r, pg.limit, next)
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getProject(w http.ResponseWriter, r *http.Request) error {
	p, err := a.project(r, core.RoleReader)
	if err != nil {
		return err
	}
	setETag(w, p.Version)
	writeJSON(w, http.StatusOK, a.projectView(r, p))
	return nil
}

func (a *API) projectStatusDetails(w http.ResponseWriter, r *http.Request) error {
	p, err := a.project(r, core.RoleReader)
	if err != nil {
		return err
	}
	state := "enabled"
	if p.Status != core.ProjectActive {
		state = "disabled"
	}
	// What is true here: the domain is served by the router; there is no
	// VPE (an IBM Cloud private network) and no context-based restriction,
	// so inbound traffic to apps is as their visibility says.
	writeJSON(w, http.StatusOK, api.ProjectStatusDetails{Project: state, Domain: "ready", VPE: "unknown", VPENotEnabled: true,
		CBR: api.CBRDetails{DataPlane: api.CBRDataPlane{Enforcement: "none", InboundPublic: "allowed", InboundPrivate: "allowed"}}})
	return nil
}

// deleteProject soft-deletes a project, or with hard=true marks it for the
// crypto-shred that the project controller carries out.
func (a *API) deleteProject(w http.ResponseWriter, r *http.Request) error {
	hard := false
	switch v := r.URL.Query().Get("hard"); v {
	case "", "false":
	case "true":
		hard = true
	default:
		return core.Invalid("hard", "must be true or false")
	}
	p, err := a.project(r, core.RoleManager)
	if err != nil {
		return err
	}
	now := a.cfg.Now().UTC()
	p, err = a.cfg.Store.UpdateProject(r.Context(), p.ID, 0, func(p *core.Project) error {
		switch {
		case p.Status == core.ProjectHardDeleting:
		case hard:
			p.Status = core.ProjectHardDeleting
			if p.DeletedAt.IsZero() {
				p.DeletedAt = now
			}
			p.HardDeleteAt = now
		case p.Status == core.ProjectSoftDeleted:
			return fmt.Errorf("project %s is already soft-deleted; delete it with hard=true to destroy it now: %w", p.Name, core.ErrNotActive)
		default:
			p.Status = core.ProjectSoftDeleted
			p.DeletedAt = now
			p.HardDeleteAt = now.Add(a.cfg.SoftDeleteRetention)
		}
		return nil
	})
	if err != nil {
		return err
	}
	kind := "soft"
	if hard {
		kind = "hard"
	}
	note(r, func(n *auditNote) { n.target = kind })
	a.log.Info("project deleted", "project", p.ID, "hard", hard)
	writeJSON(w, http.StatusAccepted, a.projectView(r, p))
	return nil
}

func (a *API) restoreProject(w http.ResponseWriter, r *http.Request) error {
	p, err := a.project(r, core.RoleManager)
	if err != nil {
		return err
	}
	p, err = a.cfg.Store.UpdateProject(r.Context(), p.ID, 0, func(p *core.Project) error {
		if p.Status != core.ProjectSoftDeleted {
			return fmt.Errorf("project %s is %s; only a soft-deleted project can be restored: %w", p.Name, p.Status, core.ErrNotActive)
		}
		p.Status = core.ProjectActive
		p.DeletedAt, p.HardDeleteAt, p.RestoredAt = time.Time{}, time.Time{}, a.cfg.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	a.log.Info("project restored", "project", p.ID)
	writeJSON(w, http.StatusAccepted, a.projectView(r, p))
	return nil
}

// rotateProjectKey gives a project a new data key (manager); its records
// are sealed again in the background while reads and writes go on.
func (a *API) rotateProjectKey(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleManager)
	if err != nil {
		return err
	}
	began, err := a.cfg.Store.BeginDEKRotation(r.Context(), p.ID)
	if err != nil {
		return err
	}
	if !began {
		return fmt.Errorf("a data key rotation of project %s is still in progress: %w", p.Name, core.ErrNotActive)
	}
	if a.cfg.KeyRotated != nil {
		a.cfg.KeyRotated()
	}
	if p, err = a.cfg.Store.GetProject(r.Context(), p.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, a.projectView(r, p))
	return nil
}

// checkKeyID accepts a key_id asked for at project create only when it is
// the current key of a KMS provider: a KMS v2 plugin wraps with its
// current key, and coligo does not pretend otherwise.
func (a *API) checkKeyID(r *http.Request, provider, keyID string) error {
	if keyID == "" {
		return nil
	}
	if provider == "" && len(a.cfg.KeyProviders) > 0 {
		provider = a.cfg.KeyProviders[0]
	}
	if a.cfg.KeyStatus == nil {
		return core.Invalid("encryption", "key_id can only be chosen for a KMS provider")
	}
	cur, isKMS, err := a.cfg.KeyStatus(r.Context(), provider)
	if !isKMS {
		return core.Invalid("encryption", "key_id can only be chosen for a KMS provider")
	}
	if err != nil {
		return &core.KeyError{Provider: provider, KeyID: keyID, Err: err}
	}
	if cur != keyID {
		return core.Invalid("encryption", "provider %s wraps with its current key %s, not %q", provider, cur, clipTag(keyID))
	}
	return nil
}
