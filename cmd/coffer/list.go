package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/rollback"
	"github.com/coffer-backup/coffer/manifest"
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
}

// listOutput is `coffer list --json`.
type listOutput struct {
	Backups     []listEntry       `json:"backups"`
	Unreachable map[string]string `json:"unreachable"`
	// Untrusted are manifest keys that are not used, with the reason;
	// Incomplete are verified manifests whose payload is missing or short
	// on a destination. Both are sorted by job, destination and key (id).
	Untrusted  []untrustedKey  `json:"untrusted"`
	Incomplete []incompleteKey `json:"incomplete"`
}

// untrustedKey is a manifest key of a job that is not used, and why.
type untrustedKey struct {
	Job string `json:"job"`
	manifest.Untrusted
}

// incompleteKey is a verified manifest of a job whose payload is not
// whole on a destination.
type incompleteKey struct {
	Job string `json:"job"`
	manifest.Incomplete
}

// problemsOf returns c's untrusted keys and incomplete copies, sorted by
// destination and key (id), never nil.
func problemsOf(c *manifest.Catalog) ([]untrustedKey, []incompleteKey) {
	us, ins := []untrustedKey{}, []incompleteKey{}
	for _, u := range c.Untrusted {
		us = append(us, untrustedKey{c.Job, u})
	}
	for _, in := range c.Incomplete {
		ins = append(ins, incompleteKey{c.Job, in})
	}
	slices.SortFunc(us, func(a, b untrustedKey) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.Key, b.Key))
	})
	slices.SortFunc(ins, func(a, b incompleteKey) int {
		return cmp.Or(cmp.Compare(a.Destination, b.Destination), cmp.Compare(a.ID, b.ID))
	})
	return us, ins
}

// printProblems writes untrusted keys and incomplete copies as tables
// (nothing when there are none).
func printProblems(out io.Writer, us []untrustedKey, ins []incompleteKey) {
	if len(us) > 0 {
		fmt.Fprintf(out, "\nNOT TRUSTED, NOT USED (%d manifest key(s); planted, forged or damaged?):\n", len(us))
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "JOB\tDESTINATION\tKEY\tREASON")
		for _, u := range us {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Job, u.Destination, u.Key, u.Reason)
		}
		w.Flush()
	}
	if len(ins) > 0 {
		fmt.Fprintf(out, "\nINCOMPLETE, NOT COUNTED THERE (%d cop(ies)):\n", len(ins))
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "JOB\tDESTINATION\tBACKUP\tREASON")
		for _, in := range ins {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", in.Job, in.Destination, in.ID, in.Reason)
		}
		w.Flush()
	}
}

func newListCmd(g *globals) *cobra.Command {
	var job string
	var asJSON, skipSignature bool
	cmd := &cobra.Command{
		Use:   "list [--job NAME]",
		Short: "List verified backups and which destinations hold each",
		Long: `List the backups whose manifest verifies (signature against
signing.public_keys, and it describes the backup its key names) and whose
payload is present at the recorded size, with their size and the
destinations that hold them whole. A payload without a manifest is a failed
or running upload, not a backup.

Every other manifest key is listed after the backups, as not trusted and
not used, with its reason (someone with write access to a bucket may have
planted or forged it); a verified manifest whose payload is missing or
short is listed as incomplete. --insecure-skip-signature uses manifests
whose signature fails anyway, with a warning. The newest backup's sequence
number is compared with the highest seen before, as verify does. Exit 1
when a destination cannot be listed.`,
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
			out := listOutput{Backups: []listEntry{}, Unreachable: map[string]string{}, Untrusted: []untrustedKey{}, Incomplete: []incompleteKey{}}
			for _, j := range jobs {
				dests, err := openStores(cmd.Context(), cfg, j, "")
				if err != nil {
					return err
				}
				c := manifest.ReadCatalog(cmd.Context(), j.Name, dests, trust, nil)
				for n, err := range c.Unreachable {
					out.Unreachable[n] = err.Error()
				}
				us, ins := problemsOf(c)
				out.Untrusted = append(out.Untrusted, us...)
				out.Incomplete = append(out.Incomplete, ins...)
				var newest *rollback.Mark
				for _, b := range c.Backups {
					le := describeBackup(j, b)
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

// describeBackup is the list row of verified backup b of job j.
func describeBackup(j *config.Job, b manifest.Backup) listEntry {
	m := b.Manifest
	le := listEntry{Job: j.Name, ID: b.ID, Destinations: b.Destinations, Missing: b.Missing(j.Destinations)}
	if le.Missing == nil {
		le.Missing = []string{} // JSON: [], not null
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
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", b.Job, b.ID, b.Started.UTC().Format("2006-01-02 15:04"),
			humanBytes(b.PlainBytes), humanBytes(b.StoredBytes), where)
	}
	w.Flush()
	if len(out.Backups) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), "(no complete backups)")
	}
	printProblems(cmd.OutOrStdout(), out.Untrusted, out.Incomplete)
	for _, n := range slices.Sorted(maps.Keys(out.Unreachable)) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: destination %s could not be listed: %s\n", n, out.Unreachable[n])
	}
}
