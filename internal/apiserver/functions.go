package apiserver

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

// FunctionObserver tells what the function controller knows of a
// function's instances.
type FunctionObserver interface {
	// Instances lists the ids of a function's running instances.
	Instances(project, function string) []string
	// EndedLogs is the last lines of its ended instances, in memory only.
	EndedLogs(project, function string) []byte
}

func toAPIFunctionSpec(s core.FunctionSpec) api.FunctionSpec {
	out := api.FunctionSpec{
		Runtime: s.Runtime, CodeReference: s.CodeReference, CodeBinary: &s.CodeBinary, CodeMain: s.CodeMain, CodeSecret: s.CodeSecret,
		ManagedDomainMappings: s.ManagedDomainMappings, RunEnvVariables: []api.EnvVar{},
		RunComputeResourceTokenEnabled: &s.RunComputeResourceTokenEnabled, ScaleConcurrency: &s.ScaleConcurrency,
		ScaleCPULimit: s.ScaleCPULimit, ScaleMemoryLimit: s.ScaleMemoryLimit, ScaleDownDelay: &s.ScaleDownDelay,
		ScaleMaxExecutionTime: &s.ScaleMaxExecutionTime,
	}
	for _, e := range s.RunEnvVariables {
		out.RunEnvVariables = append(out.RunEnvVariables, api.EnvVar(e))
	}
	return out
}

// functionSpecFrom builds a spec from a prototype (or a patched one): Code
// Engine's defaults for what is unset, then validation against this
// server's runtimes.
func (a *API) functionSpecFrom(in api.FunctionSpec) (core.FunctionSpec, error) {
	s := core.NewFunctionSpec()
	for dst, v := range map[*string]string{&s.Runtime: in.Runtime, &s.CodeReference: in.CodeReference, &s.CodeMain: in.CodeMain,
		&s.CodeSecret: in.CodeSecret, &s.ManagedDomainMappings: in.ManagedDomainMappings, &s.ScaleCPULimit: in.ScaleCPULimit,
		&s.ScaleMemoryLimit: in.ScaleMemoryLimit} {
		if v != "" {
			*dst = v
		}
	}
	for dst, v := range map[*int]*int{&s.ScaleConcurrency: in.ScaleConcurrency, &s.ScaleDownDelay: in.ScaleDownDelay,
		&s.ScaleMaxExecutionTime: in.ScaleMaxExecutionTime} {
		if v != nil {
			*dst = *v
		}
	}
	code, err := core.ParseCodeReference(s.CodeReference)
	if err != nil {
		return s, err
	}
	// code_binary is false for a data URL and always true for a bundle.
	s.CodeBinary = code.Bundle != ""
	if in.CodeBinary != nil && *in.CodeBinary != s.CodeBinary {
		return s, core.Invalid("code_binary", "is %v for this code_reference (true for a code bundle, false for inline code)", s.CodeBinary)
	}
	if in.RunComputeResourceTokenEnabled != nil && *in.RunComputeResourceTokenEnabled {
		return s, core.Invalid("run_compute_resource_token_enabled", "functions run on pre-warmed instances, which get no compute resource token on this server; apps, jobs and job runs do")
	}
	for _, e := range in.RunEnvVariables {
		if e.Type == "" {
			e.Type = core.EnvLiteral
		}
		s.RunEnvVariables = append(s.RunEnvVariables, core.EnvVar(e))
	}
	if len(a.cfg.FunctionRuntimes) == 0 {
		return s, core.Invalid("runtime", "this server runs no function runtimes (functions need the local engine and an interpreter on the host)")
	}
	known := func(id string) bool {
		return slices.ContainsFunc(a.cfg.FunctionRuntimes, func(r api.FunctionRuntime) bool { return r.ID == id })
	}
	if err := core.ValidateFunctionSpec(s, known); err != nil {
		return s, err
	}
	if code.Bundle != "" {
		// Stored as given but for the CLI's cr:// prefix.
		s.CodeReference = code.Bundle
		return s, a.checkRegistry("code_reference", code.Bundle)
	}
	return s, nil
}

func (a *API) functionView(p core.Project, rec core.Record, f core.Function) api.Function {
	out := api.Function{
		CreatedAt: rfc3339(f.CreatedAt), EntityTag: etag(rec.Version), Href: a.linkBase + "/v2/projects/" + p.ID + "/functions/" + f.Name,
		ID: f.ID, Name: f.Name, ProjectID: p.ID, Region: a.cfg.Region, ResourceType: api.ResourceTypeFunction,
		ComputedEnvVariables: apiEnv(core.FunctionEnv(a.platform(), p, f.Name)),
		EndpointInternal:     "http://" + f.Name + "." + p.Subdomain + ".function.svc",
		Status:               f.Status, StatusDetails: api.FunctionStatusDetails{Reason: f.Reason},
		FunctionSpec: toAPIFunctionSpec(f.Spec),
	}
	if f.Spec.ManagedDomainMappings != core.VisibilityProject {
		out.Endpoint = "http://" + core.AppHost(f.Name, p, a.cfg.Domain) + a.cfg.RouterPort
	}
	return out
}

