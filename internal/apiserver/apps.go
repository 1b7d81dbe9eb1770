package apiserver

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/store"
)

// AppObserver tells what the app controller observes of instances.
type AppObserver interface {
	Instances(project, app string) []core.AppInstance
}

func toAPIAppSpec(s core.AppSpec) api.AppSpec {
	out := api.AppSpec{
		Build: s.Build, BuildRun: s.BuildRun, ImageReference: s.ImageReference, ImageSecret: s.ImageSecret, ImagePort: &s.ImagePort, ImagePortName: s.ImagePortName,
		ManagedDomainMappings: s.ManagedDomainMappings, HTTPOption: s.HTTPOption, RunArguments: s.RunArguments, RunCommands: s.RunCommands,
		RunAsUser: &s.RunAsUser, RunComputeResourceTokenEnabled: &s.RunComputeResourceTokenEnabled, RunServiceAccount: s.RunServiceAccount, ScaleConcurrency: &s.ScaleConcurrency,
		ScaleCPULimit: s.ScaleCPULimit, ScaleMemoryLimit: s.ScaleMemoryLimit, ScaleEphemeralStorageLimit: s.ScaleEphemeralStorageLimit,
		ScaleDownDelay: &s.ScaleDownDelay, ScaleInitialInstances: &s.ScaleInitialInstances, ScaleMaxInstances: &s.ScaleMaxInstances,
		ScaleMinInstances: &s.ScaleMinInstances, ScaleRequestTimeout: &s.ScaleRequestTimeout, RunEnvVariables: []api.EnvVar{},
		RunVolumeMounts: []api.VolumeMount{},
	}
	target := s.Target()
	out.ScaleConcurrencyTarget = &target
	if out.HTTPOption == "" {
		out.HTTPOption = core.HTTPEnabled // an app from before the field
	}
	if s.ProbeReadiness != nil {
		p := api.Probe(*s.ProbeReadiness)
		out.ProbeReadiness = &p
	}
	if s.ProbeLiveness != nil {
		p := api.Probe(*s.ProbeLiveness)
		out.ProbeLiveness = &p
	}
	for _, e := range s.RunEnvVariables {
		out.RunEnvVariables = append(out.RunEnvVariables, api.EnvVar(e))
	}
	for _, m := range s.RunVolumeMounts {
		out.RunVolumeMounts = append(out.RunVolumeMounts, api.VolumeMount(m))
	}
	return out
}

// appSpecFrom builds a spec from a prototype (or a patched one): Code
// Engine's defaults for what is unset, then validation.
func appSpecFrom(in api.AppSpec) (core.AppSpec, error) {
	s := core.NewAppSpec()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.Build, in.Build)
	set(&s.BuildRun, in.BuildRun)
	set(&s.ImageReference, in.ImageReference)
	set(&s.ImageSecret, in.ImageSecret)
	set(&s.ImagePortName, in.ImagePortName)
	set(&s.ManagedDomainMappings, in.ManagedDomainMappings)
	set(&s.HTTPOption, in.HTTPOption)
	set(&s.RunServiceAccount, in.RunServiceAccount)
	set(&s.ScaleCPULimit, in.ScaleCPULimit)
	set(&s.ScaleMemoryLimit, in.ScaleMemoryLimit)
	set(&s.ScaleEphemeralStorageLimit, in.ScaleEphemeralStorageLimit)
	setInt(&s.ImagePort, in.ImagePort)
	setInt(&s.RunAsUser, in.RunAsUser)
	if in.RunComputeResourceTokenEnabled != nil {
		s.RunComputeResourceTokenEnabled = *in.RunComputeResourceTokenEnabled
	}
	setInt(&s.ScaleConcurrency, in.ScaleConcurrency)
	setInt(&s.ScaleConcurrencyTarget, in.ScaleConcurrencyTarget)
	setInt(&s.ScaleDownDelay, in.ScaleDownDelay)
	setInt(&s.ScaleInitialInstances, in.ScaleInitialInstances)
	setInt(&s.ScaleMaxInstances, in.ScaleMaxInstances)
	setInt(&s.ScaleMinInstances, in.ScaleMinInstances)
	setInt(&s.ScaleRequestTimeout, in.ScaleRequestTimeout)
	if in.ScaleConcurrencyTarget != nil && *in.ScaleConcurrencyTarget == 0 {
		return s, core.Invalid("scale_concurrency_target", "must be from 1 to %d", core.MaxConcurrency)
	}
	if s.ScaleConcurrencyTarget == s.ScaleConcurrency {
		s.ScaleConcurrencyTarget = 0 // the default: follows scale_concurrency
	}
	if in.RunArguments != nil {
		s.RunArguments = in.RunArguments
	}
	if in.RunCommands != nil {
		s.RunCommands = in.RunCommands
	}
	if in.ProbeReadiness != nil {
		p := core.Probe(*in.ProbeReadiness)
		s.ProbeReadiness = &p
	}
	if in.ProbeLiveness != nil {
		p := core.Probe(*in.ProbeLiveness)
		s.ProbeLiveness = &p
	}
	for _, e := range in.RunEnvVariables {
		if e.Type == "" {
			e.Type = core.EnvLiteral
		}
		s.RunEnvVariables = append(s.RunEnvVariables, core.EnvVar(e))
	}
	for _, m := range in.RunVolumeMounts {
		s.RunVolumeMounts = append(s.RunVolumeMounts, core.VolumeMount(m))
	}
	return s, core.ValidateAppSpec(s)
}

