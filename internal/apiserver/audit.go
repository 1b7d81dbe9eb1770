package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/core"
)

// auditRoutes names the action and resource kind of every mutating route:
// each call of one leaves exactly one event, with its outcome. handle
// refuses to register a mutating route that is missing here.
var auditRoutes = map[string]struct{ action, kind string }{
	"POST /v2/projects":                                                  {core.AuditProjectCreate, "project"},
	"DELETE /v2/projects/{project}":                                      {core.AuditProjectDelete, "project"},
	"POST /v2/projects/{project}/restore":                                {core.AuditProjectRestore, "project"},
	"POST /v2/projects/{project}/rotate_key":                             {core.AuditKeyRotateDEK, "project"},
	"POST /v2/projects/{project}/allowed_outbound_destinations":          {"allowed_outbound_destination.create", core.KindEgress},
	"PATCH /v2/projects/{project}/allowed_outbound_destinations/{name}":  {"allowed_outbound_destination.update", core.KindEgress},
	"DELETE /v2/projects/{project}/allowed_outbound_destinations/{name}": {"allowed_outbound_destination.delete", core.KindEgress},
	"POST /v2/projects/{project}/secrets":                                {"secret.create", "secret"},
	"PUT /v2/projects/{project}/secrets/{name}":                          {"secret.replace", "secret"},
	"DELETE /v2/projects/{project}/secrets/{name}":                       {"secret.delete", "secret"},
	"POST /v2/projects/{project}/config_maps":                            {"config_map.create", "config_map"},
	"PUT /v2/projects/{project}/config_maps/{name}":                      {"config_map.replace", "config_map"},
	"DELETE /v2/projects/{project}/config_maps/{name}":                   {"config_map.delete", "config_map"},
	"POST /v2/projects/{project}/jobs":                                   {"job.create", "job"},
	"PATCH /v2/projects/{project}/jobs/{name}":                           {"job.update", "job"},
	"DELETE /v2/projects/{project}/jobs/{name}":                          {"job.delete", "job"},
	"POST /v2/projects/{project}/job_runs":                               {"job_run.create", "job_run"},
	"DELETE /v2/projects/{project}/job_runs/{name}":                      {"job_run.delete", "job_run"},
	"POST /v2/projects/{project}/apps":                                   {"app.create", "app"},
	"PATCH /v2/projects/{project}/apps/{name}":                           {"app.update", "app"},
	"DELETE /v2/projects/{project}/apps/{name}":                          {"app.delete", "app"},
	"POST /v2/projects/{project}/functions":                              {"function.create", "function"},
	"PATCH /v2/projects/{project}/functions/{name}":                      {"function.update", "function"},
	"DELETE /v2/projects/{project}/functions/{name}":                     {"function.delete", "function"},
	"POST /v2/projects/{project}/functions/{name}/invoke":                {"function.invoke", "function"},
	"POST /v2/projects/{project}/builds":                                 {"build.create", "build"},
	"PATCH /v2/projects/{project}/builds/{name}":                         {"build.update", "build"},
	"DELETE /v2/projects/{project}/builds/{name}":                        {"build.delete", "build"},
	"POST /v2/projects/{project}/subscriptions/cron":                     {"subscription_cron.create", "subscription_cron"},
	"PATCH /v2/projects/{project}/subscriptions/cron/{name}":             {"subscription_cron.update", "subscription_cron"},
	"DELETE /v2/projects/{project}/subscriptions/cron/{name}":            {"subscription_cron.delete", "subscription_cron"},
	"POST /v2/projects/{project}/persistent_data_stores":                 {"persistent_data_store.create", "persistent_data_store"},
	"DELETE /v2/projects/{project}/persistent_data_stores/{name}":        {"persistent_data_store.delete", "persistent_data_store"},
	"POST /v2/projects/{project}/domain_mappings":                        {"domain_mapping.create", "domain_mapping"},
	"PATCH /v2/projects/{project}/domain_mappings/{name}":                {"domain_mapping.update", "domain_mapping"},
	"DELETE /v2/projects/{project}/domain_mappings/{name}":               {"domain_mapping.delete", "domain_mapping"},
	"POST /v2/projects/{project}/bindings":                               {"binding.create", "binding"},
	"DELETE /v2/projects/{project}/bindings/{name}":                      {"binding.delete", "binding"},
	"POST /v2/projects/{project}/build_runs":                             {"build_run.create", "build_run"},
	"DELETE /v2/projects/{project}/build_runs/{name}":                    {"build_run.delete", "build_run"},
	"POST /v2/projects/{project}/build_runs/{name}/cancel":               {"build_run.cancel", "build_run"},
	"DELETE /v2/projects/{project}/apps/{app}/revisions/{name}":          {"revision.delete", "revision"},
	"POST /v2/key_providers/{name}/rotate":                               {core.AuditKeyRotate, "key"},
	"POST /v2/tokens":                                                    {core.AuditTokenCreate, "token"},
	"DELETE /v2/tokens/{id}":                                             {core.AuditTokenRevoke, "token"},
	"DELETE /console/session":                                            {core.AuditConsoleLogout, "session"},
}

