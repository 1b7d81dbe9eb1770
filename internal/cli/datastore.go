package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/coligo/coligo/api"
)

// newDataStoreCmd is Code Engine's "persistentdatastore": references to
// buckets of an object store, mountable into apps and jobs.
func newDataStoreCmd(e *env) *cobra.Command {
	cmd := e.projectGroup("persistentdatastore", []string{"pds"}, "Manage persistent data stores (buckets) of the selected project")
	cmd.Long = `A persistent data store names a bucket of an S3-compatible object store and an
hmac_auth secret to reach it with; apps and jobs mount it with
--mount-data-store DIR=STORE[:SUBPATH]. The bucket must exist; nothing
contacts the store until an instance mounts it, so a wrong bucket or key
shows as an instance that fails with persistent_data_store_mount_failed.`
	cmd.AddCommand(newDataStoreCreate(e), newDataStoreGet(e), newDataStoreList(e),
		newDeleteCmd(e, "persistent data store", func(c *api.Client, cmd *cobra.Command, project, name string) error {
			return c.DeletePersistentDataStore(cmd.Context(), project, name)
		}))
	return cmd
}

func (e *env) printDataStore(d *api.PersistentDataStore, headline string) error {
	return e.printOne(d, headline, func(w io.Writer) {
		fmt.Fprintf(w, "Name:\t%s\nType:\t%s\nCOS bucket:\t%s\nAccess secret:\t%s\nBucket region:\t%s\nEntity Tag:\t%s\n",
			d.Name, d.StorageType, d.Data["bucket_name"], d.Data["secret_name"], d.Data["bucket_location"], d.EntityTag)
	})
}

func newDataStoreCreate(e *env) *cobra.Command {
	var name, bucket, secret, location string
	cmd := &cobra.Command{
		Use: "create", Short: "Name a bucket of an object store, to mount into apps and jobs", Args: cobra.NoArgs,
		Example: "  coligo persistentdatastore create --name results --cos-bucket-name my-results --cos-access-secret hmac --cos-bucket-location eu-de",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			d, err := c.CreatePersistentDataStore(cmd.Context(), project, api.PersistentDataStorePrototype{Name: name, StorageType: "object_storage",
				Data: map[string]string{"bucket_name": bucket, "secret_name": secret, "bucket_location": location}})
			if err != nil {
				return err
			}
			return e.printDataStore(d, "Created persistent data store "+d.Name)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&name, "name", "n", "", "data store name")
	fs.StringVar(&bucket, "cos-bucket-name", "", "the bucket, which must exist")
	fs.StringVar(&secret, "cos-access-secret", "", "hmac_auth secret with the bucket's access_key_id and secret_access_key")
	fs.StringVar(&location, "cos-bucket-location", "", "the bucket's location, one the server has an object store for (--object-storage)")
	alias := map[string]string{"cos-bucket": "cos-bucket-name", "cos-sec": "cos-access-secret", "cos-loc": "cos-bucket-location"}
	fs.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if long, ok := alias[name]; ok {
			name = long
		}
		return pflag.NormalizedName(name)
	})
	for _, f := range []string{"name", "cos-bucket-name", "cos-access-secret"} {
		cmd.MarkFlagRequired(f)
	}
	return cmd
}

func newDataStoreGet(e *env) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use: "get", Short: "Show a persistent data store", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			d, err := c.GetPersistentDataStore(cmd.Context(), project, name)
			if err != nil {
				return err
			}
			return e.printDataStore(d, "")
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "data store name")
	cmd.MarkFlagRequired("name")
	return cmd
}

func newDataStoreList(e *env) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the persistent data stores", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, project, err := e.clientAndProject(cmd)
			if err != nil {
				return err
			}
			all, err := c.AllPersistentDataStores(cmd.Context(), project)
			if err != nil {
				return err
			}
			return e.print(all, func(w io.Writer) {
				fmt.Fprintln(w, "Name\tCOS bucket\tAccess secret\tBucket region\tAge")
				for _, d := range all {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", d.Name, d.Data["bucket_name"], d.Data["secret_name"], d.Data["bucket_location"], age(d.CreatedAt))
				}
			})
		},
	}
}
