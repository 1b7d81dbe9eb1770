package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	var output string
	backup := &cobra.Command{
		Use: "backup", Short: "Write a consistent copy of the server's store, taken while it serves", Args: cobra.NoArgs,
		Long: `Write a consistent copy of the server's store: every write acknowledged
before the backup began, none after. Records stay sealed: the copy is of no
use without the root key (root.key, or --root-key-file) and the KMS keys that
wrap the projects' data keys, so keep those apart from backups. A backup
taken before a project was hard-deleted still holds that project's wrapped
data key, and so its data, until the backup is destroyed (and, for a local
root key, until the key version that wraps it is retired).

Restore with 'coligo server --restore FILE' on a data dir that has the same
root key and no store.`,
		Example: "  coligo admin backup > coligo-backup.db\n  coligo admin backup -o /backups/coligo-$(date +%F).db",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			if output == "" || output == "-" {
				return c.Backup(cmd.Context(), e.out)
			}
			return writeFileAtomic(output, func(w io.Writer) error { return c.Backup(cmd.Context(), w) })
		},
	}
	backup.Flags().StringVarP(&output, "output", "o", "-", "file to write (- for standard output); written whole or not at all")
	cmd.AddCommand(rotate, backup)
	return cmd
}

// writeFileAtomic writes a file through a temporary one beside it, synced
// and renamed into place only when write succeeded.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
