package apiserver

import (
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func toAPIBuildSpec(s core.BuildSpec) api.BuildSpec {
	out := api.BuildSpec{OutputImage: s.OutputImage, OutputSecret: s.OutputSecret, StrategyType: s.StrategyType, StrategySize: s.StrategySize,
		StrategySpecFile: s.StrategySpecFile, SourceType: s.SourceType, SourceURL: s.SourceURL, SourceRevision: s.SourceRevision,
		SourceSecret: s.SourceSecret, SourceContextDir: s.SourceContextDir, Timeout: &s.Timeout, RunBuildParams: []api.BuildParam{}}
	for _, p := range s.RunBuildParams {
		out.RunBuildParams = append(out.RunBuildParams, api.BuildParam(p))
	}
	return out
}

// buildSpecFrom builds a spec from a prototype (or a patched one): Code
// Engine's defaults for what is unset, then validation.
func (a *API) buildSpecFrom(in api.BuildSpec) (core.BuildSpec, error) {
	s := core.NewBuildSpec()
	for dst, v := range map[*string]string{&s.OutputImage: in.OutputImage, &s.OutputSecret: in.OutputSecret, &s.StrategyType: in.StrategyType,
		&s.StrategySize: in.StrategySize, &s.StrategySpecFile: in.StrategySpecFile, &s.SourceType: in.SourceType, &s.SourceURL: in.SourceURL,
		&s.SourceRevision: in.SourceRevision, &s.SourceSecret: in.SourceSecret, &s.SourceContextDir: in.SourceContextDir} {
		if v != "" {
			*dst = v
		}
	}
	if in.Timeout != nil {
		s.Timeout = *in.Timeout
	}
	for _, p := range in.RunBuildParams {
		s.RunBuildParams = append(s.RunBuildParams, core.BuildParam(p))
	}
	if err := core.ValidateBuildSpec(s); err != nil {
		return s, err
	}
	if err := a.checkRegistry("output_image", s.OutputImage); err != nil {
		return s, err
	}
	return s, a.checkGitURL(s.SourceURL)
}

// checkGitURL refuses a plain http:// source_url but on the hosts the
// operator allowed (--insecure-git-host), and any source on this host or
// the link-local range but those.
func (a *API) checkGitURL(raw string) error {
	if raw == "" {
		return nil
	}
	host := core.GitHost(raw)
	allowed := slices.Contains(a.cfg.InsecureGitHosts, host)
	if strings.HasPrefix(raw, "http://") && !allowed {
		return core.Invalid("source_url", "plain http:// reaches only the Git hosts the operator allows (--insecure-git-host); use https://")
	}
	if !allowed {
		if err := a.cfg.Registries.CheckHost(host); err != nil {
			return core.Invalid("source_url", "names a host on this machine or a link-local address, which coligo does not fetch from (an operator can allow one with --insecure-git-host)")
		}
	}
	return nil
}

func (a *API) buildView(p core.Project, rec core.Record, b core.Build) api.Build {
	return api.Build{CreatedAt: rfc3339(b.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/builds/" + b.Name,
		ID: b.ID, Name: b.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeBuild,
		Status: b.Status, StatusDetails: api.BuildStatusDetails{Reason: b.Reason}, BuildSpec: toAPIBuildSpec(b.Spec)}
}

func (a *API) createBuild(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.BuildPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	if err := core.ValidateBuildName(in.Name); err != nil {
		return err
	}
	spec, err := a.buildSpecFrom(in.BuildSpec)
	if err != nil {
		return err
	}
	// Code Engine checks a build when it runs; stored, it is registered.
	b := core.Build{ID: uuid.NewString(), Name: in.Name, CreatedAt: a.cfg.Now().UTC(), Spec: spec, Status: core.BuildReady, Reason: core.ReasonRegistered}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindBuild, Name: b.Name}, b, core.MaxBuildsPerProject, func(rec core.Record) any { return a.buildView(p, rec, b) })
}

func (a *API) getBuild(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindBuild, a.buildView)
}

func (a *API) listBuilds(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindBuild, func(p core.Project, rec core.Record, l *api.BuildList) (bool, error) {
		b, err := unmarshalRecord[core.Build](rec)
		if err != nil {
			return false, err
		}
		l.Builds = append(l.Builds, a.buildView(p, rec, b))
		return true, nil
	}, func(l *api.BuildList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Builds == nil {
			l.Builds = []api.Build{}
		}
	})
}

// updateBuild applies an RFC 7386 merge patch to a build.
func (a *API) updateBuild(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindBuild, Name: r.PathValue("name")}
	_, b, err := loadRecord[core.Build](a, r, ref)
	if err != nil {
		return err
	}
	in, err := applyPatch[api.BuildSpec](toAPIBuildSpec(b.Spec), patch)
	if err != nil {
		return err
	}
	if b.Spec, err = a.buildSpecFrom(in); err != nil {
		return err
	}
	return replaceRecord(a, w, r, ref, b, version, func(rec core.Record) any { return a.buildView(p, rec, b) })
}
