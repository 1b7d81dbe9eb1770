package cli

import (
	"fmt"
	"io"
	"sort"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
)

func newConfigMapCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("configmap", []string{"cm"}, "Manage config maps of the selected project")
	cmd.AddCommand(newConfigMapCreate(e), newConfigMapUpdate(e), newConfigMapGet(e), newConfigMapList(e),
		newDeleteCmd(e, "configmap", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeleteConfigMap(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printConfigMap(cm *api.ConfigMap, headline string) error {
	return e.printOne(cm, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nID:\t%s\nCreated:\t%s\nEntity Tag:\t%s\nData:\t\n", cm.Name, cm.ID, cm.CreatedAt, cm.EntityTag)
		keys := make([]string, 0, len(cm.Data))
		for k := range cm.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  %s:\t%s\n", k, cm.Data[k])
		}
	})
}

func newConfigMapCreate(e *env) *cobra.Command {
	var name string
	var df dataFlags
	cmd := &cobra.Command{
		Use: "create", Short: "Create a config map", Args: cobra.NoArgs,
		Example: "  coligo configmap create --name settings --from-literal LOG_LEVEL=debug --from-env-file app.env",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := df.collect()
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			cm, err := c.CreateConfigMap(cmd.Context(), project, api.ConfigMapPrototype{Name: name, Data: data})
			if err != nil {
				return err
			}
			return e.printConfigMap(cm, "Created configmap "+cm.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "config map name")
	df.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newConfigMapUpdate(e *env) *cobra.Command {
	var name string
	var rm []string
	var df dataFlags
	cmd := &cobra.Command{
		Use: "update", Short: "Add, change or remove keys of a config map", Args: cobra.NoArgs,
		Example: "  coligo configmap update --name settings --from-literal LOG_LEVEL=info --rm OLD",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := df.collect()
			if err != nil {
				return err
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			cur, err := c.GetConfigMap(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			merged := cur.Data
			if merged == nil {
				merged = map[string]string{}
			}
			for k, v := range data {
				merged[k] = v
			}
			for _, k := range rm {
				delete(merged, k)
			}
			cm, err := c.ReplaceConfigMap(cmd.Context(), project, name, cur.EntityTag, api.ConfigMapReplace{Data: merged})
			if err != nil {
				return err
			}
			return e.printConfigMap(cm, "Updated configmap "+cm.Name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "config map name")
	cmd.Flags().StringArrayVar(&rm, "rm", nil, "key to remove (repeatable)")
	df.add(cmd)
	cmd.MarkFlagRequired("name")
	return cmd
}

func newConfigMapGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a config map", Args: cobra.NoArgs, Example: "  coligo configmap get --name settings",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			cm, err := c.GetConfigMap(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printConfigMap(cm, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "config map name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newConfigMapList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List config maps", Args: cobra.NoArgs, Example: "  coligo configmap list",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			project, err := e.currentProject(cmd.Context(), c)
			if err != nil {
				return err
			}
			all, err := c.AllConfigMaps(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(all, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tData\tAge")
				for _, cm := range all {
					fmt.Fprintf(w, "%s\t%d\t%s\n", cm.Name, len(cm.Data), age(cm.CreatedAt))
				}
			})
		},
	}
}
