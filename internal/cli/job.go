package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/computetoken"
)

// runFlags are the run_* and scale_* flags of job and jobrun commands.
type runFlags struct {
	image, registrySecret, arrayIndices, mode, cpu, memory, ephemeral string
	arraySize, retryLimit, maxExecutionTime                           int
	env, envFromSecret, envFromConfigMap, command, argument           []string
	mounts                                                            mountFlags
}

func (f *runFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVarP(&f.image, "image", "i", "", "image reference, e.g. registry.example.com/ns/app:1")
	fs.StringVar(&f.registrySecret, "registry-secret", "", "registry secret to pull the image with")
	fs.StringVar(&f.arrayIndices, "array-indices", "", "indices to run, e.g. 0-9 or 1,3,5-7 (default 0)")
	fs.IntVar(&f.arraySize, "array-size", 0, "run indices 0..N-1 (instead of --array-indices)")
	fs.StringVar(&f.mode, "mode", "", "task (default) or daemon")
	fs.IntVar(&f.retryLimit, "retrylimit", -1, "retries per index in task mode (default 3)")
	fs.IntVar(&f.maxExecutionTime, "maxexecutiontime", 0, "seconds the whole run may take in task mode (default 7200)")
	fs.StringVar(&f.cpu, "cpu", "", "vCPU per instance (default 1)")
	fs.StringVar(&f.memory, "memory", "", "memory per instance, e.g. 4G (default 4G)")
	fs.StringVar(&f.ephemeral, "ephemeral-storage", "", "ephemeral storage per instance (default 400M)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "NAME=VALUE (repeatable)")
	fs.StringArrayVar(&f.envFromSecret, "env-from-secret", nil, "SECRET, PREFIX=SECRET, SECRET:KEY1,KEY2 or SECRET:NAME=KEY (repeatable)")
	fs.StringArrayVar(&f.envFromConfigMap, "env-from-configmap", nil, "like --env-from-secret, for a config map (repeatable)")
	fs.StringArrayVarP(&f.command, "command", "c", nil, "command replacing the image's entrypoint (repeatable)")
	fs.StringArrayVarP(&f.argument, "argument", "a", nil, "argument (repeatable)")
	f.mounts.add(fs)
}

// mountFlags are --mount-secret, --mount-configmap, --mount-data-store
// and --trusted-profiles-enabled (the token file).
type mountFlags struct {
	secrets, configMaps, dataStores []string
	token                           bool
}

func (f *mountFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.token, "trusted-profiles-enabled", false, "mount a compute resource token, the instances' identity for the coligo API, at "+computetoken.Path)
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "trusted" || name == "tpe" {
			name = "trusted-profiles-enabled"
		}
		return pflag.NormalizedName(name)
	})
	fs.StringArrayVar(&f.secrets, "mount-secret", nil, "MOUNT_DIR=SECRET: one file per key (repeatable)")
	fs.StringArrayVar(&f.configMaps, "mount-configmap", nil, "MOUNT_DIR=CONFIGMAP: one file per key (repeatable)")
	fs.StringArrayVar(&f.dataStores, "mount-data-store", nil, "MOUNT_DIR=STORE[:SUBPATH]: a persistent data store's bucket (or the part under SUBPATH), read-write (repeatable, at most 2)")
}

// tokenEnabled is run_compute_resource_token_enabled, when the flag was given.
func (f *mountFlags) tokenEnabled(cmd *cobra.Command) *bool {
	if !cmd.Flags().Changed("trusted-profiles-enabled") {
		return nil
	}
	return &f.token
}

// volumeMounts turns the flags into run_volume_mounts.
func (f *mountFlags) volumeMounts() ([]api.VolumeMount, error) {
	var out []api.VolumeMount
	readWrite := false
	for _, m := range []struct {
		vals []string
		typ  string
	}{{f.secrets, "secret"}, {f.configMaps, "config_map"}, {f.dataStores, "persistent_data_store"}} {
		for _, v := range m.vals {
			dir, ref, ok := strings.Cut(v, "=")
			if !ok || dir == "" || ref == "" {
				return nil, fmt.Errorf("--mount-* wants MOUNT_DIR=NAME, got %q", v)
			}
			vm := api.VolumeMount{Type: m.typ, Reference: ref, MountPath: dir}
			if m.typ == "persistent_data_store" {
				vm.Reference, vm.SubPath, _ = strings.Cut(ref, ":")
				vm.ReadOnly = &readWrite
			}
			out = append(out, vm)
		}
	}
	return out, nil
}

