package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/storage"
)

// jobStatus is one job in `coffer status --json`.
type jobStatus struct {
	Job         string            `json:"job"`
	Source      string            `json:"source"`
	LastBackup  *backupStatus     `json:"last_backup"`
	NextBackup  time.Time         `json:"next_backup"`
	LastDrill   *drillStatus      `json:"last_drill"`
	NextDrill   *time.Time        `json:"next_drill,omitempty"`
	RTOSeconds  float64           `json:"rto_seconds"`
	Unreachable map[string]string `json:"unreachable,omitempty"`
	// Restore is the command that restores the newest backup into a new
	// database now; StockTools does it without Coffer.
	Restore    string `json:"restore_command,omitempty"`
	StockTools string `json:"stock_tools_command,omitempty"`
	// Untrusted are the job's manifest keys that are not used, with the
	// reason; Incomplete its verified manifests whose payload is missing
	// or short on a destination. Each is also a problem.
	Untrusted  []untrustedKey  `json:"untrusted"`
	Incomplete []incompleteKey `json:"incomplete"`
	Problems   []string        `json:"problems"`
}

// backupStatus is a job's newest complete backup.
type backupStatus struct {
	ID           string    `json:"id"`
	Finished     time.Time `json:"finished"`
	AgeSeconds   float64   `json:"age_seconds"`
	PlainBytes   int64     `json:"plain_bytes"`
	StoredBytes  int64     `json:"stored_bytes"`
	Destinations []string  `json:"destinations"`
	Missing      []string  `json:"missing_from"`
}

// drillStatus is a job's newest drill.
type drillStatus struct {
	ID           string       `json:"id"`
	Finished     time.Time    `json:"finished"`
	Result       drill.Result `json:"result"`
	From         string       `json:"from"`
	TotalSeconds float64      `json:"total_seconds"`
	RTORatio     float64      `json:"rto_ratio"`
	Error        string       `json:"error,omitempty"`
}

