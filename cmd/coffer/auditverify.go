package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [--json]",
		Short: "Check the audit trail's hash chains and signed heads; name the first broken event",
		Long: `Check the audit trail: this host's local log and the objects every host
shipped to the first destination of each job.

Each event carries the hash of the line before it in its log (seq, prev);
each shipped object has a head, signed with the manifest signing key, over
its bytes and its last line's hash, checked with signing.public_keys. For
every trail (the local log; per destination, each host's objects) verify
names the first broken event: file or object, line, event id and what is
wrong: edited, removed, reordered, inserted, bad_signature, unsigned_head.
Two copies of one event that differ (local and shipped) are reported as a
disagreement. Events written before the chain existed are "unchained":
unproven, not broken.

Exit 0 when intact, 1 when anything is broken, 2 on a usage or
configuration error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			file, err := auditFile(cfg)
			if err != nil {
				return err
			}
			dests, err := auditDestinations(cmd, cfg)
			if err != nil {
				return err
			}
			v, err := audit.Verify(cmd.Context(), file, dests, cfg.Signing.Verifier())
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else {
				writeVerification(cmd.OutOrStdout(), v)
			}
			if !v.Intact {
				p := v.FirstProblem()
				return fmt.Errorf("the audit trail is broken: %s", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// auditDestinations opens the destinations the audit trail is shipped to.
func auditDestinations(cmd *cobra.Command, cfg *config.Config) ([]storage.Destination, error) {
	var out []storage.Destination
	for _, name := range audit.Destinations(cfg) {
		s, err := open.Store(cmd.Context(), cfg.Destinations[name])
		if err != nil {
			return nil, err
		}
		out = append(out, storage.Destination{Name: name, Store: s})
	}
	return out, nil
}

// writeVerification prints v for people: one paragraph per trail.
func writeVerification(w io.Writer, v *audit.Verification) {
	if len(v.Trails) == 0 {
		fmt.Fprintln(w, "no audit trail found (no local log, nothing shipped)")
	}
	for _, t := range v.Trails {
		fmt.Fprintf(w, "%s: %s, %d events (%d chained, %d unchained)", t.Trail, t.Status, t.Events, t.Chained, t.Unchained)
		if t.Objects > 0 {
			fmt.Fprintf(w, "; objects: %d, signed heads verified: %d", t.Objects, t.SignedHeads)
		}
		fmt.Fprintln(w)
		for i, p := range t.Problems {
			label := "  also"
			if i == 0 {
				label = "  first broken event"
			}
			fmt.Fprintf(w, "%s: %s\n", label, problemLine(p))
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	for _, p := range v.Disagreements {
		fmt.Fprintf(w, "%s: %s\n", p.Trail, problemLine(p))
	}
	if v.Intact {
		fmt.Fprintln(w, "audit trail intact")
	} else {
		fmt.Fprintln(w, "audit trail BROKEN")
	}
}

// problemLine describes p without its trail.
func problemLine(p audit.Problem) string {
	s := p.Object
	if p.Line > 0 {
		s += fmt.Sprintf(" line %d", p.Line)
	}
	if p.EventID != "" {
		s += ", event " + p.EventID
	}
	return fmt.Sprintf("%s: %s: %s", s, p.Kind, p.Detail)
}
