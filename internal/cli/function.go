package cli

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/function/bundle"
)

// functionFlags are the flags of function create and function update.
type functionFlags struct {
	runtime, inlineCode, main, cpu, memory, visibility string
	codeBundle, codeBundleSecret, buildSource          string
	concurrency, scaleDownDelay, maxExecutionTime      int
	env, envFromSecret, envFromConfigMap               []string
	wait, noWait                                       bool
	waitTimeout                                        time.Duration
}

func (f *functionFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.runtime, "runtime", "r", "", "runtime id (nodejs-20) or family (nodejs: its default); coligo function runtimes lists them")
	fs.StringVar(&f.inlineCode, "inline-code", "", "FILE holding the function's code (at most 100 KB once base64)")
	fs.StringVar(&f.codeBundle, "code-bundle", "", "IMAGE of a code bundle (files only; Node.js: package.json main, index.js or main.js; Python: __main__.py); with --build-source, where to push it")
	fs.StringVar(&f.codeBundleSecret, "code-bundle-secret", "", "registry SECRET of the project that pulls the code bundle")
	fs.StringVar(&f.buildSource, "build-source", "", "DIR packed into a code bundle (less .git and what its .ceignore names) and pushed to --code-bundle with your registry login (~/.docker/config.json)")
	fs.StringVar(&f.main, "main", "", "name of the function the code exports (default main)")
	fs.StringVar(&f.cpu, "cpu", "", "vCPU per instance: 0.25, 0.5 or 1 (default 1)")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory per instance: 1G with 0.25 vCPU, 2G with 0.5, 4G with 1 (default 4G)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "invocations one instance takes at once, Node.js only (default 1, at most 100)")
	fs.IntVar(&f.scaleDownDelay, "scale-down-delay", 0, "seconds an idle instance is kept after an invocation (default 1)")
	fs.IntVar(&f.maxExecutionTime, "max-execution-time", 0, "seconds an invocation may take before it gets 504 (default 60, at most 120)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "NAME=VALUE (repeatable)")
	fs.StringArrayVar(&f.envFromSecret, "env-from-secret", nil, "SECRET, PREFIX=SECRET, SECRET:KEY1,KEY2 or SECRET:NAME=KEY (repeatable)")
	fs.StringArrayVar(&f.envFromConfigMap, "env-from-configmap", nil, "like --env-from-secret, for a config map (repeatable)")
	fs.StringVarP(&f.visibility, "visibility", "v", "", "public (default) or project: invocable only from the project's containers")
	fs.BoolVarP(&f.wait, "wait", "w", true, "wait until the function is ready, then print its URL")
	fs.BoolVar(&f.noWait, "no-wait", false, "return at once (same as --wait=false)")
	fs.DurationVar(&f.waitTimeout, "wait-timeout", 600*time.Second, "how long --wait waits")
	// Code Engine's CLI's short names of the bundle flags.
	alias := map[string]string{"cb": "code-bundle", "cbs": "code-bundle-secret", "cs": "code-bundle-secret"}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := alias[name]; ok {
			name = long
		}
		return pflag.NormalizedName(name)
	})
	cmd.MarkFlagsMutuallyExclusive("inline-code", "code-bundle")
	cmd.MarkFlagsMutuallyExclusive("inline-code", "build-source")
}

// spec turns the flags that were given into the fields of a prototype or
// patch; a runtime family is resolved to its default runtime.
func (f *functionFlags) spec(cmd *cobra.Command, c *api.Client) (api.FunctionSpec, error) {
	s := api.FunctionSpec{CodeMain: f.main, ScaleCPULimit: f.cpu, ScaleMemoryLimit: f.memory}
	changed := cmd.Flags().Changed
	for flag, dst := range map[string]**int{"concurrency": &s.ScaleConcurrency, "scale-down-delay": &s.ScaleDownDelay,
		"max-execution-time": &s.ScaleMaxExecutionTime} {
		if changed(flag) {
			v, _ := cmd.Flags().GetInt(flag)
			*dst = &v
		}
	}
	if f.inlineCode != "" {
		b, err := os.ReadFile(f.inlineCode)
		if err != nil {
			return s, fmt.Errorf("--inline-code: %w", err)
		}
		s.CodeReference = "data:text/plain;base64," + base64.StdEncoding.EncodeToString(b)
	}
	switch {
	case f.buildSource != "" && f.codeBundle == "":
		return s, errors.New("--build-source needs --code-bundle: the image to push the packed directory to")
	case f.buildSource != "":
		pinned, err := pushBundle(cmd.Context(), f.buildSource, f.codeBundle, bundle.Bundle)
		if err != nil {
			return s, err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "pushed %s as %s\n", f.buildSource, pinned)
		s.CodeReference = pinned
	case f.codeBundle != "":
		s.CodeReference = f.codeBundle
	}
	s.CodeSecret = f.codeBundleSecret
	if f.runtime != "" {
		id, err := resolveRuntime(cmd, c, f.runtime)
		if err != nil {
			return s, err
		}
		s.Runtime = id
	}
	var err error
	if s.ManagedDomainMappings, err = visibility(f.visibility); err != nil {
		return s, err
	}
	s.RunEnvVariables, err = envVars(f.env, f.envFromSecret, f.envFromConfigMap)
	return s, err
}

