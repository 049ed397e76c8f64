package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
)

func newAuditCmd(g *globals) *cobra.Command {
	var since, format, output string
	cmd := &cobra.Command{
		Use:   "audit [--since 30d] [--format csv|json] [-o FILE]",
		Short: "Export the audit trail (backups, restores, prunes, leases...) as CSV or JSON",
		Long: `Export the audit trail: every backup and partial run, prune deletion (with
the retention rule), purge, restore, repair, sweep, configuration reload,
lease change and drill, one row per event, oldest first.

Events come from this host's local log (in the state directory) and from
the audit objects every host shipped to the first destination of each job;
each event appears once. --since 0 exports everything. CSV cells that a
spreadsheet would run as formulas are prefixed with a single quote.

Exit 1 when a destination cannot be read or holds a malformed event, or
when two copies of one event differ (the export is still written, with the
first copy; run coffer audit verify to see which was changed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := config.ParseDuration(since)
			if err != nil {
				return usageErr(fmt.Errorf("--since: %w", err))
			}
			if d < 0 {
				return usageErr(fmt.Errorf("--since %s: must not be negative", since))
			}
			var write func(io.Writer, []audit.Event) error
			switch format {
			case "csv":
				write = audit.WriteCSV
			case "json":
				write = audit.WriteJSON
			default:
				return usageErr(fmt.Errorf("--format %q: want csv or json", format))
			}
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			file, err := auditFile(cfg)
			if err != nil {
				return err
			}
			stores, err := auditStores(cmd, cfg)
			if err != nil {
				return err
			}
			var from time.Time
			if d > 0 {
				from = time.Now().Add(-d.D())
			}
			evs, err := audit.Read(cmd.Context(), file, stores, from)
			var disagree *audit.DisagreementError
			if err != nil && !errors.As(err, &disagree) {
				return err
			}
			readErr := err // copies that differ: export, then fail
			if output == "" || output == "-" {
				if err := write(cmd.OutOrStdout(), evs); err != nil {
					return err
				}
				return readErr
			}
			if err := writeFile(output, func(w io.Writer) error { return write(w, evs) }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d events to %s\n", len(evs), output)
			return readErr
		},
	}
	cmd.AddCommand(newAuditVerifyCmd(g))
	cmd.Flags().StringVar(&since, "since", "30d", "only events newer than this (e.g. 7d, 2w, 12h; 0 for all)")
	cmd.Flags().StringVar(&format, "format", "csv", "output format: csv or json")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to FILE (created 0600) instead of standard output")
	return cmd
}

// auditStores opens the destinations the audit trail is shipped to.
func auditStores(cmd *cobra.Command, cfg *config.Config) ([]storage.Store, error) {
	dests, err := auditDestinations(cmd, cfg)
	if err != nil {
		return nil, err
	}
	stores := make([]storage.Store, len(dests))
	for i, d := range dests {
		stores[i] = d.Store
	}
	return stores, nil
}

// writeFile writes path (0600) with fill, removing it if fill or the
// close fails so no truncated export is left behind.
func writeFile(path string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return usageErr(err)
	}
	err = fill(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
