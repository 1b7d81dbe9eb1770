package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newAdminCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Server administration (admin token)"}
	var provider string
	rotate := &cobra.Command{
		Use: "rotate-root-key", Short: "Give a root key a new version; data keys are re-wrapped in the background", Args: cobra.NoArgs,
		Long: `Give the local root key a new version. The server archives the old version,
wraps new data keys with the new one at once, and re-wraps every project's
data key in the background: no record is encrypted again and nothing stops;
a restart in the middle resumes. Each project's encryption.key_id shows the
version that wraps its key. A KMS key rotates in the KMS instead: coligo
follows the key_id its plugin reports.`,
		Example: "  coligo admin rotate-root-key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			id, err := c.RotateRootKey(cmd.Context(), provider)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(e.out, "Root key of %s rotated: new version %s; data keys are being re-wrapped\n", provider, id)
			return err
		},
	}
	rotate.Flags().StringVar(&provider, "provider", "local", "key provider")
	cmd.AddCommand(rotate)
	return cmd
}