// resolveRuntime takes a runtime id as it is and a family as its default.
func resolveRuntime(cmd *cobra.Command, c *api.Client, runtime string) (string, error) {
	l, err := c.ListFunctionRuntimes(cmd.Context())
	if err != nil {
		return "", err
	}
	for _, r := range l.FunctionRuntimes {
		if r.ID == runtime {
			return r.ID, nil
		}
	}
	for _, r := range l.FunctionRuntimes {
		if r.Family == runtime && r.Default {
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("--runtime %q is neither a runtime nor a family of this server; coligo function runtimes lists them", runtime)
}

func newFunctionCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("function", []string{"fn"}, "Manage functions (code snippets on managed runtimes, invoked by HTTP) of the selected project")
	cmd.AddCommand(newFunctionCreate(e), newFunctionUpdate(e), newFunctionGet(e), newFunctionList(e), newFunctionRuntimes(e),
		newLogsCmd(e, "function", "Print the last lines of a function's ended instances and the logs of its running ones",
			"  coligo function logs --name hello\n  coligo function logs --name hello --instance fn-abc123 -f", (*api.Client).FunctionLogs),
		newDeleteCmd(e, "function", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteFunction(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printFunction(f *api.Function, headline string) error {
	return e.printOne(f, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nStatus:\t%s (%s)\nURL:\t%s\nProject URL:\t%s\nRuntime:\t%s\nMain:\t%s\n",
			f.Name, f.ID, f.Status, f.StatusDetails.Reason, f.Endpoint, f.EndpointInternal, f.Runtime, f.CodeMain)
		if f.CodeBinary != nil && *f.CodeBinary {
			fmt.Fprintf(w, "Code Bundle:\t%s\nBundle Secret:\t%s\n", f.CodeReference, f.CodeSecret)
		}
		fmt.Fprintf(w, "CPU:\t%s\nMemory:\t%s\nConcurrency:\t%d\nMax Execution Time:\t%ds\nScale Down Delay:\t%ds\n",
			f.ScaleCPULimit, f.ScaleMemoryLimit, deref(f.ScaleConcurrency), deref(f.ScaleMaxExecutionTime), deref(f.ScaleDownDelay))
		printEnv(w, append(f.ComputedEnvVariables, f.RunEnvVariables...))
	})
}

// functionDone reports a created or updated function: printed as it is,
// or, with --wait, followed until it is ready and its URL printed.
func (e *env) functionDone(cmd *cobra.Command, c *api.Client, project string, fn *api.Function, f *functionFlags, verb string) error {
	if !f.wait || f.noWait || e.output == "json" || e.output == "yaml" {
		return e.printFunction(fn, verb+" function "+fn.Name)
	}
	fmt.Fprintf(e.out, "%s function %s\n", verb, fn.Name)
	return e.waitFunction(cmd, c, project, fn, f.waitTimeout)
}

// waitFunction follows a function until it is ready (or failed), then
// prints its URL.
func (e *env) waitFunction(cmd *cobra.Command, c *api.Client, project string, f *api.Function, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for f.Status != "ready" && f.Status != "failed" {
		if time.Now().After(deadline) {
			return fmt.Errorf("function %s is still %s after %s", f.Name, f.Status, timeout)
		}
		time.Sleep(250 * time.Millisecond)
		var err error
		if f, err = c.GetFunction(cmd.Context(), project, f.Name); err != nil {
			return err
		}
	}
	if f.Status == "failed" {
		return fmt.Errorf("function %s failed: %s", f.Name, f.StatusDetails.Reason)
	}
	url := f.Endpoint
	if url == "" {
		url = f.EndpointInternal
	}
	_, err := fmt.Fprintln(e.out, url)
	return err
}

func newFunctionCreate(e *env) *cobra.Command {
	var name string
	var f functionFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Create a function", Args: cobra.NoArgs,
		Example: "  coligo function create --name hello --runtime nodejs --inline-code hello.js\n  curl $(coligo function get --name hello -o url)?name=Ada",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			spec, err := f.spec(cmd, c)
			if err != nil {
				return err
			}
			fn, err := c.CreateFunction(cmd.Context(), project, api.FunctionPrototype{Name: name, FunctionSpec: spec})
			if err != nil {
				return err
			}
			return e.functionDone(cmd, c, project, fn, &f, "Created")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "function name")
	f.add(cmd)
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("runtime")
	cmd.MarkFlagsOneRequired("inline-code", "code-bundle")
	return cmd
}

func newFunctionUpdate(e *env) *cobra.Command {
	var name string
	var f functionFlags
	var envRm []string
	cmd := &cobra.Command{
		Use: "update", Short: "Change a function: its next invocations run the new code and settings", Args: cobra.NoArgs,
		Example: "  coligo function update --name hello --inline-code hello.js\n  coligo function update --name hello --env MODE=fast --env-rm OLD",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			spec, err := f.spec(cmd, c)
			if err != nil {
				return err
			}
			cur, err := c.GetFunction(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			patch, err := envPatch(spec, cur.RunEnvVariables, spec.RunEnvVariables, envRm)
			if err != nil {
				return err
			}
			fn, err := c.UpdateFunction(cmd.Context(), project, name, cur.EntityTag, patch)
			if err != nil {
				return err
			}
			return e.functionDone(cmd, c, project, fn, &f, "Updated")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "function name")
	cmd.Flags().StringArrayVar(&envRm, "env-rm", nil, "remove a literal variable (repeatable)")
	f.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newFunctionGet(e *env) *cobra.Command {
	var name, save string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a function (-o url prints its URL; --save FILE writes its code)", Args: cobra.NoArgs,
		Example: "  coligo function get --name hello\n  coligo function get --name hello --save hello.js",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			f, err := c.GetFunction(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			if save != "" {
				return saveCode(f, save)
			}
			switch e.output {
			case "url":
				if f.Endpoint == "" {
					return errors.New("the function is visible in its project only; -o project-url prints its project URL")
				}
				_, err := fmt.Fprintln(e.out, f.Endpoint)
				return err
			case "project-url":
				_, err := fmt.Fprintln(e.out, f.EndpointInternal)
				return err
			}
			return e.printFunction(f, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "function name")
	cmd.Flags().StringVar(&save, "save", "", "write the function's inline code to FILE (created 0600)")
	cmd.MarkFlagRequired("name")
	return cmd
}

// saveCode writes a function's inline code to a new file.
func saveCode(f *api.Function, path string) error {
	_, code64, ok := strings.Cut(f.CodeReference, ";base64,")
	code, err := base64.StdEncoding.DecodeString(code64)
	if !ok || err != nil || !strings.HasPrefix(f.CodeReference, "data:") {
		return fmt.Errorf("function %s has no inline code to save", f.Name)
	}
	return os.WriteFile(path, code, 0o600)
}

func newFunctionList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List functions", Args: cobra.NoArgs, Example: "  coligo function list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			fns, err := c.AllFunctions(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(fns, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tStatus\tURL\tRuntime\tCPU\tMemory\tAge")
				for _, f := range fns {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Status, f.Endpoint, f.Runtime, f.ScaleCPULimit, f.ScaleMemoryLimit, age(f.CreatedAt))
				}
			})
		},
	}
}

func newFunctionRuntimes(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "runtimes", Short: "List the runtimes functions may use", Args: cobra.NoArgs, Example: "  coligo function runtimes --all",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			l, err := c.ListFunctionRuntimes(cmd.Context())
			if err != nil {
				return err
			}
			var rts []api.FunctionRuntime
			for _, r := range l.FunctionRuntimes {
				if all || !r.Deprecated || r.Default {
					rts = append(rts, r)
				}
			}
			return e.print(rts, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tID\tFamily\tDefault\tDeprecated")
				for _, r := range rts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%v\n", r.Name, r.ID, r.Family, r.Default, r.Deprecated)
				}
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "list deprecated runtimes too")
	return cmd
}

// pushBundle packs dir (within lim) and pushes it to ref with the user's
// registry login; it returns ref pinned to what was pushed.
func pushBundle(ctx context.Context, dir, ref string, lim bundle.Limits) (string, error) {
	r, err := name.ParseReference(ref, name.WithDefaultRegistry(bundle.DefaultRegistry))
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	img, err := bundle.Pack(dir, lim)
	if err != nil {
		return "", err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push the code bundle to %s: %w", r, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return r.Context().Name() + "@" + digest.String(), nil
}