func newStatusCmd(g *globals) *cobra.Command {
	var job string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status [--job NAME]",
		Short: "One screen for the on-call engineer: last backup, next run, last drill, restore command",
		Long: `Show, per job: the newest backup that verifies and is whole (age, size,
which destinations hold it), when the next backup and drill are due, the
last restore drill against the RTO, and the exact command that restores the
newest backup now, with Coffer and with the stock age and zstd tools.
Manifest keys that do not verify (planted, forged or damaged) are never
used; each is listed with its reason, as is a verified manifest whose
payload is missing or short.

Exit status: 0 when every job has a backup at every destination, no
untrusted or incomplete manifest, and its last drill passed; 1 otherwise
(so it can run in monitoring).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, jobs, err := g.loadJobs(job, job == "")
			if err != nil {
				return err
			}
			now := clock.Now()
			var out []jobStatus
			problems := 0
			for _, j := range jobs {
				st, err := statusOf(cmd.Context(), cfg, j, now)
				if err != nil {
					return err
				}
				problems += len(st.Problems)
				out = append(out, st)
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), out); err != nil {
					return err
				}
			} else {
				for _, st := range out {
					printStatus(cmd.OutOrStdout(), st, now)
				}
			}
			if problems > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("%d problem(s) need attention", problems)}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&job, "job", "j", "", "show one job (default: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

// statusOf gathers one job's status.
func statusOf(ctx context.Context, cfg *config.Config, j *config.Job, now time.Time) (jobStatus, error) {
	st := jobStatus{Job: j.Name, Source: j.Source.Type, RTOSeconds: j.RTO.D().Seconds(), Unreachable: map[string]string{}}
	trust := manifest.ConfiguredTrust(cfg.Signing)
	st.NextBackup = j.BackupSchedule().Next(now.In(j.Location()))
	if j.Drill.Enabled {
		next := j.DrillSchedule().Next(now.In(j.Location()))
		st.NextDrill = &next
	}
	dests, err := openStores(ctx, cfg, j, "")
	if err != nil {
		return st, err
	}
	c := manifest.ReadCatalog(ctx, j.Name, dests, trust, nil)
	for _, n := range slices.Sorted(maps.Keys(c.Unreachable)) {
		err := c.Unreachable[n]
		st.Unreachable[n] = err.Error()
		st.Problems = append(st.Problems, fmt.Sprintf("destination %s unreachable: %v", n, err))
	}
	if b, ok := c.Newest(); !ok {
		st.Problems = append(st.Problems, "no complete backup anywhere")
	} else {
		st.LastBackup = newestBackupStatus(j, b, now)
		if len(st.LastBackup.Missing) > 0 {
			st.Problems = append(st.Problems, "newest backup missing from "+strings.Join(st.LastBackup.Missing, ", "))
		}
		st.Restore, st.StockTools = restore.Commands(cfg, j, b.Destinations, b.Manifest)
	}
	st.Untrusted, st.Incomplete = problemsOf(c)
	for _, u := range st.Untrusted {
		st.Problems = append(st.Problems, fmt.Sprintf("manifest key %s on %s not trusted, not used: %s", u.Key, u.Destination, u.Reason))
	}
	for _, in := range st.Incomplete {
		st.Problems = append(st.Problems, fmt.Sprintf("backup %s incomplete on %s, not counted there: %s", in.ID, in.Destination, in.Reason))
	}
	if from := findDest(dests, j.Drill.From); from != nil {
		r, err := drill.LatestReport(ctx, from.Store, j.Name, trust)
		if err == nil && r != nil {
			st.LastDrill = &drillStatus{ID: r.ID, Finished: r.Finished, Result: r.Result, From: r.From, TotalSeconds: r.TotalSeconds, RTORatio: r.RTORatio, Error: r.Error}
			if !r.Passed() {
				st.Problems = append(st.Problems, "last drill failed: "+r.Error)
			}
		} else if j.Drill.Enabled && err == nil {
			st.Problems = append(st.Problems, "never drilled")
		}
	}
	return st, nil
}

// newestBackupStatus describes b, the newest verified backup of j.
func newestBackupStatus(j *config.Job, b manifest.Backup, now time.Time) *backupStatus {
	m := b.Manifest
	bs := &backupStatus{ID: b.ID, Destinations: b.Destinations, Missing: b.Missing(j.Destinations)}
	bs.Finished, bs.PlainBytes, bs.StoredBytes = m.Finished, m.Plain.Bytes, m.Payload.Bytes
	bs.AgeSeconds = now.Sub(m.Finished).Seconds()
	return bs
}

func findDest(dests []storage.Destination, name string) *storage.Destination {
	for i := range dests {
		if dests[i].Name == name {
			return &dests[i]
		}
	}
	return nil
}

// printStatus writes one job's status for a person.
func printStatus(w io.Writer, st jobStatus, now time.Time) {
	fmt.Fprintf(w, "%s (%s)\n", st.Job, st.Source)
	if b := st.LastBackup; b != nil {
		fmt.Fprintf(w, "  last backup  %s, %s ago, %s (%s stored) on %s\n", b.ID, human.Seconds(b.AgeSeconds), humanBytes(b.PlainBytes), humanBytes(b.StoredBytes), strings.Join(b.Destinations, ", "))
		if len(b.Missing) > 0 {
			fmt.Fprintf(w, "               MISSING from %s\n", strings.Join(b.Missing, ", "))
		}
	} else {
		fmt.Fprintf(w, "  last backup  NONE\n")
	}
	fmt.Fprintf(w, "  next backup  %s (in %s)\n", st.NextBackup.Format(time.RFC3339), human.Duration(st.NextBackup.Sub(now)))
	if d := st.LastDrill; d != nil {
		fmt.Fprintf(w, "  last drill   %s from %s, %s ago: %s in %s = %s of the RTO (%s)\n", d.ID, d.From, human.Duration(now.Sub(d.Finished)), strings.ToUpper(string(d.Result)), human.Seconds(d.TotalSeconds), drill.Percent(d.RTORatio), human.Seconds(st.RTOSeconds))
	} else {
		fmt.Fprintf(w, "  last drill   NONE\n")
	}
	if st.NextDrill != nil {
		fmt.Fprintf(w, "  next drill   %s\n", st.NextDrill.Format(time.RFC3339))
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  PROBLEM      %s\n", p)
	}
	if st.Restore != "" {
		fmt.Fprintf(w, "  restore now  %s\n", st.Restore)
	}
	if st.StockTools != "" {
		fmt.Fprintf(w, "  without Coffer (check the SHA-256 in the manifest): %s\n", st.StockTools)
	}
	fmt.Fprintln(w)
}
