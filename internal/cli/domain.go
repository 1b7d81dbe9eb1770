package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/api"
)

// newDomainMappingCmd is Code Engine's "domainmapping": names of the
// user's served, with their TLS secret's certificate, as an app or a
// function of the selected project.
func newDomainMappingCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("domainmapping", []string{"dm"}, "Manage custom domain mappings of the selected project")
	cmd.Long = `A domain mapping serves a name of yours as an app or a function, over HTTPS
with the certificate of a tls secret (its chain, leaf first, in tls_cert; its
key in tls_key) and over HTTP. Point a CNAME record of the name at the
mapping's CNAME target. A name is served by one project of the server only.`
	cmd.AddCommand(newDomainMappingCreate(e), newDomainMappingUpdate(e), newDomainMappingGet(e), newDomainMappingList(e), newDomainMappingDelete(e))
	return cmd
}

// domainFlags are Code Engine's names of the domain mapping flags.
type domainFlags struct{ name, target, targetType, secret string }

func (f *domainFlags) add(cmd *cobra.Command, create bool) {
	fs := cmd.Flags()
	fs.StringVarP(&f.name, "domain-name", "n", "", "the fully qualified domain name, e.g. www.example.com")
	cmd.MarkFlagRequired("domain-name")
	if create || cmd.Name() == "update" {
		fs.StringVarP(&f.target, "target", "t", "", "name of the app or function to serve")
		fs.StringVar(&f.targetType, "target-type", "", "app (application) or function (default app)")
		fs.StringVar(&f.secret, "tls-secret", "", "tls secret with the certificate chain and key for the name")
		if create {
			cmd.MarkFlagRequired("target")
			cmd.MarkFlagRequired("tls-secret")
		}
	}
	alias := map[string]string{"dn": "domain-name", "name": "domain-name", "type": "target-type", "secret": "tls-secret", "tls": "tls-secret"}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := alias[name]; ok {
			name = long
		}
		return pflag.NormalizedName(name)
	})
}

// component is the target the flags name.
func (f *domainFlags) component() (api.DomainMappingComponent, error) {
	c := api.DomainMappingComponent{Name: f.target}
	switch f.targetType {
	case "", "app", "application":
		c.ResourceType = "app_v2"
	case "function", "fn":
		c.ResourceType = "function_v2"
	default:
		return c, fmt.Errorf("--target-type %q is not app or function", f.targetType)
	}
	return c, nil
}

func (e *env) printDomainMapping(d *api.DomainMapping, headline string) error {
	return e.printOne(d, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Domain Name:\t%s\nCNAME:\t%s\nTarget Name:\t%s\nTarget Type:\t%s\nTLS Secret:\t%s\nStatus:\t%s\n",
			d.Name, d.CnameTarget, d.Component.Name, targetType(d.Component.ResourceType), d.TLSSecret, d.Status)
		if d.StatusDetails.Message != "" {
			fmt.Fprintf(w, "Reason:\t%s: %s\n", d.StatusDetails.Reason, d.StatusDetails.Message)
		}
		fmt.Fprintf(w, "Entity Tag:\t%s\n", d.EntityTag)
	})
}

func targetType(rt string) string {
	if rt == "function_v2" {
		return "function"
	}
	return "application"
}

func newDomainMappingCreate(e *env) *cobra.Command {
	var f domainFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Serve a domain name as an app or a function", Args: cobra.NoArgs,
		Example: "  coligo domainmapping create --domain-name www.example.com --target web --tls-secret www-tls",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			comp, err := f.component()
			if err != nil {
				return err
			}
			d, err := c.CreateDomainMapping(cmd.Context(), project, api.DomainMappingPrototype{Name: f.name, Component: comp, TLSSecret: f.secret})
			if err != nil {
				return err
			}
			return e.printDomainMapping(d, "Created domain mapping "+d.Name+"; point a CNAME record of it at "+d.CnameTarget)
		},
	}
	f.add(cmd, true)
	return cmd
}

func newDomainMappingUpdate(e *env) *cobra.Command {
	var f domainFlags
	cmd := &cobra.Command{
		Use: "update", Short: "Change what a domain name serves, or its TLS secret", Args: cobra.NoArgs,
		Example: "  coligo domainmapping update --domain-name www.example.com --tls-secret www-tls-2026",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			var p api.DomainMappingPatch
			if f.target != "" || f.targetType != "" {
				comp, err := f.component()
				if err != nil {
					return err
				}
				if comp.Name == "" {
					cur, err := c.GetDomainMapping(cmd.Context(), project, f.name)
					if err != nil {
						return err
					}
					comp.Name = cur.Component.Name
				}
				p.Component = &comp
			}
			p.TLSSecret = f.secret
			if p.Component == nil && p.TLSSecret == "" {
				return fmt.Errorf("give --target, --target-type or --tls-secret")
			}
			d, err := c.UpdateDomainMapping(cmd.Context(), project, f.name, "*", p)
			if err != nil {
				return err
			}
			return e.printDomainMapping(d, "Updated domain mapping "+d.Name)
		},
	}
	f.add(cmd, false)
	return cmd
}

func newDomainMappingGet(e *env) *cobra.Command {
	var f domainFlags
	cmd := &cobra.Command{
		Use: "get", Short: "Show a domain mapping", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			d, err := c.GetDomainMapping(cmd.Context(), project, f.name)
			if err != nil {
				return err
			}
			return e.printDomainMapping(d, "")
		},
	}
	f.add(cmd, false)
	return cmd
}

func newDomainMappingList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the custom domain mappings", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			all, err := c.AllDomainMappings(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(all, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tCNAME\tTarget\tTarget-Type\tStatus\tSecret Name\tAge")
				for _, d := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.CnameTarget, d.Component.Name, targetType(d.Component.ResourceType), d.Status, d.TLSSecret, age(d.CreatedAt))
				}
			})
		},
	}
}

func newDomainMappingDelete(e *env) *cobra.Command {
	cmd := newDeleteCmd(e, "domain mapping", func(c *api.Client, cmd *cobra.Command, project, name string) error {
		return c.DeleteDomainMapping(cmd.Context(), project, name)
	})
	cmd.Example = "  coligo domainmapping delete --domain-name www.example.com -f"
	// Code Engine's flag is --domain-name; --name stays.
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "domain-name" || name == "dn" {
			name = "name"
		}
		return pflag.NormalizedName(name)
	})
	return cmd
}
