package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

type purgeFlags struct {
	job             string
	confirm, asJSON bool
}

func newPurgeCmd(g *globals) *cobra.Command {
	f := &purgeFlags{}
	cmd := &cobra.Command{
		Use:   "purge --job NAME --confirm",
		Short: "Securely dispose of ALL of a job's backups on every destination (a tenant leaving)",
		Long: `Delete every backup of the job, whatever the retention policy says, on every
destination of the job: manifests first, then payloads, every object version
(secure disposal on versioned buckets), unfinished uploads, drill reports and
the job's leases. Objects under S3 Object Lock cannot be deleted before their
date; they are listed and the rest goes on.

Without --confirm, prints what would be deleted and changes nothing. Every
destination's result is written to the audit trail.

Exit codes: 0 everything removed, 1 something could not be removed (locked
or failed), 2 usage or config error (including a missing --confirm).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPurge(cmd, g, f) },
	}
	cmd.Flags().StringVarP(&f.job, "job", "j", "", "job whose backups are disposed of")
	cmd.Flags().BoolVar(&f.confirm, "confirm", false, "really delete")
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	return cmd
}

func runPurge(cmd *cobra.Command, g *globals, f *purgeFlags) error {
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	if f.job == "" {
		return usageErr(fmt.Errorf("--job is required: purge removes one job's backups (jobs: %v)", cfg.JobOrder))
	}
	jobs, err := selectJobs(cfg, f.job, false)
	if err != nil {
		return err
	}
	j := jobs[0]
	log := g.logger()
	defer log.Sync()
	ctx := cmd.Context()
	dests, err := openStores(ctx, cfg, j, "")
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if !f.confirm {
		return printPurgePlan(cmd, j.Name, dests)
	}
	auditLog, err := openAudit(cfg)
	if err != nil {
		return err
	}
	defer auditLog.Close()
	var results []prune.PurgeResult
	problems := 0
	for _, d := range dests {
		r := prune.Purge(ctx, j.Name, d, log)
		results = append(results, r)
		outcome, detail := audit.OutcomeOK, fmt.Sprintf("%d backups, %d objects removed", r.Backups, r.Objects)
		if r.Error != "" || len(r.Locked) > 0 {
			outcome = audit.OutcomeFailed
			problems++
			detail += fmt.Sprintf("; %d locked; %s", len(r.Locked), r.Error)
		}
		for _, id := range r.IDs {
			recordAudit(auditLog, log, audit.Event{Action: audit.ActionPurge, Job: j.Name, BackupID: id, Destination: d.Name, Outcome: audit.OutcomeOK, Detail: "disposed of on request (purge)"})
		}
		recordAudit(auditLog, log, audit.Event{Action: audit.ActionPurge, Job: j.Name, Destination: d.Name, Outcome: outcome, Detail: detail})
		if !f.asJSON {
			printPurge(out, d.Name, r)
		}
	}
	shipAuditTo(ctx, auditLog, dests[0].Store, log)
	if f.asJSON {
		if err := writeJSON(out, results); err != nil {
			return err
		}
	}
	if problems > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("purge of job %s incomplete on %d destinations", j.Name, problems)}
	}
	return nil
}

// printPurgePlan says what purge would delete without --confirm, and
// returns the usage error that asks for it.
func printPurgePlan(cmd *cobra.Command, job string, dests []storage.Destination) error {
	for _, d := range dests {
		ids, err := manifest.IDs(cmd.Context(), d.Store, job)
		if err != nil {
			return fmt.Errorf("destination %s: %w", d.Name, err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %d backups of job %s would be deleted (%s)\n", d.Name, len(ids), job, d.Store)
	}
	return usageErr(fmt.Errorf("nothing deleted: add --confirm to dispose of every backup of job %s", job))
}

// printPurge writes the purge of one destination for a person.
func printPurge(w io.Writer, dest string, r prune.PurgeResult) {
	fmt.Fprintf(w, "%s: %d backups, %d objects removed, %d uploads aborted\n", dest, r.Backups, r.Objects, r.Aborted)
	for _, l := range r.Locked {
		fmt.Fprintf(w, "  LOCKED: %s\n", l)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  FAILED: %s\n", r.Error)
	}
}
