package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

// enumValues are the values of flags that take one of a few words, for
// shell completion.
var enumValues = map[string][]string{
	"visibility": {"public", "project"},
	"mode":       {"task", "daemon"},
	"role":       {"reader", "writer", "manager", "admin"},
}

// namesOf lists the names of a command group's resources, for completion.
var namesOf = map[string]func(ctx context.Context, c *api.Client, project string) ([]string, error){
	"project": func(ctx context.Context, c *api.Client, _ string) ([]string, error) {
		ps, err := c.AllProjects(ctx, false)
		return names(ps, err, func(p api.Project) string { return p.Name })
	},
	"secret": func(ctx context.Context, c *api.Client, project string) ([]string, error) {
		s, err := c.AllSecrets(ctx, project, "")
		return names(s, err, func(s api.Secret) string { return s.Name })
	},
	"configmap": func(ctx context.Context, c *api.Client, project string) ([]string, error) {
		s, err := c.AllConfigMaps(ctx, project)
		return names(s, err, func(s api.ConfigMap) string { return s.Name })
	},
	"job": func(ctx context.Context, c *api.Client, project string) ([]string, error) {
		s, err := c.AllJobs(ctx, project)
		return names(s, err, func(s api.Job) string { return s.Name })
	},
	"jobrun": func(ctx context.Context, c *api.Client, project string) ([]string, error) {
		s, err := c.AllJobRuns(ctx, project, "")
		return names(s, err, func(s api.JobRun) string { return s.Name })
	},
	"app": func(ctx context.Context, c *api.Client, project string) ([]string, error) {
		s, err := c.AllApps(ctx, project)
		return names(s, err, func(s api.App) string { return s.Name })
	},
}

func names[T any](items []T, err error, name func(T) string) ([]string, error) {
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out, nil
}

// completion makes the shell complete enum flags' values everywhere, and
// the names of existing resources for --name (and a positional NAME) of
// every command of a resource group but create, --job, --app and
// --project, from the server the CLI is set up for.
func completion(e *env, c *cobra.Command) {
	for _, sub := range c.Commands() {
		completion(e, sub)
	}
	if c.Parent() == nil {
		c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "json", "yaml", "url", "project-url"}, cobra.ShellCompDirectiveNoFileComp))
	}
	for flag, values := range enumValues {
		if c.LocalFlags().Lookup(flag) != nil || c.PersistentFlags().Lookup(flag) != nil {
			c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	for flag, group := range map[string]string{"job": "job", "app": "app", "project": "project"} {
		if c.LocalFlags().Lookup(flag) != nil || c.PersistentFlags().Lookup(flag) != nil {
			c.RegisterFlagCompletionFunc(flag, e.completeNames(group))
		}
	}
	if c.Parent() == nil || c.Name() == "create" || c.Name() == "submit" || c.LocalFlags().Lookup("name") == nil {
		return
	}
	if _, ok := namesOf[c.Parent().Name()]; !ok {
		return
	}
	complete := e.completeNames(c.Parent().Name())
	c.RegisterFlagCompletionFunc("name", complete)
	c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 || cmd.Flags().Changed("name") {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return complete(cmd, args, toComplete)
	}
}

// completeNames completes the names of a group's resources; on any error
// (no server, no token) it offers nothing, quietly, as a shell expects.
func (e *env) completeNames(group string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
		defer cancel()
		c, err := e.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		project := ""
		if group != "project" {
			if project, err = e.currentProject(ctx, c); err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
		}
		out, err := namesOf[group](ctx, c, project)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
