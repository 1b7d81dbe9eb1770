package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

// newBindCmd is app bind or job bind: a generic secret's keys become the
// component's PREFIX_KEY variables.
func newBindCmd(e *env, kind string) *cobra.Command {
	var name, secret, prefix string
	cmd := &cobra.Command{
		Use: "bind", Short: "Give the " + kind + "'s instances a secret's keys as PREFIX_KEY variables", Args: cobra.NoArgs,
		Example: "  coligo " + kind + " bind --name web --secret db --prefix DB",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			b, err := c.CreateBinding(cmd.Context(), project, api.BindingPrototype{Component: api.BindingComponent{Name: name, ResourceType: kind + "_v2"},
				SecretName: secret, Prefix: prefix})
			if err != nil {
				return err
			}
			return e.printOne(b, fmt.Sprintf("Bound secret %s to %s %s as %s_* (binding %s)", b.SecretName, kind, name, b.Prefix, b.ID), nil)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", kind+" name")
	cmd.Flags().StringVar(&secret, "secret", "", "generic secret of the project to bind")
	cmd.Flags().StringVarP(&prefix, "prefix", "p", "", "prefix of the variables (default: the secret's name in upper snake case)")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("secret")
	return cmd
}

// newUnbindCmd is app unbind or job unbind: one binding, or all of them.
func newUnbindCmd(e *env, kind string) *cobra.Command {
	var name, binding string
	var all bool
	cmd := &cobra.Command{
		Use: "unbind", Short: "Remove bindings of the " + kind + ": its next instances go without their variables", Args: cobra.NoArgs,
		Example: "  coligo " + kind + " unbind --name web --binding 3f1c…\n  coligo " + kind + " unbind --name web --all",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (binding == "") == !all {
				return errors.New("give --binding ID or --all")
			}
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			l, err := c.ListBindings(cmd.Context(), project, api.ListOptions{Limit: 100})
			if err != nil {
				return err
			}
			n := 0
			for _, b := range l.Bindings {
				if b.Component.Name != name || b.Component.ResourceType != kind+"_v2" || !all && b.ID != binding {
					continue
				}
				if err := c.DeleteBinding(cmd.Context(), project, b.ID); err != nil {
					return err
				}
				fmt.Fprintf(e.out, "Unbound secret %s from %s %s (binding %s)\n", b.SecretName, kind, name, b.ID)
				n++
			}
			if n == 0 && !all {
				return fmt.Errorf("%s %s has no binding %s", kind, name, binding)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", kind+" name")
	cmd.Flags().StringVarP(&binding, "binding", "b", "", "binding id")
	cmd.Flags().BoolVarP(&all, "all", "A", false, "every binding of the "+kind)
	cmd.MarkFlagRequired("name")
	return cmd
}
