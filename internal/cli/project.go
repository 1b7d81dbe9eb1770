package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/coligo/coligo/api"
)

func newProjectCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Aliases: []string{"proj"}, Short: "Manage projects"}
	cmd.AddCommand(newProjectCreate(e), newProjectList(e), newProjectGet(e), newProjectSelect(e), newProjectDelete(e), newProjectRestore(e), newProjectRotateKey(e))
	return cmd
}

func projectTable(w io.Writer, selected string, ps ...api.Project) {
	fmt.Fprintln(w, "Name\tID\tStatus\tSelected\tRegion\tAge")
	for _, p := range ps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\t%s\n", p.Name, p.ID, p.Status, p.ID == selected, p.Region, age(p.CreatedAt))
	}
}

// findProject resolves a project by name or id; soft-deleted ones included.
func findProject(ctx context.Context, c *api.Client, nameOrID string) (*api.Project, error) {
	all, err := c.AllProjects(ctx, true)
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if p.ID == nameOrID || p.Name == nameOrID {
			return &p, nil
		}
	}
	return nil, fmt.Errorf("project %q not found", nameOrID)
}

// nameOrIDFlags adds --name/-n and --id and returns a function that
// resolves whichever was given.
func nameOrIDFlags(cmd *cobra.Command) func() (string, error) {
	var name, id string
	cmd.Flags().StringVarP(&name, "name", "n", "", "project name")
	cmd.Flags().StringVar(&id, "id", "", "project id")
	cmd.MarkFlagsMutuallyExclusive("name", "id")
	return func() (string, error) {
		if name == "" && id == "" {
			return "", errors.New("give --name or --id")
		}
		return first(id, name), nil
	}
}

func newProjectCreate(e *env) *cobra.Command {
	var name, rg, kmsProvider, kmsKeyID string
	var noSelect, noWait bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use: "create", Short: "Create a project and select it", Args: cobra.NoArgs,
		Example: "  coligo project create --name myproject\n  coligo project create --name secure --kms-provider hsm",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			proto := api.ProjectPrototype{Name: name, ResourceGroupID: rg}
			if kmsProvider != "" || kmsKeyID != "" {
				proto.Encryption = &api.EncryptionPrototype{Provider: kmsProvider, KeyID: kmsKeyID}
			}
			p, err := c.CreateProject(cmd.Context(), proto)
			if err != nil {
				return err
			}
			if !noWait {
				if p, err = waitProject(cmd.Context(), c, p.ID, wait, func(p *api.Project) bool { return p.Status != "creating" }); err != nil {
					return err
				}
			}
			if !noSelect {
				if err := selectProject(p); err != nil {
					return err
				}
			}
			return e.print(p, func(w io.Writer) {
				fmt.Fprintf(w, "Created project %s (%s), status %s\n", p.Name, p.ID, p.Status)
				if !noSelect {
					fmt.Fprintf(w, "Selected project %s\n", p.Name)
				}
			})
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "project name (1-128 characters)")
	cmd.Flags().StringVar(&rg, "resource-group-id", "", "resource group id (default: default)")
	cmd.Flags().StringVar(&kmsProvider, "kms-provider", "", "key provider that wraps the project's data key (default: the server's default)")
	cmd.Flags().StringVar(&kmsKeyID, "kms-key-id", "", "the provider's key to use; must be its current key")
	cmd.Flags().BoolVar(&noSelect, "no-select", false, "do not select the new project")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "do not wait until the project is active")
	cmd.Flags().DurationVar(&wait, "wait-timeout", 600*time.Second, "how long to wait for the project")
	cmd.MarkFlagRequired("name")
	return cmd
}

// waitProject polls a project until done reports true or it is gone.
func waitProject(ctx context.Context, c *api.Client, id string, timeout time.Duration, done func(*api.Project) bool) (*api.Project, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := c.GetProject(ctx, id)
		if err != nil {
			return nil, err
		}
		if done(p) {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("project %s is still %s after %s", p.Name, p.Status, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func selectProject(p *api.Project) error {
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	cfg.Project, cfg.ProjectName = p.ID, p.Name
	return saveConfig(cfg)
}

func newProjectList(e *env) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "List projects", Args: cobra.NoArgs,
		Example: "  coligo project list\n  coligo project list --all -o json",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			ps, err := c.AllProjects(cmd.Context(), all)
			if err != nil {
				return err
			}
			cfg, _ := loadConfig()
			return e.print(ps, func(w io.Writer) { projectTable(w, cfg.Project, ps...) })
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also list soft-deleted projects")
	return cmd
}

func newProjectGet(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "get", Short: "Show a project", Args: cobra.NoArgs, Example: "  coligo project get --name myproject"}
	which := nameOrIDFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ref, err := which()
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		p, err := findProject(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		return e.print(p, func(w io.Writer) {
			fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nStatus:\t%s\nSubdomain:\t%s\nRegion:\t%s\nResource Group:\t%s\nCRN:\t%s\nCreated:\t%s\n",
				p.Name, p.ID, p.Status, p.Subdomain, p.Region, p.ResourceGroupID, p.CRN, p.CreatedAt)
			if p.Encryption != nil {
				fmt.Fprintf(w, "Key Provider:\t%s\nKey ID:\t%s\n", p.Encryption.Provider, p.Encryption.KeyID)
			}
			if p.HardDeleteAt != "" {
				fmt.Fprintf(w, "Deleted:\t%s\nHard Delete At:\t%s\n", p.DeletedAt, p.HardDeleteAt)
			}
		})
	}
	return cmd
}