// spec turns the flags into the fields of a prototype or patch.
func (f *runFlags) spec(cmd *cobra.Command) (api.RunSpec, error) {
	s := api.RunSpec{ImageReference: f.image, ImageSecret: f.registrySecret, RunMode: f.mode,
		ScaleCPULimit: f.cpu, ScaleMemoryLimit: f.memory, ScaleEphemeralStorageLimit: f.ephemeral,
		RunCommands: f.command, RunArguments: f.argument, ScaleArraySpec: f.arrayIndices}
	if f.arraySize > 0 {
		if f.arrayIndices != "" {
			return s, errors.New("give --array-indices or --array-size, not both")
		}
		s.ScaleArraySpec = fmt.Sprintf("0-%d", f.arraySize-1)
	}
	if cmd.Flags().Changed("retrylimit") {
		s.ScaleRetryLimit = &f.retryLimit
	}
	if cmd.Flags().Changed("maxexecutiontime") {
		s.ScaleMaxExecutionTime = &f.maxExecutionTime
	}
	vars, err := envVars(f.env, f.envFromSecret, f.envFromConfigMap)
	s.RunEnvVariables = vars
	if err != nil {
		return s, err
	}
	s.RunComputeResourceTokenEnabled = f.mounts.tokenEnabled(cmd)
	s.RunVolumeMounts, err = f.mounts.volumeMounts()
	return s, err
}

// envVars turns --env, --env-from-secret and --env-from-configmap into
// run_env_variables.
func envVars(env, fromSecret, fromConfigMap []string) ([]api.EnvVar, error) {
	var out []api.EnvVar
	for _, e := range env {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env wants NAME=VALUE, got %q", k)
		}
		out = append(out, api.EnvVar{Type: "literal", Name: k, Value: v})
	}
	for _, pair := range []struct {
		vals      []string
		full, key string
	}{{fromSecret, "secret_full_reference", "secret_key_reference"}, {fromConfigMap, "config_map_full_reference", "config_map_key_reference"}} {
		for _, v := range pair.vals {
			vars, err := envFrom(v, pair.full, pair.key)
			if err != nil {
				return nil, err
			}
			out = append(out, vars...)
		}
	}
	return out, nil
}

// envFrom parses Code Engine's --env-from-* syntax.
func envFrom(v, full, key string) ([]api.EnvVar, error) {
	if name, keys, ok := strings.Cut(v, ":"); ok {
		var out []api.EnvVar
		for _, k := range strings.Split(keys, ",") {
			newName, from, renamed := strings.Cut(k, "=")
			if !renamed {
				newName, from = k, k
			}
			if from == "" {
				return nil, fmt.Errorf("--env-from-*: empty key in %q", v)
			}
			out = append(out, api.EnvVar{Type: key, Reference: name, Key: from, Name: newName})
		}
		return out, nil
	}
	if prefix, name, ok := strings.Cut(v, "="); ok {
		return []api.EnvVar{{Type: full, Reference: name, Prefix: prefix}}, nil
	}
	return []api.EnvVar{{Type: full, Reference: v}}, nil
}

func newJobCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("job", nil, "Manage jobs (batch templates) of the selected project")
	cmd.AddCommand(newJobCreate(e), newJobUpdate(e), newJobGet(e), newJobList(e), newBindCmd(e, "job"), newUnbindCmd(e, "job"),
		newDeleteCmd(e, "job", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteJob(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printJob(j *api.Job, headline string) error {
	return e.printOne(j, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nImage:\t%s\nRegistry Secret:\t%s\nMode:\t%s\nArray Indices:\t%s\nCPU:\t%s\nMemory:\t%s\nEphemeral Storage:\t%s\n",
			j.Name, j.ID, j.ImageReference, j.ImageSecret, j.RunMode, j.ScaleArraySpec, j.ScaleCPULimit, j.ScaleMemoryLimit, j.ScaleEphemeralStorageLimit)
		if j.ScaleRetryLimit != nil {
			fmt.Fprintf(w, "Retry Limit:\t%d\nMax Execution Time:\t%d\n", *j.ScaleRetryLimit, *j.ScaleMaxExecutionTime)
		}
		if len(j.RunCommands) > 0 || len(j.RunArguments) > 0 {
			fmt.Fprintf(w, "Command:\t%s\nArguments:\t%s\n", strings.Join(j.RunCommands, " "), strings.Join(j.RunArguments, " "))
		}
		if j.BuildRun != "" {
			fmt.Fprintf(w, "Build Run:\t%s\n", j.BuildRun)
		}
		printRunExtras(w, j.RunComputeResourceTokenEnabled, j.RunVolumeMounts)
	})
}

func newJobCreate(e *env) *cobra.Command {
	var name string
	var rf runFlags
	var sb sourceBuild
	cmd := &cobra.Command{
		Use: "create", Short: "Create a job", Args: cobra.NoArgs,
		Example: "  coligo job create --name nightly --image registry.example.com/batch:1 --registry-secret regcred --array-indices 0-9 --env MODE=full",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := rf.spec(cmd)
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
			j, err := c.CreateJob(cmd.Context(), project, api.JobPrototype{Name: name, RunSpec: spec})
			if err != nil {
				return err
			}
			return e.printJob(j, "Created job "+j.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	rf.add(cmd)
	sb.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newJobUpdate(e *env) *cobra.Command {
	var name string
	var rf runFlags
	var sb sourceBuild
	cmd := &cobra.Command{
		Use: "update", Short: "Change a job", Args: cobra.NoArgs,
		Example: "  coligo job update --name nightly --array-indices 0-19 --retrylimit 1",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := rf.spec(cmd)
			if err != nil {
				return err
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			cur, err := c.GetJob(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			if err := sb.build(cmd, e, c, project, name, cmp.Or(spec.ImageReference, cur.ImageReference), cmp.Or(spec.ImageSecret, cur.ImageSecret), &spec.ImageReference, &spec.BuildRun); err != nil {
				return err
			}
			if spec.RunEnvVariables != nil {
				spec.RunEnvVariables = append(cur.RunEnvVariables, spec.RunEnvVariables...)
			}
			j, err := c.UpdateJob(cmd.Context(), project, name, cur.EntityTag, spec)
			if err != nil {
				return err
			}
			return e.printJob(j, "Updated job "+j.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	rf.add(cmd)
	sb.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newJobGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a job", Args: cobra.NoArgs, Example: "  coligo job get --name nightly",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			j, err := c.GetJob(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printJob(j, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newJobList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List jobs", Args: cobra.NoArgs, Example: "  coligo job list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			jobs, err := c.AllJobs(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(jobs, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tImage\tMode\tArray Indices\tAge")
				for _, j := range jobs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", j.Name, j.ImageReference, j.RunMode, j.ScaleArraySpec, age(j.CreatedAt))
				}
			})
		},
	}
}

func (e *env) clientAndProject(cmd *cobra.Command) (*api.Client, string, error) {
	c, err := e.client()
	if err != nil {
		return nil, "", err
	}
	project, err := e.currentProject(cmd.Context(), c)
	return c, project, err
}

func newJobRunCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("jobrun", nil, "Submit and follow job runs of the selected project")
	cmd.AddCommand(newJobRunSubmit(e), newJobRunResubmit(e), newJobRunGet(e), newJobRunList(e), newJobRunLogs(e), newJobRunEvents(e),
		newDeleteCmd(e, "jobrun", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteJobRun(cmd.Context(), project, name)
		}))
	return cmd
}

func progress(r *api.JobRun) string {
	d := r.StatusDetails
	return fmt.Sprintf("%s: %d succeeded, %d failed, %d running, %d pending of %d", r.Status, d.Succeeded, d.Failed, d.Running, d.Pending, d.Requested)
}

