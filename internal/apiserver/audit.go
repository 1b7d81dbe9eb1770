package apiserver

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

// audit appends a security event by the caller; name, when set, is a
// project-scoped name that the log keeps only sealed and hashed. A failure
// fails the call: what is not recorded does not happen.
func (a *API) audit(r *http.Request, action, project, target, name string) error {
	ev := core.AuditEvent{Time: a.cfg.Now(), Actor: principal(r).TokenID, Action: action, ProjectID: project, Target: target}
	if err := a.cfg.Store.AppendAudit(r.Context(), ev, name); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// listAuditEvents serves the audit log: all of it to an admin (or one
// project with project_id), its own project's events to a manager.
func (a *API) listAuditEvents(w http.ResponseWriter, r *http.Request) error {
	pr := principal(r)
	project := r.URL.Query().Get("project_id")
	if !pr.Admin() {
		if !pr.Role.AtLeast(core.RoleManager) {
			return fmt.Errorf("only a manager may read the audit log: %w", core.ErrForbidden)
		}
		if project != "" && project != pr.ProjectID {
			return fmt.Errorf("project: %w", core.ErrNotFound)
		}
		project = pr.ProjectID
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	var after uint64
	if pg.start != "" {
		if after, err = strconv.ParseUint(pg.start, 10, 64); err != nil {
			return &apiError{status: http.StatusBadRequest, code: "invalid_start", msg: "start is not a token from a previous list response"}
		}
	}
	evs, more, err := a.cfg.Store.ListAudit(r.Context(), project, after, pg.limit)
	if err != nil {
		return err
	}
	out := api.AuditEventList{Limit: pg.limit, AuditEvents: []api.AuditEvent{}}
	for _, e := range evs {
		v := api.AuditEvent{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action, ProjectID: e.ProjectID,
			Target: e.Target, TargetHash: e.TargetHash, SealedTarget: e.SealedTarget, PrevHash: e.PrevHash, Hash: e.Hash}
		if name, err := a.cfg.Store.AuditTarget(r.Context(), e); err == nil {
			v.TargetName = name
		}
		out.AuditEvents = append(out.AuditEvents, v)
	}
	next := ""
	if more && len(evs) > 0 {
		next = strconv.FormatUint(evs[len(evs)-1].Seq, 10)
	}
	out.First, out.Next = pageRefs(r, pg.limit, next)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// rotateRootKey gives a key provider's root key a new version (admin); the
// data keys it wraps are re-wrapped in the background.
func (a *API) rotateRootKey(w http.ResponseWriter, r *http.Request) error {
	if !principal(r).Admin() {
		return fmt.Errorf("only an admin may rotate a root key: %w", core.ErrForbidden)
	}
	if a.cfg.RotateRootKey == nil {
		return fmt.Errorf("root key rotation: %w", core.ErrUnavailable)
	}
	name := r.PathValue("name")
	id, err := a.cfg.RotateRootKey(r.Context(), name)
	if err != nil {
		return err
	}
	if err := a.audit(r, core.AuditKeyRotate, "", name+"/"+id, ""); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"provider": name, "key_id": id})
	return nil
}