func newProjectSelect(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "select", Short: "Select the project later commands work in", Args: cobra.NoArgs, Example: "  coligo project select --name myproject"}
	which := nameOrIDFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ref, err := which()
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		p, err := findProject(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		if p.Status != "active" {
			return fmt.Errorf("project %s is %s; only an active project can be selected", p.Name, p.Status)
		}
		if err := selectProject(p); err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.out, "Selected project %s\n", p.Name)
		return err
	}
	return cmd
}

func newProjectDelete(e *env) *cobra.Command {
	var hard, force, noWait bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use: "delete", Short: "Delete a project (soft; --hard destroys it now)", Args: cobra.NoArgs,
		Long: `Delete a project. By default the delete is soft: the project keeps its data,
unusable, for the server's retention period (7 days by default) and can be
restored with 'coligo project restore'. With --hard, or when the retention
ends, its data key is destroyed first and then all of its data.`,
		Example: "  coligo project delete --name myproject\n  coligo project delete --name myproject --hard -f",
	}
	which := nameOrIDFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ref, err := which()
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		p, err := findProject(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		if !force {
			what := "soft-delete"
			if hard {
				what = "permanently delete"
			}
			ok, err := e.confirm(fmt.Sprintf("Are you sure you want to %s project %s?", what, p.Name), hard)
			if err != nil || !ok {
				return err
			}
		}
		if err := c.DeleteProject(cmd.Context(), p.ID, hard); err != nil {
			return err
		}
		if hard && !noWait {
			if _, err := waitProject(cmd.Context(), c, p.ID, wait, func(*api.Project) bool { return false }); !isNotFound(err) {
				return err
			}
		}
		if cfg, err := loadConfig(); err == nil && cfg.Project == p.ID {
			cfg.Project, cfg.ProjectName = "", ""
			if err := saveConfig(cfg); err != nil {
				return err
			}
		}
		_, err = fmt.Fprintf(e.out, "Deleted project %s\n", p.Name)
		return err
	}
	cmd.Flags().BoolVar(&hard, "hard", false, "destroy the project now: it cannot be restored")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "with --hard, do not wait until the project is gone")
	cmd.Flags().DurationVar(&wait, "wait-timeout", 600*time.Second, "how long to wait for a hard delete")
	return cmd
}

func isNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.StatusCode == 404
}

// confirm asks a yes/no question when stdin is a terminal. Without one (a
// script, a pipe) it cannot ask: what can be undone proceeds, what cannot
// (irreversible) is refused unless the caller gave -f, so that no stray
// "echo |" destroys data.
func (e *env) confirm(question string, irreversible bool) (bool, error) {
	f, ok := e.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		if irreversible {
			return false, errors.New("this cannot be undone and there is no terminal to confirm it on; give -f (--force) to do it anyway")
		}
		return true, nil
	}
	fmt.Fprintf(e.out, "%s [y/N]: ", question)
	line, err := bufio.NewReader(e.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	fmt.Fprintln(e.out, "Cancelled")
	return false, nil
}

// projectCmd is a command on one project given by --name or --id.
func projectCmd(e *env, cmd *cobra.Command, run func(cmd *cobra.Command, c *api.Client, p *api.Project) error) *cobra.Command {
	cmd.Args = cobra.NoArgs
	which := nameOrIDFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ref, err := which()
		if err != nil {
			return err
		}
		c, err := e.client()
		if err != nil {
			return err
		}
		p, err := findProject(cmd.Context(), c, ref)
		if err != nil {
			return err
		}
		return run(cmd, c, p)
	}
	return cmd
}

func newProjectRestore(e *env) *cobra.Command {
	return projectCmd(e, &cobra.Command{Use: "restore", Short: "Restore a soft-deleted project", Example: "  coligo project restore --name myproject"},
		func(cmd *cobra.Command, c *api.Client, p *api.Project) error {
			if _, err := c.RestoreProject(cmd.Context(), p.ID); err != nil {
				return err
			}
			_, err := fmt.Fprintf(e.out, "Restored project %s\n", p.Name)
			return err
		})
}

func newProjectRotateKey(e *env) *cobra.Command {
	return projectCmd(e, &cobra.Command{Use: "rotate-key", Short: "Give a project a new data key; its records are sealed again in the background",
		Example: "  coligo project rotate-key --name myproject"},
		func(cmd *cobra.Command, c *api.Client, p *api.Project) error {
			rotated, err := c.RotateProjectKey(cmd.Context(), p.ID)
			if err != nil {
				return err
			}
			version := 0
			if rotated.Encryption != nil {
				version = rotated.Encryption.KeyVersion
			}
			_, err = fmt.Fprintf(e.out, "Project %s has data key version %d; its records are being sealed again\n", p.Name, version)
			return err
		})
}

// currentProject is the project a resource command works in: --project,
// else COLIGO_PROJECT, else the selected one.
func (e *env) currentProject(ctx context.Context, c *api.Client) (string, error) {
	ref := first(e.project, os.Getenv("COLIGO_PROJECT"))
	if ref == "" {
		cfg, err := loadConfig()
		if err != nil {
			return "", err
		}
		if cfg.Project == "" {
			return "", errors.New("no project selected: run 'coligo project select --name P', or give --project")
		}
		return cfg.Project, nil
	}
	p, err := findProject(ctx, c, ref)
	if err != nil {
		return "", err
	}
	return p.ID, nil
}
