package apiserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

// BuildRunObserver tells what the build run controller holds of a run:
// its progress, in memory only, and whether it has ended.
type BuildRunObserver interface {
	BuildLogs(project, run string) (log []byte, ended bool)
}

var serviceAccounts = map[string]bool{"default": true, "manager": true, "none": true, "reader": true, "writer": true}

func (a *API) buildRunView(p core.Project, _ core.Record, b core.BuildRun) api.BuildRun {
	at := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return rfc3339(*t)
	}
	return api.BuildRun{BuildName: b.BuildName, CreatedAt: rfc3339(b.CreatedAt), Href: a.linkBase + "/v2/projects/" + p.ID + "/build_runs/" + b.Name,
		ID: b.ID, Name: b.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeBuildRun, ServiceAccount: b.ServiceAccount, SourceImage: b.SourceImage,
		Status: b.Status, StatusDetails: api.BuildRunStatusDetails{Reason: b.Reason, Message: b.Message, StartTime: at(b.StartTime),
			CompletionTime: at(b.CompletionTime), OutputDigest: b.OutputDigest, GitCommitSHA: b.GitCommitSHA, GitCommitAuthor: b.GitCommitAuthor,
			GitBranchName: b.GitBranchName, SourceTimestamp: at(b.SourceTimestamp)},
		BuildSpec: toAPIBuildSpec(b.Spec)}
}

// createBuildRun submits a run: of a build (its fields under the run's
// own), or stand-alone; it is pending until the controller runs it.
func (a *API) createBuildRun(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	if a.cfg.BuildRuns == nil {
		return fmt.Errorf("no builder is configured (--buildkit-address): %w", core.ErrUnavailable)
	}
	var in api.BuildRunPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	spec := in.BuildSpec
	if in.BuildName != "" {
		_, b, err := loadRecord[core.Build](a, r, core.Ref{Project: p.ID, Kind: core.KindBuild, Name: in.BuildName})
		if isNotFound(err) {
			return core.Invalid("build_name", "the project has no build %s", clipTag(in.BuildName))
		}
		if err != nil {
			return err
		}
		own, _ := json.Marshal(in.BuildSpec) // set fields only: a merge patch over the build's
		if spec, err = applyPatch[api.BuildSpec](toAPIBuildSpec(b.Spec), own); err != nil {
			return err
		}
	}
	name := in.Name
	switch {
	case name == "" && in.BuildName != "":
		name = core.BuildRunName(in.BuildName, a.cfg.Now())
	case name == "":
		return core.Invalid("name", "is required for a run without build_name")
	}
	nameForAudit(r, name)
	if err := core.ValidateBuildName(name); err != nil {
		return err
	}
	s, err := a.buildSpecFrom(spec)
	if err != nil {
		return err
	}
	switch {
	case s.SourceType == core.SourceLocal && in.SourceImage == "":
		return core.Invalid("source_image", "is required for a local source: the image of its files (coligo buildrun submit --source DIR pushes one)")
	case s.SourceType != core.SourceLocal && in.SourceImage != "":
		return core.Invalid("source_image", "is only for source_type local")
	case in.SourceImage != "" && !core.IsImageRef(in.SourceImage):
		return core.Invalid("source_image", "%q is not an image reference", clipTag(in.SourceImage))
	}
	if in.SourceImage != "" {
		if err := a.checkRegistry("source_image", in.SourceImage); err != nil {
			return err
		}
	}
	if in.ServiceAccount == "" {
		in.ServiceAccount = "default"
	}
	if !serviceAccounts[in.ServiceAccount] {
		return core.Invalid("service_account", "%q is not default, manager, none, reader or writer", clipTag(in.ServiceAccount))
	}
	run := core.BuildRun{ID: uuid.NewString(), Name: name, BuildName: in.BuildName, CreatedAt: a.cfg.Now().UTC(), Spec: s,
		ServiceAccount: in.ServiceAccount, SourceImage: in.SourceImage, Status: core.BuildRunPending, Reason: core.BuildRunPending}
	raw, _ := json.Marshal(run)
	rec, err := a.cfg.Store.Create(r.Context(), core.Ref{Project: p.ID, Kind: core.KindBuildRun, Name: name}, raw, core.MaxBuildRunsPerProject)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, a.buildRunView(p, rec, run))
	return nil
}

