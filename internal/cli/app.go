package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

// appFlags are the flags of app create and app update.
type appFlags struct {
	image, registrySecret, port, cpu, memory, ephemeral, visibility, httpOption             string
	minScale, maxScale, concurrency, concurrencyTarget, scaleDownDelay, requestTimeout, uid int
	env, envFromSecret, envFromConfigMap, command, argument                                 []string
	mounts                                                                                  mountFlags
	probeReady, probeLive                                                                   []string
	wait, noWait                                                                            bool
	waitTimeout                                                                             time.Duration
}

func (f *appFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.image, "image", "i", "", "image reference, e.g. registry.example.com/ns/app:1")
	fs.StringVar(&f.registrySecret, "registry-secret", "", "registry secret to pull the image with")
	fs.StringVarP(&f.port, "port", "p", "", "[NAME:]PORT the app listens on; NAME http1 (default) or h2c (default 8080)")
	fs.IntVar(&f.minScale, "min-scale", 0, "instances at least (default 0: scale to zero)")
	fs.IntVar(&f.maxScale, "max-scale", 0, "instances at most (default 10; 0 means only the project's limit)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "requests in flight per instance at most (default 100)")
	fs.IntVar(&f.concurrencyTarget, "concurrency-target", 0, "requests in flight per instance to scale at (default: --concurrency)")
	fs.StringVar(&f.cpu, "cpu", "", "vCPU per instance (default 1)")
	fs.StringVar(&f.memory, "memory", "", "memory per instance, e.g. 4G (default 4G)")
	fs.StringVar(&f.ephemeral, "ephemeral-storage", "", "ephemeral storage per instance (default 400M)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "NAME=VALUE (repeatable)")
	fs.StringArrayVar(&f.envFromSecret, "env-from-secret", nil, "SECRET, PREFIX=SECRET, SECRET:KEY1,KEY2 or SECRET:NAME=KEY (repeatable)")
	fs.StringArrayVar(&f.envFromConfigMap, "env-from-configmap", nil, "like --env-from-secret, for a config map (repeatable)")
	f.mounts.add(fs)
	fs.IntVar(&f.scaleDownDelay, "scale-down-delay", 0, "seconds lower load must last before instances are removed")
	fs.IntVarP(&f.requestTimeout, "request-timeout", "t", 0, "seconds a request may take (default 300, at most 600)")
	fs.StringVarP(&f.visibility, "visibility", "v", "", "public (default) or project: reachable only from the project's containers")
	fs.StringVar(&f.httpOption, "http-option", "", "enabled (default): the public endpoint serves plain HTTP; redirected: it redirects plain HTTP to HTTPS")
	fs.StringArrayVar(&f.probeReady, "probe-ready", nil, "readiness probe as KEY=VALUE (type, port, path, interval, initial-delay, timeout, failure-threshold)")
	fs.StringArrayVar(&f.probeLive, "probe-live", nil, "liveness probe as KEY=VALUE, like --probe-ready")
	fs.StringArrayVarP(&f.command, "command", "c", nil, "command replacing the image's entrypoint (repeatable)")
	fs.StringArrayVarP(&f.argument, "argument", "a", nil, "argument (repeatable)")
	fs.IntVarP(&f.uid, "user", "u", 0, "user id the process runs as")
	fs.BoolVarP(&f.wait, "wait", "w", true, "wait until the app is ready, showing progress, then print its URL")
	fs.BoolVar(&f.noWait, "no-wait", false, "return at once (same as --wait=false)")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", 600*time.Second, "how long --wait waits")
}

// spec turns the flags that were given into the fields of a prototype or patch.
func (f *appFlags) spec(cmd *cobra.Command) (api.AppSpec, error) {
	s := api.AppSpec{ImageReference: f.image, ImageSecret: f.registrySecret, ScaleCPULimit: f.cpu, ScaleMemoryLimit: f.memory,
		ScaleEphemeralStorageLimit: f.ephemeral, RunCommands: f.command, RunArguments: f.argument}
	changed := cmd.Flags().Changed
	for flag, dst := range map[string]**int{"min-scale": &s.ScaleMinInstances, "max-scale": &s.ScaleMaxInstances,
		"concurrency": &s.ScaleConcurrency, "concurrency-target": &s.ScaleConcurrencyTarget, "scale-down-delay": &s.ScaleDownDelay,
		"request-timeout": &s.ScaleRequestTimeout, "user": &s.RunAsUser} {
		if changed(flag) {
			v, _ := cmd.Flags().GetInt(flag)
			*dst = &v
		}
	}
	if f.port != "" {
		name, num, ok := strings.Cut(f.port, ":")
		if !ok {
			name, num = "", f.port
		}
		n, err := strconv.Atoi(num)
		if err != nil || (name != "" && name != "http1" && name != "h2c") {
			return s, fmt.Errorf("--port wants [http1:|h2c:]PORT, got %q", f.port)
		}
		s.ImagePort, s.ImagePortName = &n, name
	}
	s.HTTPOption = f.httpOption
	var err error
	if s.ManagedDomainMappings, err = visibility(f.visibility); err != nil {
		return s, err
	}
	if s.RunEnvVariables, err = envVars(f.env, f.envFromSecret, f.envFromConfigMap); err != nil {
		return s, err
	}
	s.RunComputeResourceTokenEnabled = f.mounts.tokenEnabled(cmd)
	if s.RunVolumeMounts, err = f.mounts.volumeMounts(); err != nil {
		return s, err
	}
	if s.ProbeReadiness, err = probe("--probe-ready", f.probeReady); err != nil {
		return s, err
	}
	if s.ProbeLiveness, err = probe("--probe-live", f.probeLive); err != nil {
		return s, err
	}
	return s, nil
}

// probe parses KEY=VALUE pairs (repeatable or comma-separated) into a probe.
func probe(flag string, pairs []string) (*api.Probe, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	p := &api.Probe{}
	for _, pair := range pairs {
		for _, kv := range strings.Split(pair, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("%s wants KEY=VALUE, got %q", flag, kv)
			}
			if k == "type" {
				p.Type = v
				continue
			}
			if k == "path" {
				p.Path = v
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s %s wants a number, got %q", flag, k, v)
			}
			switch k {
			case "port":
				p.Port = n
			case "interval":
				p.Interval = n
			case "initial-delay":
				p.InitialDelay = n
			case "timeout":
				p.Timeout = n
			case "failure-threshold":
				p.FailureThreshold = n
			default:
				return nil, fmt.Errorf("%s: unknown key %q (type, port, path, interval, initial-delay, timeout, failure-threshold)", flag, k)
			}
		}
	}
	if p.Type == "" {
		return nil, fmt.Errorf("%s needs type=tcp or type=http", flag)
	}
	return p, nil
}

func newAppCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("app", []string{"application"}, "Manage apps (HTTP services that scale with their requests) of the selected project")
	cmd.AddCommand(newAppCreate(e), newAppUpdate(e), newAppGet(e), newAppList(e), newAppLogs(e), newAppEvents(e), newAppRestart(e),
		newBindCmd(e, "app"), newUnbindCmd(e, "app"), newDeleteCmd(e, "app", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteApp(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printApp(a *api.App, headline string) error {
	return e.printOne(a, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nStatus:\t%s (%s)\nURL:\t%s\nProject URL:\t%s\nImage:\t%s\nLatest Created Revision:\t%s\nLatest Ready Revision:\t%s\n",
			a.Name, a.ID, a.Status, a.StatusDetails.Reason, a.Endpoint, a.EndpointInternal, a.ImageReference,
			a.StatusDetails.LatestCreatedRevision, a.StatusDetails.LatestReadyRevision)
		fmt.Fprintf(w, "Port:\t%d\nScale:\t%d to %d instances, concurrency %d (target %d)\nCPU:\t%s\nMemory:\t%s\nRequest Timeout:\t%ds\n",
			deref(a.ImagePort), deref(a.ScaleMinInstances), deref(a.ScaleMaxInstances), deref(a.ScaleConcurrency), deref(a.ScaleConcurrencyTarget),
			a.ScaleCPULimit, a.ScaleMemoryLimit, deref(a.ScaleRequestTimeout))
		if a.BuildRun != "" {
			fmt.Fprintf(w, "Build Run:\t%s\n", a.BuildRun)
		}
		printRunExtras(w, a.RunComputeResourceTokenEnabled, a.RunVolumeMounts)
		printEnv(w, append(a.ComputedEnvVariables, a.RunEnvVariables...))
	})
}

// printRunExtras prints, as Code Engine's CLI does, whether instances get
// a compute resource token ("Trusted profiles") and what they mount.
func printRunExtras(w io.Writer, token *bool, mounts []api.VolumeMount) {
	state := "disabled"
	if token != nil && *token {
		state = "enabled"
	}
	fmt.Fprintf(w, "Trusted Profiles:\t%s\n", state)
	if len(mounts) == 0 {
		return
	}
	fmt.Fprintln(w, "Volume Mounts:")
	for _, m := range mounts {
		what := m.Reference
		if m.SubPath != "" {
			what += ":" + m.SubPath
		}
		mode := "read-only"
		if m.Type == "persistent_data_store" && m.ReadOnly != nil && !*m.ReadOnly {
			mode = "read-write"
		}
		fmt.Fprintf(w, "  %s\t%s %s (%s)\n", m.MountPath, strings.ReplaceAll(m.Type, "_", " "), what, mode)
	}
}

// printEnv prints a workload's environment: literals with their values,
// references by what they reference.
func printEnv(w io.Writer, vars []api.EnvVar) {
	fmt.Fprintln(w, "Environment:")
	for _, v := range vars {
		switch v.Type {
		case "literal", "":
			fmt.Fprintf(w, "  %s\t%s\n", v.Name, v.Value)
		case "secret_full_reference", "config_map_full_reference":
			fmt.Fprintf(w, "  %s*\tevery key of %s %s\n", v.Prefix, strings.TrimSuffix(v.Type, "_full_reference"), v.Reference)
		default:
			fmt.Fprintf(w, "  %s\tkey %s of %s %s\n", v.Name, v.Key, strings.TrimSuffix(v.Type, "_key_reference"), v.Reference)
		}
	}
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// waitReady follows an app until its latest revision is ready (or failed),
// printing a progress line, then prints its URL.
func (e *env) waitReady(cmd *cobra.Command, c *api.Client, project string, a *api.App, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tty := isTerminal(e.out)
	last := ""
	want := a.StatusDetails.LatestCreatedRevision
	for {
		done := a.Status == "ready" || a.Status == "failed" || (a.Status == "warning" && want != "")
		ready, wanted := 0, 0
		if ins, err := c.AllAppInstances(cmd.Context(), project, a.Name); err == nil {
			for _, in := range ins {
				if in.RevisionName == a.StatusDetails.LatestCreatedRevision {
					wanted++
					if in.StatusDetails.Ready {
						ready++
					}
				}
			}
		}
		line := fmt.Sprintf("revision %s: %s, %d of %d instances ready", a.StatusDetails.LatestCreatedRevision, a.Status, ready, wanted)
		if line != last {
			if tty {
				fmt.Fprintf(e.out, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(e.out, line)
			}
			last = line
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("app %s is still %s after %s", a.Name, a.Status, timeout)
		}
		time.Sleep(250 * time.Millisecond)
		var err error
		if a, err = c.GetApp(cmd.Context(), project, a.Name); err != nil {
			return err
		}
	}
	if tty {
		fmt.Fprintln(e.out)
	}
	if a.Status != "ready" {
		reason := a.StatusDetails.Reason
		if rev, err := c.GetAppRevision(cmd.Context(), project, a.Name, a.StatusDetails.LatestCreatedRevision); err == nil {
			reason = rev.StatusDetails.Reason
			if rev.StatusDetails.Message != "" {
				reason += ": " + rev.StatusDetails.Message
			}
		}
		return fmt.Errorf("app %s: revision %s failed: %s", a.Name, a.StatusDetails.LatestCreatedRevision, reason)
	}
	url := a.Endpoint
	if url == "" {
		url = a.EndpointInternal
	}
	_, err := fmt.Fprintln(e.out, url)
	return err
}

func newAppCreate(e *env) *cobra.Command {
	var name string
	var f appFlags
	var sb sourceBuild
	cmd := &cobra.Command{
		Use: "create", Short: "Create an app", Args: cobra.NoArgs,
		Example: "  coligo app create --name hello --image registry.example.com/hello:1 --registry-secret regcred --max-scale 5",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.spec(cmd)
			if err != nil {
				return err
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			if err := sb.build(cmd, e, c, project, name, spec.ImageReference, spec.ImageSecret, &spec.ImageReference, &spec.BuildRun); err != nil {
				return err
			}
			a, err := c.CreateApp(cmd.Context(), project, api.AppPrototype{Name: name, AppSpec: spec})
			if err != nil {
				return err
			}
			if !f.wait || f.noWait || e.output == "json" || e.output == "yaml" {
				return e.printApp(a, "Created app "+a.Name)
			}
			fmt.Fprintf(e.out, "Created app %s\n", a.Name)
			return e.waitReady(cmd, c, project, a, f.waitTimeout)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "app name")
	f.add(cmd)
	sb.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newAppUpdate(e *env) *cobra.Command {
	var name string
	var f appFlags
	var sb sourceBuild
	var envRm []string
	cmd := &cobra.Command{
		Use: "update", Short: "Change an app: a new revision gets the traffic once it is ready", Args: cobra.NoArgs,
		Example: "  coligo app update --name hello --image registry.example.com/hello:2\n  coligo app update --name hello --env MODE=fast --env-rm OLD",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.spec(cmd)
			if err != nil {
				return err
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			cur, err := c.GetApp(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			if err := sb.build(cmd, e, c, project, name, cmp.Or(spec.ImageReference, cur.ImageReference), cmp.Or(spec.ImageSecret, cur.ImageSecret), &spec.ImageReference, &spec.BuildRun); err != nil {
				return err
			}
			patch, err := envPatch(spec, cur.RunEnvVariables, spec.RunEnvVariables, envRm)
			if err != nil {
				return err
			}
			a, err := c.UpdateApp(cmd.Context(), project, name, cur.EntityTag, patch)
			if err != nil {
				return err
			}
			if !f.wait || f.noWait || e.output == "json" || e.output == "yaml" {
				return e.printApp(a, "Updated app "+a.Name)
			}
			fmt.Fprintf(e.out, "Updated app %s\n", a.Name)
			return e.waitReady(cmd, c, project, a, f.waitTimeout)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "app name")
	cmd.Flags().StringArrayVar(&envRm, "env-rm", nil, "remove a literal variable (repeatable)")
	f.add(cmd)
	sb.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

// envPatch is the merge patch of spec's given fields, with
// run_env_variables merged from cur, set and rm when either was given (an
// empty list when every variable went: omitted, it would change nothing).
func envPatch(spec any, cur, set []api.EnvVar, rm []string) (map[string]any, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var patch map[string]any
	if err := json.Unmarshal(b, &patch); err != nil {
		return nil, err
	}
	if set != nil || len(rm) > 0 {
		vars := mergeEnv(cur, set, rm)
		if vars == nil {
			vars = []api.EnvVar{}
		}
		patch["run_env_variables"] = vars
	}
	return patch, nil
}

// visibility reads --visibility as managed_domain_mappings ("" when not
// given).
func visibility(v string) (string, error) {
	switch v {
	case "":
		return "", nil
	case "public":
		return "local_public", nil
	case "project":
		return "local", nil
	case "private":
		return "local_private", nil
	}
	return "", fmt.Errorf("--visibility must be public, private or project, got %q", v)
}

// mergeEnv sets or replaces variables by name and removes those named in rm.
func mergeEnv(cur, set []api.EnvVar, rm []string) []api.EnvVar {
	var out []api.EnvVar
	for _, v := range cur {
		drop := false
		for _, s := range set {
			if v.Type == s.Type && v.Name == s.Name && v.Reference == s.Reference && v.Key == s.Key {
				drop = true
			}
		}
		for _, r := range rm {
			if v.Name == r {
				drop = true
			}
		}
		if !drop {
			out = append(out, v)
		}
	}
	return append(out, set...)
}

func newAppGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show an app (-o url prints its URL)", Args: cobra.NoArgs,
		Example: "  coligo app get --name hello\n  curl $(coligo app get --name hello -o url)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			a, err := c.GetApp(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			switch e.output {
			case "url":
				if a.Endpoint == "" {
					return errors.New("the app is visible in its project only; -o project-url prints its project URL")
				}
				_, err := fmt.Fprintln(e.out, a.Endpoint)
				return err
			case "project-url":
				_, err := fmt.Fprintln(e.out, a.EndpointInternal)
				return err
			}
			return e.printApp(a, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "app name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newAppList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List apps", Args: cobra.NoArgs, Example: "  coligo app list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			apps, err := c.AllApps(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(apps, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tStatus\tURL\tLatest\tAge\tReason")
				for _, a := range apps {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Status, a.Endpoint, a.StatusDetails.LatestCreatedRevision, age(a.CreatedAt), a.StatusDetails.Reason)
				}
			})
		},
	}
}

func newAppLogs(e *env) *cobra.Command {
	return newLogsCmd(e, "app", "Print the logs of an app's instances",
		"  coligo app logs --name hello\n  coligo app logs --name hello --instance hello-00001-abcde -f\n  coligo app logs --name hello --tail 20 --since 10m --timestamps",
		(*api.Client).AppLogs)
}

// newLogsCmd is the logs command of apps and functions: all instances, or
// one (which --follow may follow).
func newLogsCmd(e *env, kind, short, example string,
	logs func(c *api.Client, ctx context.Context, project, name, instance string, opts api.LogOptions, w io.Writer) error) *cobra.Command {
	var name, instance string
	var opts api.LogOptions
	cmd := &cobra.Command{
		Use: "logs", Short: short, Args: cobra.NoArgs, Example: example,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			if opts.Follow && instance == "" {
				return errors.New("--follow needs --instance")
			}
			return logs(c, cmd.Context(), project, name, instance, opts, e.out)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", kind+" name")
	cmd.Flags().StringVarP(&instance, "instance", "i", "", "one running instance (default: all)")
	logFlags(cmd, &opts, "with --instance")
	cmd.MarkFlagRequired("name")
	return cmd
}

// newAppEvents prints what is known of an app's revisions and instances.
func newAppEvents(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "events", Short: "Show the state of an app's revisions and instances", Args: cobra.NoArgs,
		Example: "  coligo app events --name hello",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			revs, err := c.AllAppRevisions(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			ins, err := c.AllAppInstances(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			type event struct{ At, Object, What string }
			var evs []event
			for _, r := range revs {
				what := r.Status + " (" + r.StatusDetails.Reason + ")"
				if r.StatusDetails.Message != "" {
					what += ": " + r.StatusDetails.Message
				}
				evs = append(evs, event{r.CreatedAt, "revision " + r.Name, what})
			}
			for _, in := range ins {
				what := in.Status
				if in.StatusDetails.Ready {
					what += ", ready"
				}
				evs = append(evs, event{in.CreatedAt, "instance " + in.Name, what})
			}
			return e.print(evs, func(w io.Writer) {
				fmt.Fprintln(w, "Since\tObject\tState")
				for _, ev := range evs {
					fmt.Fprintf(w, "%s\t%s\t%s\n", ev.At, ev.Object, ev.What)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "app name")
	cmd.MarkFlagRequired("name")
	return cmd
}

// newAppRestart replaces every instance: it makes a new revision of the same
// spec, which takes the traffic once ready while the old instances drain.
func newAppRestart(e *env) *cobra.Command {
	var name string
	var wait bool
	cmd := &cobra.Command{
		Use: "restart", Short: "Replace an app's instances without dropping requests", Args: cobra.NoArgs,
		Example: "  coligo app restart --name hello",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			cur, err := c.GetApp(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			a, err := c.UpdateApp(cmd.Context(), project, name, cur.EntityTag, map[string]any{})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "Restarting app %s as revision %s\n", a.Name, a.StatusDetails.LatestCreatedRevision)
			if !wait {
				return nil
			}
			return e.waitReady(cmd, c, project, a, 600*time.Second)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "app name")
	cmd.Flags().BoolVarP(&wait, "wait", "w", true, "wait until the new instances are ready")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newRevisionCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("revision", nil, "Inspect the revisions of an app")
	var app string
	list := &cobra.Command{
		Use: "list", Short: "List an app's revisions", Args: cobra.NoArgs, Example: "  coligo revision list --app hello",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			revs, err := c.AllAppRevisions(cmd.Context(), project, app)
			if err != nil {
				return err
			}
			return e.print(revs, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tStatus\tReason\tInstances\tImage\tAge")
				for _, r := range revs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Name, r.Status, r.StatusDetails.Reason, r.StatusDetails.ActualInstances, r.ImageDigest, age(r.CreatedAt))
				}
			})
		},
	}
	list.Flags().StringVar(&app, "app", "", "app name")
	list.MarkFlagRequired("app")
	var name string
	get := &cobra.Command{
		Use: "get", Short: "Show a revision", Args: cobra.NoArgs, Example: "  coligo revision get --name hello-00002",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			r, err := c.GetAppRevision(cmd.Context(), project, appOfRevision(name), name)
			if err != nil {
				return err
			}
			return e.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "Name:\t%s\nApp:\t%s\nStatus:\t%s (%s)\nMessage:\t%s\nImage:\t%s\nPinned Image:\t%s\nInstances:\t%d\n",
					r.Name, r.AppName, r.Status, r.StatusDetails.Reason, r.StatusDetails.Message, r.ImageReference, r.ImageDigest, r.StatusDetails.ActualInstances)
			})
		},
	}
	get.Flags().StringVarP(&name, "name", "n", "", "revision name, e.g. hello-00002")
	get.MarkFlagRequired("name")
	del := newDeleteCmd(e, "revision", func(c *api.Client, cmd *cobra.Command, project, name string) error {
		return c.DeleteAppRevision(cmd.Context(), project, appOfRevision(name), name)
	})
	cmd.AddCommand(list, get, del)
	return cmd
}

// appOfRevision is the app of a revision named <app>-NNNNN.
func appOfRevision(rev string) string {
	if i := strings.LastIndexByte(rev, '-'); i > 0 {
		return rev[:i]
	}
	return rev
}

// logFlags are the flags of the logs commands, as Code Engine's CLI names
// them (--ts for --timestamps), and --since.
func logFlags(cmd *cobra.Command, o *api.LogOptions, followNeeds string) {
	f := cmd.Flags()
	f.BoolVarP(&o.Follow, "follow", "f", false, "keep printing the instance's output as it comes ("+followNeeds+")")
	f.IntVarP(&o.Tail, "tail", "t", -1, "only the last N lines of each instance (-1: all)")
	f.StringVar(&o.Since, "since", "", "only lines since a duration ago (10m, 2h) or an RFC 3339 time")
	f.BoolVar(&o.Timestamps, "timestamps", false, "start each line with the time it was written")
	f.BoolVar(&o.Timestamps, "ts", false, "same as --timestamps")
	f.MarkHidden("ts")
}