func (a *API) listFunctionRuntimes(w http.ResponseWriter, r *http.Request) error {
	out := api.FunctionRuntimeList{FunctionRuntimes: a.cfg.FunctionRuntimes}
	if out.FunctionRuntimes == nil {
		out.FunctionRuntimes = []api.FunctionRuntime{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// hostTaken refuses a function name an app of the project has, and an app
// name a function has: both are served at <name>.<subdomain>.<domain>.
func (a *API) hostTaken(r *http.Request, project, kind, name string) error {
	_, err := a.cfg.Store.Get(r.Context(), core.Ref{Project: project, Kind: kind, Name: name})
	switch {
	case err == nil:
		what := map[string]string{core.KindApp: "an app", core.KindFunction: "a function"}[kind]
		return fmt.Errorf("%w: %s named %s is served at that host; apps and functions share their names", core.ErrExists, what, name)
	case isNotFound(err):
		return nil
	}
	return err
}

func (a *API) createFunction(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	var in api.FunctionPrototype
	if err := decode(r, &in); err != nil {
		return err
	}
	nameForAudit(r, in.Name)
	if err := core.ValidateFunctionName(in.Name); err != nil {
		return err
	}
	spec, err := a.functionSpecFrom(in.FunctionSpec)
	if err != nil {
		return err
	}
	if err := a.hostTaken(r, p.ID, core.KindApp, in.Name); err != nil {
		return err
	}
	f := core.Function{ID: uuid.NewString(), Name: in.Name, CreatedAt: a.cfg.Now().UTC(), Spec: spec, Generation: 1,
		Status: core.FunctionDeploying, Reason: core.FunctionDeploying}
	return createRecord(a, w, r, core.Ref{Project: p.ID, Kind: core.KindFunction, Name: f.Name}, f, core.MaxFunctionsPerProject, func(rec core.Record) any { return a.functionView(p, rec, f) })
}

func (a *API) getFunction(w http.ResponseWriter, r *http.Request) error {
	return getRecord(a, w, r, core.KindFunction, a.functionView)
}

func (a *API) listFunctions(w http.ResponseWriter, r *http.Request) error {
	return listRecords(a, w, r, core.KindFunction, func(p core.Project, rec core.Record, l *api.FunctionList) (bool, error) {
		f, err := unmarshalRecord[core.Function](rec)
		if err != nil {
			return false, err
		}
		l.Functions = append(l.Functions, a.functionView(p, rec, f))
		return true, nil
	}, func(l *api.FunctionList, limit int, first, next *api.PageRef) {
		l.Limit, l.First, l.Next = limit, first, next
		if l.Functions == nil {
			l.Functions = []api.Function{}
		}
	})
}

// updateFunction applies an RFC 7386 merge patch to a function; its new
// generation deploys as a new one did.
func (a *API) updateFunction(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	version, patch, err := readPatch(r)
	if err != nil {
		return err
	}
	ref := core.Ref{Project: p.ID, Kind: core.KindFunction, Name: r.PathValue("name")}
	_, f, err := loadRecord[core.Function](a, r, ref)
	if err != nil {
		return err
	}
	cur := toAPIFunctionSpec(f.Spec)
	cur.CodeBinary = nil // follows code_reference
	in, err := applyPatch[api.FunctionSpec](cur, patch)
	if err != nil {
		return err
	}
	if f.Spec, err = a.functionSpecFrom(in); err != nil {
		return err
	}
	f.Generation++
	f.Status, f.Reason = core.FunctionDeploying, core.FunctionDeploying
	f.CodePinned = "" // an update fetches the bundle's tag again
	return replaceRecord(a, w, r, ref, f, version, func(rec core.Record) any { return a.functionView(p, rec, f) })
}

// deleteFunction deletes a function and its domain mappings.
func (a *API) deleteFunction(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleWriter)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := a.cfg.Store.Delete(r.Context(), core.Ref{Project: p.ID, Kind: core.KindFunction, Name: name}); err != nil {
		return err
	}
	if err := a.unmapAll(r, p.ID, core.DomainComponent{Name: name, ResourceType: "function_v2"}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// functionLogs writes the last lines of a function's ended instances, then
// the logs of its running ones, each under a header; or, with ?instance=,
// one running instance's (which ?follow=true may follow).
func (a *API) functionLogs(w http.ResponseWriter, r *http.Request) error {
	p, err := a.activeProject(r, core.RoleReader)
	if err != nil {
		return err
	}
	if a.cfg.Logs == nil || a.cfg.Functions == nil {
		return fmt.Errorf("no function runs on this server: %w", core.ErrUnavailable)
	}
	_, f, err := loadRecord[core.Function](a, r, core.Ref{Project: p.ID, Kind: core.KindFunction, Name: r.PathValue("name")})
	if err != nil {
		return err
	}
	want := r.URL.Query().Get("instance")
	instances := a.cfg.Functions.Instances(p.ID, f.Name)
	if want != "" && !slices.Contains(instances, want) {
		return core.Invalid("instance", "%q is not a running instance of function %s", clipTag(want), f.Name)
	}
	return a.instanceLogs(w, r, p.ID, instances, want, a.cfg.Functions.EndedLogs(p.ID, f.Name))
}