func newJobRunSubmit(e *env) *cobra.Command {
	var name, job string
	var wait bool
	var waitTimeout time.Duration
	var sizeOverride int
	var rf runFlags
	cmd := &cobra.Command{
		Use: "submit", Short: "Submit a job run, of a job or stand-alone", Args: cobra.NoArgs,
		Example: "  coligo jobrun submit --job nightly --array-indices 0-4 --wait\n  coligo jobrun submit --name once --image registry.example.com/batch:1 --registry-secret regcred",
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := rf.spec(cmd)
			if err != nil {
				return err
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			in := api.JobRunPrototype{Name: name, JobName: job, RunSpec: spec}
			if sizeOverride > 0 {
				in.ScaleArraySizeVariableOverride = &sizeOverride
			}
			r, err := c.CreateJobRun(cmd.Context(), project, in)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "Submitted job run %s\n", r.Name)
			if !wait {
				return nil
			}
			deadline := time.Now().Add(waitTimeout)
			tty := isTerminal(e.out)
			last := ""
			for r.Status != "completed" && r.Status != "failed" {
				if time.Now().After(deadline) {
					return fmt.Errorf("job run %s is still %s after %s", r.Name, r.Status, waitTimeout)
				}
				time.Sleep(250 * time.Millisecond)
				if r, err = c.GetJobRun(cmd.Context(), project, r.Name); err != nil {
					return err
				}
				if line := progress(r); line != last {
					if tty {
						fmt.Fprintf(e.out, "\r\033[K%s", line)
					} else {
						fmt.Fprintln(e.out, line)
					}
					last = line
				}
			}
			if tty {
				fmt.Fprintln(e.out)
			}
			if r.Status == "failed" {
				return fmt.Errorf("job run %s failed: indices %s", r.Name, r.StatusDetails.FailedIndices)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "run name (default: <job>-jobrun-<random>)")
	cmd.Flags().StringVar(&job, "job", "", "job to run")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "wait until the run completes, showing progress")
	cmd.Flags().DurationVar(&waitTimeout, "wait-timeout", 600*time.Second, "how long --wait waits")
	cmd.Flags().IntVar(&sizeOverride, "array-size-var-override", 0, "value of JOB_ARRAY_SIZE, without changing the array")
	rf.add(cmd)
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func newJobRunGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a job run and its indices", Args: cobra.NoArgs, Example: "  coligo jobrun get --name nightly-jobrun-x1y2z",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			r, err := c.GetJobRun(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "Name:\t%s\nJob:\t%s\nImage:\t%s\nMode:\t%s\nArray Indices:\t%s\nStatus:\t%s\n", r.Name, r.JobName, r.ImageReference, r.RunMode, r.ScaleArraySpec, progress(r))
				if r.StatusDetails.Reason != "" {
					fmt.Fprintf(w, "Reason:\t%s\n", r.StatusDetails.Reason)
				}
				fmt.Fprintln(w, "\nIndex\tStatus\tRetries\tReason")
				idx := make([]int, 0, len(r.StatusDetails.IndicesDetails))
				for k := range r.StatusDetails.IndicesDetails {
					n, _ := strconv.Atoi(k)
					idx = append(idx, n)
				}
				sort.Ints(idx)
				for _, i := range idx {
					d := r.StatusDetails.IndicesDetails[strconv.Itoa(i)]
					fmt.Fprintf(w, "%d\t%s\t%d\t%s\n", i, d.Status, d.Retries, d.LastFailureReason)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "run name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newJobRunList(e *env) *cobra.Command {
	var job string
	cmd := &cobra.Command{
		Use: "list", Short: "List job runs", Args: cobra.NoArgs, Example: "  coligo jobrun list --job nightly",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			runs, err := c.AllJobRuns(cmd.Context(), project, job)
			if err != nil {
				return err
			}
			return e.print(runs, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tStatus\tFailed\tPending\tRequested\tRunning\tSucceeded\tAge")
				for _, r := range runs {
					d := r.StatusDetails
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Name, r.Status, d.Failed, d.Pending, d.Requested, d.Running, d.Succeeded, age(r.CreatedAt))
				}
			})
		},
	}
	cmd.Flags().StringVar(&job, "job", "", "only runs of this job")
	return cmd
}

