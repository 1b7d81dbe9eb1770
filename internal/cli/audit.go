package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/core"
)

func newAuditCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the security audit log"}
	var project string
	var verify bool
	list := &cobra.Command{
		Use: "list", Short: "List audit events; --verify checks the hash chain", Args: cobra.NoArgs,
		Long: `List security events: token creates and revokes, secret value reads, project
creates, deletes, restores and hard deletes. Each entry carries the hash of
the one before, so a removed or altered entry is detectable: --verify (with an
admin token, over the whole log) recomputes the chain here, in the client.
Names of a project's secrets are shown while the project exists; once it is
hard-deleted only their hashes remain.`,
		Example: "  coligo audit list --verify\n  coligo audit list --project myproject",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			id := ""
			if project != "" {
				p, err := findProject(cmd.Context(), c, project)
				if err != nil {
					return err
				}
				id = p.ID
			}
			if verify && id != "" {
				return fmt.Errorf("--verify checks the whole log; it cannot be combined with --project")
			}
			evs, err := c.AllAuditEvents(cmd.Context(), id)
			if err != nil {
				return err
			}
			if verify {
				if err := verifyAudit(evs); err != nil {
					return fmt.Errorf("the audit log does not verify: %w", err)
				}
			}
			return e.print(evs, func(w io.Writer) {
				fmt.Fprintln(w, "Seq\tTime\tAction\tProject\tTarget\tActor")
				for _, ev := range evs {
					target := ev.TargetName
					if target == "" {
						target = ev.Target
					}
					if target == "" && ev.TargetHash != "" {
						target = "sha256:" + ev.TargetHash[:16]
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.Time, ev.Action, first(ev.ProjectID, "-"), first(target, "-"), ev.Actor)
				}
				if verify {
					fmt.Fprintf(w, "Verified: %d entries chain without a gap or alteration\n", len(evs))
				}
			})
		},
	}
	list.Flags().StringVar(&project, "project", "", "only the events of this project (name or id)")
	list.Flags().BoolVar(&verify, "verify", false, "check the hash chain of the whole log")
	cmd.AddCommand(list)
	return cmd
}

// verifyAudit recomputes the hash chain of the listed events.
func verifyAudit(evs []api.AuditEvent) error {
	chain := make([]core.AuditEvent, 0, len(evs))
	for _, ev := range evs {
		t, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil {
			return fmt.Errorf("entry %d: time %q: %w", ev.Seq, ev.Time, err)
		}
		chain = append(chain, core.AuditEvent{Seq: ev.Seq, Time: t, Actor: ev.Actor, Action: ev.Action, ProjectID: ev.ProjectID,
			Target: ev.Target, TargetHash: ev.TargetHash, SealedTarget: ev.SealedTarget, PrevHash: ev.PrevHash, Hash: ev.Hash})
	}
	return core.VerifyAuditChain(chain)
}