// auditNote is what a handler tells the audit event of its call beyond
// what the route says: the project, a target in clear (ids that are not
// project data), the name of the resource (kept only sealed and as a keyed
// hash) and an action that refines the route's.
type auditNote struct {
	project, target, name, action string
}

type auditNoteKey struct{}

// note lets a handler fill in its call's audit event.
func note(r *http.Request, fill func(*auditNote)) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		fill(n)
	}
}

// nameForAudit tells the audit event of a create call the name it creates.
func nameForAudit(r *http.Request, name string) {
	note(r, func(n *auditNote) { n.name = name })
}

// recordCall appends the audit event of a mutating call, after it, with
// its outcome. The answer has gone by then: a failure to record is logged
// as an error for the operator, with the trace.
func (a *API) recordCall(r *http.Request, pattern string, pr auth.Principal, n *auditNote, code int, trace string) {
	route := auditRoutes[pattern]
	ev := core.AuditEvent{Time: a.cfg.Now(), Actor: pr.TokenID, Action: route.action, Kind: route.kind,
		Outcome: core.AuditSuccess, StatusCode: code, ProjectID: n.project, Target: clipAudit(n.target, 128)}
	if code >= 400 {
		ev.Outcome = core.AuditFailure
	}
	if n.action != "" {
		ev.Action = n.action
	}
	if ev.ProjectID == "" && core.IsUUID(r.PathValue("project")) {
		ev.ProjectID = r.PathValue("project")
	}
	name := n.name
	if name == "" {
		name = r.PathValue("name")
		if route.kind == "token" || route.kind == "key" {
			name = "" // not project data: the id or provider is the target
		}
	}
	if err := a.cfg.Store.AppendAudit(context.WithoutCancel(r.Context()), ev, clipAudit(name, 253)); err != nil {
		a.log.Error("audit event not recorded", "action", ev.Action, "trace", trace, "err", err)
	}
}

func clipAudit(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// audit appends the event of a value read by the caller, before the value
// is answered: a failure fails the call, so that what is not recorded is
// not disclosed. name is the project-scoped name of what was read.
func (a *API) audit(r *http.Request, action, kind, project, name string) error {
	ev := core.AuditEvent{Time: a.cfg.Now(), Actor: principal(r).TokenID, Action: action, Kind: kind, Outcome: core.AuditSuccess,
		StatusCode: http.StatusOK, ProjectID: project}
	if err := a.cfg.Store.AppendAudit(r.Context(), ev, name); err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// verifyAuditEvents checks the whole log in the server (admin).
func (a *API) verifyAuditEvents(w http.ResponseWriter, r *http.Request) error {
	if !principal(r).Admin() {
		return fmt.Errorf("only an admin may verify the audit log: %w", core.ErrForbidden)
	}
	rep, err := a.cfg.Store.VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.AuditVerification{Valid: rep.Valid, Entries: rep.Entries, FirstSeq: rep.First, LastSeq: rep.Last,
		PrunedThrough: rep.PrunedThrough, Problem: rep.Problem})
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
		v := api.AuditEvent{Seq: e.Seq, Time: e.Time.Format(time.RFC3339Nano), Actor: e.Actor, Action: e.Action, Kind: e.Kind,
			Outcome: e.Outcome, StatusCode: e.StatusCode, ProjectID: e.ProjectID,
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
	out.First, out.Next = a.pageRefs(r, pg.limit, next)
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
	note(r, func(n *auditNote) { n.target = name })
	id, err := a.cfg.RotateRootKey(r.Context(), name)
	if err != nil {
		return err
	}
	note(r, func(n *auditNote) { n.target = name + "/" + id })
	writeJSON(w, http.StatusAccepted, map[string]string{"provider": name, "key_id": id})
	return nil
}

// backup streams a consistent copy of the store (admin). It reads every
// record, so it leaves an audit event first, which the copy then holds.
// The copy's length is the Content-Length: a cut stream is seen as such.
func (a *API) backup(w http.ResponseWriter, r *http.Request) error {
	if !principal(r).Admin() {
		return fmt.Errorf("only an admin may back up the store: %w", core.ErrForbidden)
	}
	if err := a.audit(r, core.AuditBackup, "store", "", ""); err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a large store takes longer than an answer may
	n, err := a.cfg.Store.Backup(r.Context(), w, func(size int64) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="coligo-backup.db"`)
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.WriteHeader(http.StatusOK)
	})
	if err != nil && n == 0 {
		return err
	}
	if err != nil {
		a.log.Error("backup cut short", "bytes", n, "err", err)
	}
	return nil
}