func newJobRunLogs(e *env) *cobra.Command {
	var name string
	var index int
	var opts api.LogOptions
	cmd := &cobra.Command{
		Use: "logs", Short: "Print the logs of a job run's instances", Args: cobra.NoArgs,
		Example: "  coligo jobrun logs --name nightly-jobrun-x1y2z --index 3 -f\n  coligo jobrun logs --name nightly-jobrun-x1y2z --tail 20 --since 1h --timestamps",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			if opts.Follow && index < 0 {
				return errors.New("--follow needs --index")
			}
			return c.JobRunLogs(cmd.Context(), project, name, index, opts, e.out)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "run name")
	cmd.Flags().IntVar(&index, "index", -1, "only this array index (default: all)")
	logFlags(cmd, &opts, "with --index")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newJobRunResubmit(e *env) *cobra.Command {
	var from, name string
	var rf runFlags
	cmd := &cobra.Command{
		Use: "resubmit", Short: "Submit a new run with the configuration of an earlier one", Args: cobra.NoArgs,
		Example: "  coligo jobrun resubmit --jobrun nightly-jobrun-x1y2z --array-indices 3",
		RunE: func(cmd *cobra.Command, _ []string) error {
			over, err := rf.spec(cmd)
			if err != nil {
				return err
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			old, err := c.GetJobRun(cmd.Context(), project, from)
			if err != nil {
				return err
			}
			in := api.JobRunPrototype{Name: name, JobName: old.JobName, RunSpec: old.RunSpec,
				ScaleArraySizeVariableOverride: old.ScaleArraySizeVariableOverride}
			if old.JobName != "" {
				in.RunServiceAccount = "" // a run of a job takes the job's
			} else if name == "" {
				return errors.New("the run has no job: give --name for the new run")
			}
			mergeSpec(&in.RunSpec, over)
			r, err := c.CreateJobRun(cmd.Context(), project, in)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "Submitted job run %s\n", r.Name)
			return err
		},
	}
	cmd.Flags().StringVar(&from, "jobrun", "", "the run to submit again")
	cmd.Flags().StringVarP(&name, "name", "n", "", "name of the new run (default: <job>-jobrun-<random>)")
	rf.add(cmd)
	cmd.MarkFlagRequired("jobrun")
	return cmd
}

// mergeSpec overrides base with what over sets.
func mergeSpec(base *api.RunSpec, over api.RunSpec) {
	str := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	str(&base.ImageReference, over.ImageReference)
	str(&base.ImageSecret, over.ImageSecret)
	str(&base.RunMode, over.RunMode)
	str(&base.ScaleArraySpec, over.ScaleArraySpec)
	str(&base.ScaleCPULimit, over.ScaleCPULimit)
	str(&base.ScaleMemoryLimit, over.ScaleMemoryLimit)
	str(&base.ScaleEphemeralStorageLimit, over.ScaleEphemeralStorageLimit)
	if over.RunCommands != nil {
		base.RunCommands = over.RunCommands
	}
	if over.RunArguments != nil {
		base.RunArguments = over.RunArguments
	}
	if over.RunEnvVariables != nil {
		base.RunEnvVariables = append(base.RunEnvVariables, over.RunEnvVariables...)
	}
	if over.ScaleRetryLimit != nil {
		base.ScaleRetryLimit = over.ScaleRetryLimit
	}
	if over.ScaleMaxExecutionTime != nil {
		base.ScaleMaxExecutionTime = over.ScaleMaxExecutionTime
	}
}

// newJobRunEvents prints a run's timeline, as its index details record it:
// when each index started and finished, and why attempts failed.
func newJobRunEvents(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "events", Short: "Show when a run's indices started, finished and failed", Args: cobra.NoArgs,
		Example: "  coligo jobrun events --name nightly-jobrun-x1y2z",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			r, err := c.GetJobRun(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			type event struct{ at, what string }
			var evs []event
			if d := r.StatusDetails; d.StartTime != "" {
				evs = append(evs, event{d.StartTime, "run started"})
			}
			for i, d := range r.StatusDetails.IndicesDetails {
				if d.StartedAt != "" {
					evs = append(evs, event{d.StartedAt, fmt.Sprintf("index %s attempt %d started", i, d.Retries)})
				}
				if d.Retries > 0 && d.LastFailureReason != "" {
					evs = append(evs, event{d.StartedAt, fmt.Sprintf("index %s retried after %s", i, d.LastFailureReason)})
				}
				if d.FinishedAt != "" {
					what := "index " + i + " " + d.Status
					if d.Status == "failed" {
						what += ": " + d.LastFailureReason
					}
					evs = append(evs, event{d.FinishedAt, what})
				}
			}
			if d := r.StatusDetails; d.CompletionTime != "" {
				evs = append(evs, event{d.CompletionTime, "run " + r.Status})
			}
			sort.SliceStable(evs, func(a, b int) bool { return evs[a].at < evs[b].at })
			return e.print(evs, func(w io.Writer) {
				fmt.Fprintln(w, "Time\tEvent")
				for _, ev := range evs {
					fmt.Fprintf(w, "%s\t%s\n", ev.at, ev.what)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "run name")
	cmd.MarkFlagRequired("name")
	return cmd
}