func (a *API) getBuildRun(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindBuildRun, a.buildRunView)
}

// listBuildRuns lists a project's runs, of one build with ?build_name=.
func (a *API) listBuildRuns(w http.ResponseWriter, r *http.Request) error {
	build := r.URL.Query().Get("build_name")
	return listRecords(a, w, r, core.KindBuildRun, func(p core.Project, rec core.Record, l *api.BuildRunList) (bool, error) {
		b, err := unmarshalRecord[core.BuildRun](rec)
		if err != nil || build != "" && b.BuildName != build {
			return false, err
		}
		l.BuildRuns = append(l.BuildRuns, a.buildRunView(p, rec, b))
		return true, nil
	}, func(l *api.BuildRunList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.BuildRuns == nil {
			l.BuildRuns = []api.BuildRun{}
		}
	})
}

// cancelBuildRun ends a pending or running run: it fails with reason
// canceled, and its build stops.
func (a *API) cancelBuildRun(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindBuildRun, Name: r.PathValue("name")}
	for range 10 {
		rec, run, err := loadRecord[core.BuildRun](a, r, ref)
		if err != nil {
			return err
		}
		if run.Status != core.BuildRunPending && run.Status != core.BuildRunRunning {
			return core.Invalid("name", "build run %s has ended (%s); only a pending or running run is canceled", run.Name, run.Status)
		}
		now := a.cfg.Now().UTC()
		run.Status, run.Reason, run.Message, run.CompletionTime = core.BuildRunFailed, core.ReasonBuildCanceled, "canceled", &now
		raw, _ := json.Marshal(run)
		rec, err = a.cfg.Store.Replace(r.Context(), ref, raw, rec.Version)
		if errors.Is(err, core.ErrConflict) {
			continue // the controller wrote meanwhile
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a.buildRunView(p, rec, run))
		return nil
	}
	return fmt.Errorf("build run %s changes too often to cancel: %w", ref.Name, core.ErrConflict)
}

func (a *API) deleteBuildRun(w http.ResponseWriter, r *http.Request) error {
	return a.deleteRecord(w, r, core.KindBuildRun)
}

// deleteBuild deletes a build and, as Code Engine does, its runs.
func (a *API) deleteBuild(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindBuild, Name: name}); err != nil {
		return err
	}
	recs, _, err := a.cfg.Store.List(r.Context(), p.ID, core.KindBuildRun, "", core.MaxBuildRunsPerProject+1)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if run, err := unmarshalRecord[core.BuildRun](rec); err == nil && run.BuildName == name {
			if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindBuildRun, Name: run.Name}); err != nil && !isNotFound(err) {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// buildRunLogs writes a run's steps and output; ?follow=true keeps
// writing until the run ends.
func (a *API) buildRunLogs(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	if a.cfg.BuildRuns == nil {
		return fmt.Errorf("no builder is configured (--buildkit-address): %w", core.ErrUnavailable)
	}
	_, run, err := loadRecord[core.BuildRun](a, r, core.Ref{Project: p.ID, Kind: core.KindBuildRun, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	follow := r.URL.Query().Get("follow") == "true"
	release, err := a.stream(w, r, follow)
	if err != nil {
		return err
	}
	defer release()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := flushWriter{w}
	sent := 0
	for {
		log, ended := a.cfg.BuildRuns.BuildLogs(p.ID, run.Name)
		if len(log) > sent {
			fw.Write(log[sent:])
			sent = len(log)
		}
		if !follow || ended {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
