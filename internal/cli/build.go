package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/function/bundle"
)

// buildFlags are the flags of build create and update, and of a
// stand-alone buildrun submit.
type buildFlags struct {
	source, commit, contextDir, dockerfile, image, registrySecret, size, strategy, buildType, repoSecret string
	timeout                                                                                              int
	args, secretArgs                                                                                     []string
}

func (f *buildFlags) add(cmd *cobra.Command, withType bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.source, "source", "", "Git URL of the source (https://host/org/repo; http:// only for the server's --insecure-git-host); for buildrun submit also a local DIR")
	fs.StringVar(&f.commit, "commit", "", "branch, tag or commit to build (default: the default branch)")
	fs.StringVar(&f.repoSecret, "git-repo-secret", "", "secret of the project for a private repository: ssh_auth for an ssh:// or git@ URL, basic_auth for https://")
	fs.StringVar(&f.contextDir, "context-dir", "", "directory of the source holding the build context")
	fs.StringVar(&f.dockerfile, "dockerfile", "", "path of the Dockerfile in the context (default Dockerfile)")
	fs.StringVarP(&f.image, "image", "i", "", "image to push (registry/namespace/repository[:tag])")
	fs.StringVar(&f.registrySecret, "registry-secret", "", "registry secret of the project that pushes the image")
	fs.StringVar(&f.size, "size", "", "small, medium (default), large, xlarge or xxlarge")
	fs.StringVar(&f.strategy, "strategy", "", "dockerfile (default)")
	fs.IntVar(&f.timeout, "timeout", 0, "seconds a run may take (default 600, at most 3600)")
	fs.StringArrayVar(&f.args, "build-arg", nil, "NAME=VALUE: a Dockerfile ARG (repeatable)")
	fs.StringArrayVar(&f.secretArgs, "build-secret", nil, "NAME=SECRET:KEY: a key of a secret, offered to RUN --mount=type=secret,id=NAME, never as an ARG (repeatable)")
	if withType {
		fs.StringVar(&f.buildType, "build-type", "", "git (default), or local: each run's source is a directory buildrun submit --source uploads")
	}
}

// spec turns the flags that were given into a build spec.
func (f *buildFlags) spec(cmd *cobra.Command) (api.BuildSpec, error) {
	s := api.BuildSpec{OutputImage: f.image, OutputSecret: f.registrySecret, StrategyType: f.strategy, StrategySize: f.size,
		StrategySpecFile: f.dockerfile, SourceType: f.buildType, SourceURL: f.source, SourceRevision: f.commit, SourceContextDir: f.contextDir, SourceSecret: f.repoSecret}
	if cmd.Flags().Changed("timeout") {
		s.Timeout = &f.timeout
	}
	for _, a := range f.args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return s, fmt.Errorf("--build-arg %q is not NAME=VALUE", a)
		}
		s.RunBuildParams = append(s.RunBuildParams, api.BuildParam{Type: "literal", Name: k, Value: v})
	}
	for _, a := range f.secretArgs {
		k, ref, ok := strings.Cut(a, "=")
		sec, key, ok2 := strings.Cut(ref, ":")
		if !ok || !ok2 || k == "" || sec == "" || key == "" {
			return s, fmt.Errorf("--build-secret %q is not NAME=SECRET:KEY", a)
		}
		s.RunBuildParams = append(s.RunBuildParams, api.BuildParam{Type: "secret_key_reference", Name: k, Reference: sec, Key: key})
	}
	return s, nil
}

func newBuildCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("build", []string{"bd"}, "Manage builds (how to build an image from source) of the selected project")
	cmd.AddCommand(newBuildWrite(e, false), newBuildWrite(e, true), newBuildGet(e), newBuildList(e),
		newDeleteCmd(e, "build", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteBuild(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printBuild(b *api.Build, headline string) error {
	return e.printOne(b, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nStatus:\t%s (%s)\nImage:\t%s\nRegistry Secret:\t%s\nBuild Strategy:\t%s-%s\nTimeout:\t%s\n",
			b.Name, b.ID, b.Status, b.StatusDetails.Reason, b.OutputImage, b.OutputSecret, b.StrategyType, b.StrategySize, time.Duration(deref(b.Timeout))*time.Second)
		fmt.Fprintf(w, "Source:\t%s\nCommit:\t%s\nGit Repository Secret:\t%s\nContext Directory:\t%s\nDockerfile:\t%s\n", b.SourceURL, b.SourceRevision, b.SourceSecret, b.SourceContextDir, b.StrategySpecFile)
		printParams(w, b.RunBuildParams)
	})
}

func printParams(w io.Writer, params []api.BuildParam) {
	for _, p := range params {
		if p.Type == "literal" {
			fmt.Fprintf(w, "Build Argument:\t%s=%s\n", p.Name, p.Value)
		} else {
			fmt.Fprintf(w, "Build Secret:\t%s from %s:%s\n", p.Name, p.Reference, p.Key)
		}
	}
}

// newBuildWrite is build create, or with update build update (which
// changes only the fields whose flags are given).
func newBuildWrite(e *env, update bool) *cobra.Command {
	var name string
	var f buildFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Create a build", Args: cobra.NoArgs,
		Example: "  coligo build create --name web --source https://git.example/org/web --context-dir app --image registry.example/me/web --registry-secret push",
	}
	if update {
		cmd.Use, cmd.Short, cmd.Example = "update", "Change a build", "  coligo build update --name web --commit v2"
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, project, err := e.clientAndProject(cmd)
		if err != nil {
			return err
		}
		spec, err := f.spec(cmd)
		if err != nil {
			return err
		}
		var b *api.Build
		done := "Created"
		if update {
			done = "Updated"
			cur, err := c.GetBuild(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			b, err = c.UpdateBuild(cmd.Context(), project, name, cur.EntityTag, spec)
		} else {
			if spec.StrategyType == "" {
				spec.StrategyType = "dockerfile"
			}
			b, err = c.CreateBuild(cmd.Context(), project, api.BuildPrototype{Name: name, BuildSpec: spec})
		}
		if err != nil {
			return err
		}
		return e.printBuild(b, done+" build "+b.Name)
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "build name")
	f.add(cmd, !update)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newBuildGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a build and its runs", Args: cobra.NoArgs, Example: "  coligo build get --name web",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			b, err := c.GetBuild(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			if err := e.printBuild(b, ""); err != nil || e.output != "" {
				return err
			}
			runs, err := c.AllBuildRuns(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.print(runs, func(w io.Writer) { buildRunTable(w, runs) })
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "build name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newBuildList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List builds", Args: cobra.NoArgs, Example: "  coligo build list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			builds, err := c.AllBuilds(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(builds, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tStatus\tImage\tSource\tAge")
				for _, b := range builds {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", b.Name, b.Status, b.OutputImage, b.SourceURL, age(b.CreatedAt))
				}
			})
		},
	}
}

func buildRunTable(w io.Writer, runs []api.BuildRun) {
	fmt.Fprintln(w, "Name\tStatus\tReason\tBuild Name\tAge")
	for _, r := range runs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Status, r.StatusDetails.Reason, r.BuildName, age(r.CreatedAt))
	}
}

func newBuildRunCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("buildrun", []string{"br"}, "Submit and follow build runs of the selected project")
	cmd.AddCommand(newBuildRunSubmit(e), newBuildRunOne(e, false), newBuildRunOne(e, true), newBuildRunList(e), newBuildRunLogs(e), newBuildRunEvents(e),
		newDeleteCmd(e, "buildrun", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteBuildRun(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printBuildRun(r *api.BuildRun, headline string) error {
	return e.printOne(r, headline, func(w io.Writer) {
		d := r.StatusDetails
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nBuild:\t%s\nStatus:\t%s (%s)\n", r.Name, r.ID, r.BuildName, r.Status, d.Reason)
		if d.Message != "" {
			fmt.Fprintf(w, "Message:\t%s\n", d.Message)
		}
		fmt.Fprintf(w, "Image:\t%s\nImage Digest:\t%s\nRegistry Secret:\t%s\nSource:\t%s\nCommit:\t%s\nStarted:\t%s\nCompleted:\t%s\n",
			r.OutputImage, d.OutputDigest, r.OutputSecret, r.SourceURL, r.SourceRevision, d.StartTime, d.CompletionTime)
		printParams(w, r.RunBuildParams)
	})
}

func newBuildRunSubmit(e *env) *cobra.Command {
	var build, runName string
	var f buildFlags
	var wait bool
	var waitTimeout time.Duration
	cmd := &cobra.Command{
		Use: "submit", Short: "Run a build, or a stand-alone build", Args: cobra.NoArgs,
		Example: "  coligo buildrun submit --build web --wait\n  coligo buildrun submit --name once --source https://git.example/org/web --image registry.example/me/web --registry-secret push",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			spec, err := f.spec(cmd)
			if err != nil {
				return err
			}
			if build == "" && spec.StrategyType == "" {
				spec.StrategyType = "dockerfile"
			}
			proto := api.BuildRunPrototype{BuildName: build, Name: runName, BuildSpec: spec}
			if st, err := os.Stat(f.source); err == nil && st.IsDir() {
				if err := e.uploadSource(cmd, c, project, &proto); err != nil {
					return err
				}
			}
			r, err := c.CreateBuildRun(cmd.Context(), project, proto)
			if err != nil {
				return err
			}
			if !wait || e.output == "json" || e.output == "yaml" {
				return e.printBuildRun(r, "Submitted build run "+r.Name)
			}
			fmt.Fprintf(e.out, "Submitted build run %s\n", r.Name)
			pinned, err := awaitBuildRun(cmd, c, project, r, waitTimeout)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.out, pinned)
			return err
		},
	}
	cmd.Flags().StringVarP(&build, "build", "b", "", "build to run (its fields under the flags given)")
	cmd.Flags().StringVarP(&runName, "name", "n", "", "run name (default <build>-run-<yymmdd>-<hhmmss>)")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the run ends, then print the image pinned by digest")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 600*time.Second, "how long --wait waits")
	f.add(cmd, true)
	return cmd
}

// uploadSource packs a run's local source directory (less .git and what
// its .ceignore names) and pushes it, with your registry login, beside
// the output image as <repository>-source:<time>, as Code Engine's CLI
// does; the run then reads it pinned by digest.
// newBuildRunEvents shows what happened to a run, from its status.
func newBuildRunEvents(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "events", Short: "Show what happened to a build run: submitted, started, ended and why", Args: cobra.NoArgs,
		Example: "  coligo buildrun events --name web-run-261129-101500",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			r, err := c.GetBuildRun(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.print(buildRunEvents(r), func(w io.Writer) {
				fmt.Fprintln(w, "Time\tEvent")
				for _, ev := range buildRunEvents(r) {
					fmt.Fprintf(w, "%s\t%s\n", ev.At, ev.What)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "build run name")
	cmd.MarkFlagRequired("name")
	return cmd
}

// buildRunEvent is one thing that happened to a build run.
type buildRunEvent struct {
	At   string `json:"time"`
	What string `json:"event"`
}

// buildRunEvents are what a run's status tells of its course.
func buildRunEvents(r *api.BuildRun) []buildRunEvent {
	d := r.StatusDetails
	evs := []buildRunEvent{{r.CreatedAt, "submitted"}}
	if r.Status == "pending" && d.Message != "" {
		evs = append(evs, buildRunEvent{r.CreatedAt, "pending: " + d.Message})
	}
	if d.StartTime != "" {
		evs = append(evs, buildRunEvent{d.StartTime, "started"})
	}
	if d.CompletionTime != "" {
		what := r.Status + " (" + d.Reason + ")"
		switch {
		case d.Message != "":
			what += ": " + d.Message
		case d.OutputDigest != "":
			what += ": pushed " + r.OutputImage + " " + d.OutputDigest
		}
		evs = append(evs, buildRunEvent{d.CompletionTime, what})
	}
	return evs
}

// awaitBuildRun waits until r ends; it returns the image it built, pinned
// by digest, or why it did not.
func awaitBuildRun(cmd *cobra.Command, c *api.Client, project string, r *api.BuildRun, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	var err error
	for r.Status == "pending" || r.Status == "running" {
		if time.Now().After(deadline) {
			return "", fmt.Errorf("build run %s is still %s after %s", r.Name, r.Status, timeout)
		}
		time.Sleep(500 * time.Millisecond)
		if r, err = c.GetBuildRun(cmd.Context(), project, r.Name); err != nil {
			return "", err
		}
	}
	if r.Status != "succeeded" {
		return "", fmt.Errorf("build run %s failed: %s: %s (coligo buildrun logs --name %s)", r.Name, r.StatusDetails.Reason, r.StatusDetails.Message, r.Name)
	}
	ref, err := name.ParseReference(r.OutputImage)
	if err != nil {
		return "", err
	}
	return ref.Context().Name() + "@" + r.StatusDetails.OutputDigest, nil
}

// sourceBuild is what the --build-* flags of app and job create and
// update ask for: an image built from source first, which the app or job
// then runs.
type sourceBuild struct {
	source, commit, contextDir, dockerfile, repoSecret, size string
	timeout                                                  int
	waitTimeout                                              time.Duration
}

func (b *sourceBuild) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&b.source, "build-source", "", "build the image first, from a Git URL or a local directory, and push it to --image's repository (with --registry-secret)")
	fs.StringVar(&b.commit, "build-commit", "", "with --build-source: branch, tag or commit (default: the default branch)")
	fs.StringVar(&b.contextDir, "build-context-dir", "", "with --build-source: the directory of the source holding the build context")
	fs.StringVar(&b.dockerfile, "build-dockerfile", "", "with --build-source: the Dockerfile's path in the context (default Dockerfile)")
	fs.StringVar(&b.repoSecret, "build-git-repo-secret", "", "with --build-source: the secret of a private repository (ssh_auth or basic_auth)")
	fs.StringVar(&b.size, "build-size", "", "with --build-source: small, medium (default), large, xlarge or xxlarge")
	fs.IntVar(&b.timeout, "build-timeout", 0, "with --build-source: seconds the build may take (default 600)")
	fs.DurationVar(&b.waitTimeout, "build-wait-timeout", 15*time.Minute, "with --build-source: how long to wait for the build")
}

// build builds the image of workload when --build-source was given, as
// Code Engine's CLI does: a stand-alone run named <workload>-run-<time>
// pushing to repo's repository under a tag of its own, with secret, and
// waited for. It sets *image to what it built, pinned by digest, and *run
// to the run's name; without --build-source it changes nothing.
func (b *sourceBuild) build(cmd *cobra.Command, e *env, c *api.Client, project, workload, repo, secret string, image, run *string) error {
	if b.source == "" {
		for _, f := range []string{"build-commit", "build-context-dir", "build-dockerfile", "build-git-repo-secret", "build-size", "build-timeout"} {
			if cmd.Flags().Changed(f) {
				return fmt.Errorf("--%s is for --build-source", f)
			}
		}
		return nil
	}
	if repo == "" || secret == "" {
		return errors.New("--build-source needs --image (the repository to push to) and --registry-secret (a registry secret of the project that pushes and pulls it)")
	}
	ref, err := name.ParseReference(repo)
	if err != nil {
		return fmt.Errorf("--image %q: %w", repo, err)
	}
	now := time.Now().UTC()
	out := ref.Context().Name() + ":" + now.Format("060102-150405")
	proto := api.BuildRunPrototype{Name: core.BuildRunName(workload, now), BuildSpec: api.BuildSpec{OutputImage: out, OutputSecret: secret,
		StrategyType: "dockerfile", StrategySize: b.size, StrategySpecFile: b.dockerfile, SourceURL: b.source, SourceRevision: b.commit,
		SourceContextDir: b.contextDir, SourceSecret: b.repoSecret}}
	if cmd.Flags().Changed("build-timeout") {
		proto.Timeout = &b.timeout
	}
	if st, err := os.Stat(b.source); err == nil && st.IsDir() {
		if b.commit != "" || b.repoSecret != "" {
			return errors.New("--build-commit and --build-git-repo-secret are for a Git --build-source, not a directory")
		}
		if err := e.uploadSource(cmd, c, project, &proto); err != nil {
			return err
		}
	}
	r, err := c.CreateBuildRun(cmd.Context(), project, proto)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Submitted build run %s, building %s; waiting for it to complete\n", r.Name, out)
	pinned, err := awaitBuildRun(cmd, c, project, r, b.waitTimeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Build run %s completed: %s\n", r.Name, pinned)
	*image, *run = pinned, r.Name
	return nil
}

func (e *env) uploadSource(cmd *cobra.Command, c *api.Client, project string, proto *api.BuildRunPrototype) error {
	dir, out := proto.SourceURL, proto.OutputImage
	if proto.BuildName != "" {
		b, err := c.GetBuild(cmd.Context(), project, proto.BuildName)
		if err != nil {
			return err
		}
		if b.SourceType != "local" {
			return fmt.Errorf("build %s builds from Git; --source DIR is for builds of --build-type local", b.Name)
		}
		if out == "" {
			out = b.OutputImage
		}
	}
	if out == "" {
		return errors.New("--image is required: the local source is pushed beside it")
	}
	ref, err := name.ParseReference(out)
	if err != nil {
		return fmt.Errorf("--image %q: %w", out, err)
	}
	src := ref.Context().Name() + "-source:" + time.Now().UTC().Format("060102-150405")
	fmt.Fprintf(cmd.ErrOrStderr(), "Packaging %s and pushing it to %s\n", dir, src)
	pinned, err := pushBundle(cmd.Context(), dir, src, bundle.Source)
	if err != nil {
		return fmt.Errorf("--source %s: %w", dir, err)
	}
	proto.SourceURL, proto.SourceType, proto.SourceImage = "", "local", pinned
	return nil
}

// newBuildRunOne is buildrun get, or with cancel buildrun cancel: each
// names one run and prints it.
func newBuildRunOne(e *env, cancel bool) *cobra.Command {
	var name string
	cmd := &cobra.Command{Use: "get", Short: "Show a build run", Args: cobra.NoArgs, Example: "  coligo buildrun get --name web-run-261129-101500"}
	if cancel {
		cmd.Use, cmd.Short, cmd.Example = "cancel", "Stop a pending or running build run: it fails with reason canceled", "  coligo buildrun cancel --name web-run-261129-101500"
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, project, err := e.clientAndProject(cmd)
		if err != nil {
			return err
		}
		if cancel {
			r, err := c.CancelBuildRun(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printBuildRun(r, "Canceled build run "+r.Name)
		}
		r, err := c.GetBuildRun(cmd.Context(), project, name)
		if err != nil {
			return err
		}
		return e.printBuildRun(r, "")
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "build run name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newBuildRunList(e *env) *cobra.Command {
	var build string
	cmd := &cobra.Command{
		Use: "list", Short: "List build runs", Args: cobra.NoArgs, Example: "  coligo buildrun list --build web",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			runs, err := c.AllBuildRuns(cmd.Context(), project, build)
			if err != nil {
				return err
			}
			return e.print(runs, func(w io.Writer) { buildRunTable(w, runs) })
		},
	}
	cmd.Flags().StringVarP(&build, "build", "b", "", "only the runs of this build")
	return cmd
}

func newBuildRunLogs(e *env) *cobra.Command {
	var name string
	var follow bool
	cmd := &cobra.Command{
		Use: "logs", Short: "Print a build run's steps and their output", Args: cobra.NoArgs,
		Example: "  coligo buildrun logs --name web-run-261129-101500 -f",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			return c.BuildRunLogs(cmd.Context(), project, name, follow, e.out)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "build run name")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the run ends")
	cmd.MarkFlagRequired("name")
	return cmd
}
