package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/rollback"
	"github.com/coffer-backup/coffer/storage"
)

// listEntry is one row of `coffer list --json`.
type listEntry struct {
	Job          string    `json:"job"`
	ID           string    `json:"id"`
	Started      time.Time `json:"started"`
	Finished     time.Time `json:"finished"`
	Source       string    `json:"source"`
	PlainBytes   int64     `json:"plain_bytes"`
	StoredBytes  int64     `json:"stored_bytes"`
	Destinations []string  `json:"destinations"`
	Missing      []string  `json:"missing_from"`
	// Sequence is the backup's sequence number; SignedBy the id of the key
	// whose signature on its manifest verified (empty when signatures were
	// skipped).
	Sequence int64  `json:"sequence,omitempty"`
	SignedBy string `json:"signed_by,omitempty"`
	Error    string `json:"error,omitempty"`
}

// listOutput is `coffer list --json`.
type listOutput struct {
	Backups     []listEntry       `json:"backups"`
	Unreachable map[string]string `json:"unreachable"`
}

func newListCmd(g *globals) *cobra.Command {
	var job string
	var asJSON, skipSignature bool
	cmd := &cobra.Command{
		Use:   "list [--job NAME]",
		Short: "List complete backups and which destinations hold each",
		Long: `List the backups that have a manifest (only those exist: a payload without
a manifest is a failed or running upload) with their size and the
destinations that hold them. A backup whose manifest fails its signature
check (against signing.public_keys) shows the error instead of its details;
--insecure-skip-signature shows it anyway, with a warning. The newest
backup's sequence number is compared with the highest seen before, as
verify does. Exit 1 when a destination cannot be listed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, jobs, err := g.loadJobs(job, job == "")
			if err != nil {
				return err
			}
			log := g.logger()
			defer log.Sync()
			trust, err := readTrust(cfg, skipSignature, log)
			if err != nil {
				return err
			}
			out := listOutput{Backups: []listEntry{}, Unreachable: map[string]string{}}
			for _, j := range jobs {
				dests, err := openStores(cmd.Context(), cfg, j, "")
				if err != nil {
					return err
				}
				entries, unreachable := restore.Catalog(cmd.Context(), j.Name, dests)
				for n, err := range unreachable {
					out.Unreachable[n] = err.Error()
				}
				var newest *rollback.Mark
				for _, e := range entries {
					le := describeEntry(cmd, dests, j.Destinations, e, trust)
					out.Backups = append(out.Backups, le)
					if m := verifiedMark(le.ID, le.Sequence, le.SignedBy); m != nil {
						newest = m
					}
				}
				if w := observeNewest(cfg, j, dests, newest, log); w != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
				}
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				printList(cmd, out)
			}
			if len(out.Unreachable) > 0 {
				return fmt.Errorf("%d destination(s) could not be listed", len(out.Unreachable))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&job, "job", "j", "", "only this job (default: all jobs)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	skipSignatureFlag(cmd, &skipSignature)
	return cmd
}

// describeEntry reads the backup's manifest from the first destination that
// holds it.
func describeEntry(cmd *cobra.Command, dests []storage.Destination, all []string, e restore.Entry, trust manifest.Trust) listEntry {
	le := listEntry{Job: e.Job, ID: e.ID, Destinations: e.Destinations, Missing: e.Missing(all)}
	if le.Missing == nil {
		le.Missing = []string{} // JSON: [], not null
	}
	m, err := restore.ReadManifest(cmd.Context(), e, dests, trust)
	if err != nil {
		le.Started, _ = manifest.IDTime(e.ID)
		le.Error = strings.ReplaceAll(err.Error(), "\n", "; ") // one line per backup
		return le
	}
	le.Started, le.Finished = m.Started, m.Finished
	le.Source = m.Source.Kind + " " + m.Source.Database
	le.PlainBytes, le.StoredBytes = m.Plain.Bytes, m.Payload.Bytes
	le.Sequence, le.SignedBy = m.Sequence, m.SignedBy
	return le
}

func printList(cmd *cobra.Command, out listOutput) {
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tBACKUP\tTAKEN (UTC)\tDUMP\tSTORED\tDESTINATIONS")
	for _, b := range out.Backups {
		where := strings.Join(b.Destinations, ",")
		if len(b.Missing) > 0 {
			where += " (missing: " + strings.Join(b.Missing, ",") + ")"
		}
		if b.Error != "" {
			where += " (manifest unreadable: " + b.Error + ")"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Job, b.ID, b.Started.UTC().Format("2006-01-02 15:04"),
			humanBytes(b.PlainBytes), humanBytes(b.StoredBytes), where)
	}
	w.Flush()
	if len(out.Backups) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "(no complete backups)")
	}
	for n, e := range out.Unreachable {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: destination %s could not be listed: %s\n", n, e)
	}
}
