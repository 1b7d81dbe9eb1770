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
		Long: `List security events: every call that changes something (who, what kind,
which resource, success or failure), secret value reads, key rotations and
deletions of projects. Each entry carries the hash of the one before, and the
chain's start and head are MACed with a key the database does not hold, so a
removed, altered or appended entry, a cut-off end or a rewritten chain is
detectable: --verify (with an admin token, over the whole log) has the server
check it and recomputes the chain here too.
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
				rep, err := c.VerifyAuditEvents(cmd.Context())
				if err != nil {
					return err
				}
				if !rep.Valid {
					return fmt.Errorf("the audit log does not verify: %s", rep.Problem)
				}
				if err := verifyAudit(evs); err != nil {
					return fmt.Errorf("the audit log does not verify here: %w", err)
				}
			}
			return e.print(evs, func(w io.Writer) {
				fmt.Fprintln(w, "Seq\tTime\tAction\tOutcome\tProject\tTarget\tActor")
				for _, ev := range evs {
					target := ev.TargetName
					if target == "" {
						target = ev.Target
					}
					if target == "" && ev.TargetHash != "" {
						target = "sha256:" + ev.TargetHash[:16]
					}
					outcome := first(ev.Outcome, "-")
					if ev.StatusCode != 0 {
						outcome += fmt.Sprintf(" (%d)", ev.StatusCode)
					}
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", ev.Seq, ev.Time, ev.Action, outcome, first(ev.ProjectID, "-"), first(target, "-"), ev.Actor)
				}
				if verify {
					fmt.Fprintf(w, "Verified: %d entries chain without a gap or alteration, from an anchored start to an anchored head\n", len(evs))
				}
			})
		},
	}
	list.Flags().StringVar(&project, "project", "", "only the events of this project (name or id)")
	list.Flags().BoolVar(&verify, "verify", false, "check the hash chain of the whole log")
	cmd.AddCommand(list)
	return cmd
}

// verifyAudit recomputes the hash chain of the listed events, from the
// first as listed (the server checks where it starts and ends against the
// audit key, which the client does not hold).
func verifyAudit(evs []api.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	chain := make([]core.AuditEvent, 0, len(evs))
	for _, ev := range evs {
		t, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil {
			return fmt.Errorf("entry %d: time %q: %w", ev.Seq, ev.Time, err)
		}
		chain = append(chain, core.AuditEvent{Seq: ev.Seq, Time: t, Actor: ev.Actor, Action: ev.Action, Kind: ev.Kind, Outcome: ev.Outcome,
			StatusCode: ev.StatusCode, ProjectID: ev.ProjectID, Target: ev.Target, TargetHash: ev.TargetHash, PrevHash: ev.PrevHash, Hash: ev.Hash})
	}
	return core.VerifyAuditChain(chain, evs[0].Seq, evs[0].PrevHash)
}