func (a *API) platform() core.Platform {
	return core.Platform{Region: a.cfg.Region, Domain: a.cfg.Domain, BaseURL: a.cfg.BaseURL}
}

func apiEnv(vars []core.EnvVar) []api.EnvVar {
	out := make([]api.EnvVar, 0, len(vars))
	for _, e := range vars {
		out = append(out, api.EnvVar(e))
	}
	return out
}

// revisionsByApp reads a project's revisions, by app, oldest first.
func (a *API) revisionsByApp(r *http.Request, project string) (map[string][]core.Revision, error) {
	out := map[string][]core.Revision{}
	for d, err := range store.All[core.Revision](r.Context(), a.cfg.Store, project, core.KindRevision) {
		if err != nil {
			return nil, err
		}
		out[d.Value.AppName] = append(out[d.Value.AppName], d.Value)
	}
	for _, revs := range out {
		slices.SortFunc(revs, func(x, y core.Revision) int { return x.Generation - y.Generation })
	}
	return out, nil
}

func (a *API) appView(r *http.Request, p core.Project, rec core.Record, app core.App, revs []core.Revision) api.App {
	var latest, ready *core.Revision
	for i := range revs {
		if revs[i].Generation == app.Generation {
			latest = &revs[i]
		}
		if revs[i].Status == core.RevisionReady {
			ready = &revs[i]
		}
	}
	status, reason := core.AppStatus(latest, ready)
	out := api.App{
		CreatedAt: rfc3339(app.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/apps/" + app.Name,
		ID: app.ID, Name: app.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeApp,
		ComputedEnvVariables: apiEnv(core.AppEnv(a.platform(), p, app.Name, core.RevisionName(app.Name, app.Generation), app.ImagePort)),
		EndpointInternal:     "http://" + app.Name + "." + p.Subdomain + ".svc",
		Status:               status, StatusDetails: api.AppStatusDetails{LatestCreatedRevision: core.RevisionName(app.Name, app.Generation), Reason: reason},
		AppSpec: toAPIAppSpec(app.AppSpec),
	}
	if ready != nil {
		out.StatusDetails.LatestReadyRevision = ready.Name
	}
	if app.ManagedDomainMappings != core.VisibilityProject {
		out.Endpoint = "http://" + core.AppHost(app.Name, p, a.cfg.Domain) + a.cfg.RouterPort
	}
	return out
}

func (a *API) createApp(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.AppPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	if err := core.ValidateAppName(in.Name); err != nil {
		return err
	}
	spec, err := appSpecFrom(in.AppSpec)
	if err != nil {
		return err
	}
	if err := a.checkImage(spec.ImageReference); err != nil {
		return err
	}
	if err := a.hostTaken(r, p.ID, core.KindFunction, in.Name); err != nil {
		return err
	}
	app := core.App{ID: uuid.NewString(), Name: in.Name, CreatedAt: a.cfg.Now().UTC(), Generation: 1, AppSpec: spec}
	b, _ := json.Marshal(app)
	rec, err := a.cfg.Store.Create(r.Context(), core.Ref{Project: p.ID, Kind: core.KindApp, Name: app.Name}, b, a.cfg.Quotas.Apps)
	if err != nil {
		return err
	}
	return a.writeApp(w, r, http.StatusCreated, p, rec, app)
}

func (a *API) writeApp(w http.ResponseWriter, r *http.Request, code int, p core.Project, rec core.Record, app core.App) error {
	revs, err := a.revisionsByApp(r, p.ID)
	if err != nil {
		return err
	}
	setETag(w, rec.Version)
	writeJSON(w, code, a.appView(r, p, rec, app, revs[app.Name]))
	return nil
}

func (a *API) getApp(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rec, app, err := loadRecord[core.App](a, r, core.Ref{Project: p.ID, Kind: core.KindApp, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	return a.writeApp(w, r, http.StatusOK, p, rec, app)
}

func (a *API) listApps(w http.ResponseWriter, r *http.Request) error {
	var revs map[string][]core.Revision // read once for the whole page
	return listRecords(a, w, r, core.KindApp, func(p core.Project, rec core.Record, l *api.AppList) (bool, error) {
		app, err := unmarshalRecord[core.App](rec)
		if err != nil {
			return false, err
		}
		if revs == nil {
			if revs, err = a.revisionsByApp(r, p.ID); err != nil {
				return false, err
			}
		}
		l.Apps = append(l.Apps, a.appView(r, p, rec, app, revs[app.Name]))
		return true, nil
	}, func(l *api.AppList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Apps == nil {
			l.Apps = []api.App{}
		}
	})
}

// updateApp applies an RFC 7386 merge patch to an app. Every update makes a
// new revision, even one that changes nothing, as in Code Engine.
func (a *API) updateApp(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindApp, Name: r.PathValue("name")}
	_, app, err := loadRecord[core.App](a, r, ref)
	if err != nil {
		return err
	}
	cur := toAPIAppSpec(app.AppSpec)
	if app.ScaleConcurrencyTarget == 0 {
		cur.ScaleConcurrencyTarget = nil // keep following scale_concurrency
	}
	in, err := applyPatch[api.AppSpec](cur, patch)
	if err != nil {
		return err
	}
	if app.AppSpec, err = appSpecFrom(in); err != nil {
		return err
	}
	if err := a.checkImage(app.ImageReference); err != nil {
		return err
	}
	app.Generation++
	b, _ := json.Marshal(app)
	rec, err := a.cfg.Store.Replace(r.Context(), ref, b, version)
	if err != nil {
		return err
	}
	return a.writeApp(w, r, http.StatusOK, p, rec, app)
}

func (a *API) deleteApp(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindApp, Name: name}); err != nil {
		return err
	}
	revs, err := a.revisionsByApp(r, p.ID)
	if err != nil {
		return err
	}
	for _, rev := range revs[name] {
		if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindRevision, Name: rev.Name}); err != nil && !isNotFound(err) {
			return err
		}
	}
	if err := a.unbindAll(r, p.ID, core.BindingComponent{Name: name, ResourceType: "app_v2"}); err != nil {
		return err
	}
	if err := a.unmapAll(r, p.ID, core.DomainComponent{Name: name, ResourceType: "app_v2"}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (a *API) revisionView(r *http.Request, p core.Project, rev core.Revision) api.AppRevision {
	actual := 0
	if a.cfg.Apps != nil {
		for _, in := range a.cfg.Apps.Instances(p.ID, rev.AppName) {
			if in.Revision == rev.Name && in.Ready {
				actual++
			}
		}
	}
	return api.AppRevision{
		AppName: rev.AppName, CreatedAt: rfc3339(rev.CreatedAt), ID: rev.ID, Name: rev.Name, ProjectID: p.ID, Region: a.cfg.Region,
		Href:         a.linkBase + "/v2/projects/" + p.ID + "/apps/" + rev.AppName + "/revisions/" + rev.Name,
		ResourceType: api.ResourceTypeAppRevision, ImageDigest: rev.ImageDigest, Status: string(rev.Status),
		ComputedEnvVariables: apiEnv(core.AppEnv(a.platform(), p, rev.AppName, rev.Name, rev.ImagePort)),
		StatusDetails:        api.AppRevisionStatusDetails{ActualInstances: actual, Reason: rev.Reason, Message: rev.Message},
		AppSpec:              toAPIAppSpec(rev.AppSpec),
	}
}

// appOf checks that the app of the path exists and returns its name.
func (a *API) appOf(r *http.Request, p core.Project) (core.App, error) {
	_, app, err := loadRecord[core.App](a, r, core.Ref{Project: p.ID, Kind: core.KindApp, Name: r.PathValue("app")})
	return app, err
}

func (a *API) listRevisions(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	if _, err := a.appOf(r, p); err != nil {
		return err
	}
	app := r.PathValue("app")
	return listRecords(a, w, r, core.KindRevision, func(p core.Project, rec core.Record, l *api.AppRevisionList) (bool, error) {
		rev, err := unmarshalRecord[core.Revision](rec)
		if err != nil || rev.AppName != app {
			return false, err
		}
		l.Revisions = append(l.Revisions, a.revisionView(r, p, rev))
		return true, nil
	}, func(l *api.AppRevisionList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Revisions == nil {
			l.Revisions = []api.AppRevision{}
		}
	})
}

// loadRevision reads the revision of the path, which must belong to the app
// of the path.
func (a *API) loadRevision(r *http.Request, p core.Project) (core.Revision, error) {
	_, rev, err := loadRecord[core.Revision](a, r, core.Ref{Project: p.ID, Kind: core.KindRevision, Name: r.PathValue("name")})
	if err == nil && rev.AppName != r.PathValue("app") {
		return rev, fmt.Errorf("revision %q of app %q: %w", r.PathValue("name"), r.PathValue("app"), core.ErrNotFound)
	}
	return rev, err
}

func (a *API) getRevision(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	rev, err := a.loadRevision(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.revisionView(r, p, rev))
	return nil
}

func (a *API) deleteRevision(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	app, err := a.appOf(r, p)
	if err != nil {
		return err
	}
	rev, err := a.loadRevision(r, p)
	if err != nil {
		return err
	}
	if rev.Generation == app.Generation {
		return core.Invalid("name", "revision %s is the app's latest; update or delete the app instead", rev.Name)
	}
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindRevision, Name: rev.Name}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// appMetrics serves an app's load over the last hour (coligo's addition):
// its ready instances and requests per second, one point per sample.
func (a *API) appMetrics(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	app, err := a.appOf(r, p)
	if err != nil {
		return err
	}
	out := api.AppMetrics{Points: []api.AppMetricsPoint{}}
	if h := a.cfg.AppHistory; h != nil {
		out.IntervalSeconds = h.Every().Seconds()
		for _, pt := range h.Points(p.ID, app.Name) {
			out.Points = append(out.Points, api.AppMetricsPoint{Time: pt.At.UTC().Format(time.RFC3339Nano), Instances: pt.Instances,
				RequestsPerSecond: math.Round(pt.RequestsPerSecond*100) / 100})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) listInstances(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	app, err := a.appOf(r, p)
	if err != nil {
		return err
	}
	pg, err := parsePage(r.URL.Query())
	if err != nil {
		return err
	}
	out := api.AppInstanceList{Instances: []api.AppInstance{}, Limit: pg.limit}
	var all []core.AppInstance
	if a.cfg.Apps != nil {
		all = a.cfg.Apps.Instances(p.ID, app.Name)
	}
	next := ""
	for _, in := range all {
		if in.Name <= pg.start && pg.start != "" {
			continue
		}
		if len(out.Instances) == pg.limit {
			next = out.Instances[len(out.Instances)-1].Name
			break
		}
		st := api.ContainerState{ContainerStatus: "running"}
		if in.Status == core.InstancePending {
			st.ContainerStatus = "pending"
		}
		if !in.StartedAt.IsZero() {
			st.StartedAt = rfc3339(in.StartedAt)
		}
		out.Instances = append(out.Instances, api.AppInstance{
			AppName: app.Name, Name: in.Name, ID: in.Name, RevisionName: in.Revision, ProjectID: p.ID, Region: a.cfg.Region,
			Href:         a.linkBase + "/v2/projects/" + p.ID + "/apps/" + app.Name + "/instances/" + url.PathEscape(in.Name),
			ResourceType: api.ResourceTypeAppInstance, CreatedAt: rfc3339(in.StartedAt), Status: in.Status,
			ScaleCPULimit: app.ScaleCPULimit, ScaleMemoryLimit: app.ScaleMemoryLimit, ScaleEphemeralStorageLimit: app.ScaleEphemeralStorageLimit,
			StatusDetails: api.AppInstanceStatusDetails{UserContainer: api.ContainerStatus{CurrentState: st}, Ready: in.Ready},
		})
	}
	out.First, out.Next = a.pageRefs(r, pg.limit, next)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// appLogs writes the logs of one instance (?instance=) or of all the app's
// instances, each under a header.
func (a *API) appLogs(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	if a.cfg.Logs == nil || a.cfg.Apps == nil {
		return fmt.Errorf("no engine is configured: %w", core.ErrUnavailable)
	}
	app, err := a.appOf(r, p)
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("instance")
	var ids []string
	for _, in := range a.cfg.Apps.Instances(p.ID, app.Name) {
		ids = append(ids, in.Name)
	}
	if want != "" && !slices.Contains(ids, want) {
		return core.Invalid("instance", "%q is not an instance of app %s", clipTag(want), app.Name)
	}
	return a.instanceLogs(w, r, p.ID, ids, want, nil)
}

// instanceLogs writes the logs of one instance (want), or of all of ids,
// each under a header, after ended (what is kept of instances gone).
func (a *API) instanceLogs(w http.ResponseWriter, r *http.Request, project string, ids []string, want string, ended []byte) error {
	opts, err := logOptions(r, want != "")
	if err != nil {
		return err
	}
	release, err := a.stream(w, r, opts.Follow)
	if err != nil {
		return err
	}
	defer release()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fw := flushWriter{w}
	if want == "" {
		fw.Write(ended)
	}
	for _, id := range ids {
		if want != "" && id != want {
			continue
		}
		if want == "" {
			fmt.Fprintf(fw, "==> %s <==\n", id)
		}
		if err := a.cfg.Logs.Logs(r.Context(), project, id, fw, opts); err != nil && !isNotFound(err) {
			return err
		}
	}
	return nil
}

// checkImage refuses an image_reference whose registry is a literal address
// of this host or the link-local range (or localhost), unless the operator
// allowed it: the engine would connect there on the user's behalf. A name
// is checked again where the engine dials it.
func (a *API) checkImage(ref string) error { return a.checkRegistry("image_reference", ref) }

// checkRegistry is checkImage for any field that names an image.
func (a *API) checkRegistry(field, ref string) error {
	// As Docker reads a reference: the part before the first slash names a
	// registry when it has a dot or a colon or is localhost.
	host, _, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(host, ".:[") && host != "localhost" {
		return nil // the default registry
	}
	if err := a.cfg.Registries.CheckHost(host); err != nil {
		return core.Invalid(field, "names a registry on this host or a link-local address, which coligo does not pull from (an operator can allow one with --insecure-registry)")
	}
	return nil
}

// maxLogTail bounds ?tail=: more lines than a log file holds.
const maxLogTail = 1_000_000

// logOptions reads a log request's options: ?follow=true (only where one
// instance is read: one), ?tail=N (the last N lines of each instance; -1,
// the default, all), ?since= (a duration back from now, "10m", or an
// RFC 3339 time), ?timestamps=true (each line starts with its time).
func logOptions(r *http.Request, one bool) (engine.LogOptions, error) {
	q := r.URL.Query()
	var opts engine.LogOptions
	for _, name := range []string{"follow", "timestamps"} {
		switch v := q.Get(name); v {
		case "", "false":
		case "true":
			if name == "follow" {
				opts.Follow = one
			} else {
				opts.Timestamps = true
			}
		default:
			return opts, core.Invalid(name, "must be true or false, got %q", clipTag(v))
		}
	}
	if s := q.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n == 0 || n < -1 || n > maxLogTail {
			return opts, core.Invalid("tail", "must be a number of lines from 1 to %d, or -1 for all, got %q", maxLogTail, clipTag(s))
		}
		opts.Tail = n
	}
	if s := q.Get("since"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			opts.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, s); err == nil {
			opts.Since = t
		} else {
			return opts, core.Invalid("since", "must be a positive duration (10m, 2h) or an RFC 3339 time, got %q", clipTag(s))
		}
	}
	return opts, nil
}
