package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

// newConnectivityCmd is Code Engine's "connectivity outbound": the allowed
// outbound destinations of the selected project.
func newConnectivityCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("connectivity", []string{"conn"}, "Manage the network connectivity of the selected project")
	out := &cobra.Command{Use: "outbound", Aliases: []string{"out"}, Short: "Manage allowed outbound destinations (a new project has allow-all, 0.0.0.0/0)",
		Long: `Allowed outbound destinations are the CIDR blocks the project's apps and
jobs may reach. A new project has one, allow-all (0.0.0.0/0); with none left,
instances reach nothing outside the project. Private ranges (10.0.0.0/8,
172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10) open only for a destination
inside them, never through allow-all; this host, the link-local range and
other projects never open.`}
	out.AddCommand(newOutboundCreate(e), newOutboundUpdate(e), newOutboundGet(e), newOutboundList(e),
		newDeleteCmd(e, "outbound destination", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteAllowedOutboundDestination(cmd.Context(), project, name)
		}))
	cmd.AddCommand(out)
	return cmd
}

func (e *env) printOutbound(d *api.AllowedOutboundDestination, headline string) error {
	return e.printOne(d, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nFormat:\t%s\nIP address range:\t%s\nStatus:\t%s\nEntity Tag:\t%s\n", d.Name, d.Type, d.CIDRBlock, d.Status, d.EntityTag)
	})
}

func newOutboundCreate(e *env) *cobra.Command {
	var name, cidr, format string
	cmd := &cobra.Command{
		Use: "create", Short: "Allow an outbound destination (a CIDR block)", Args: cobra.NoArgs,
		Example: "  coligo connectivity outbound create --name lan --cidr 10.250.0.0/24",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			switch format {
			case "cidr", "cidr_block":
				format = "cidr_block"
			case "pps", "private_path_gateway_service":
				format = "private_path_service_gateway"
			}
			d, err := c.CreateAllowedOutboundDestination(cmd.Context(), project, api.AllowedOutboundDestinationPrototype{Name: name, Type: format, CIDRBlock: cidr})
			if err != nil {
				return err
			}
			return e.printOutbound(d, "Created outbound destination "+d.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "destination name")
	cmd.Flags().StringVarP(&cidr, "cidr", "c", "", "IPv4 CIDR block, e.g. 10.250.0.0/24")
	cmd.Flags().StringVar(&format, "format", "cidr_block", "cidr_block (cidr); private path services are IBM Cloud only")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newOutboundUpdate(e *env) *cobra.Command {
	var name, cidr string
	cmd := &cobra.Command{
		Use: "update", Short: "Change the CIDR block of an outbound destination", Args: cobra.NoArgs,
		Example: "  coligo connectivity outbound update --name lan --cidr 10.250.0.0/16",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			d, err := c.UpdateAllowedOutboundDestination(cmd.Context(), project, name, "*", api.AllowedOutboundDestinationPatch{CIDRBlock: cidr})
			if err != nil {
				return err
			}
			return e.printOutbound(d, "Updated outbound destination "+d.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "destination name")
	cmd.Flags().StringVarP(&cidr, "cidr", "c", "", "the new IPv4 CIDR block")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("cidr")
	return cmd
}

func newOutboundGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show an outbound destination", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			d, err := c.GetAllowedOutboundDestination(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printOutbound(d, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "destination name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newOutboundList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the allowed outbound destinations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			dests, err := c.AllAllowedOutboundDestinations(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(dests, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tIP address range\tStatus")
				for _, d := range dests {
					fmt.Fprintf(w, "%s\t%s\t%s\n", d.Name, d.CIDRBlock, d.Status)
				}
			})
		},
	}
}
