package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/repair"
	"github.com/coffer-backup/coffer/internal/sweep"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

func newRepairCmd(g *globals) *cobra.Command {
	f := &maintenanceFlags{}
	cmd := &cobra.Command{
		Use:   "repair [--job NAME] [--dry-run] [--json]",
		Short: "Copy missing backups, heal broken copies and sweep leftovers, on every destination",
		Long: `Do on demand what the daemon's maintenance does, e.g. after an outage:
read each job's verified catalog (every manifest's signature checked against
signing.public_keys, every payload's size against its manifest) and

  copy     a backup that some destinations hold whole to those that lack it;
  heal     a verified manifest whose payload is missing or short: copy the
           payload from a destination that holds it whole;
  replace  a manifest key that does not verify (planted, forged, edited)
           under the id of a verified backup: delete it and copy the backup
           in its place;
  remove   a verified manifest whose payload no destination holds whole (it
           is not a backup); never while a destination cannot be listed;

then sweep unfinished uploads and payloads without a manifest older than
daemon.leftover_grace. Copies are made newest first, from a source whose
manifest verifies, manifest byte for byte; nothing is ever made from a key
that does not verify.

--dry-run prints the plan (no sweep) and changes nothing. Every step is
written to the audit trail, as the daemon writes it.

Exit codes: 0 done, 1 a step failed or a destination could not be listed, 2
usage or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.maintenance(f, "repair copies only backups whose manifest signature verifies", func(cfg *config.Config, jobs []*config.Job, auditLog *audit.Log, log *zap.Logger) error {
				return runRepair(cmd, cfg, jobs, f, auditLog, log)
			})
		},
	}
	f.register(cmd, "repair", "print the plan, change nothing")
	return cmd
}

// repairResult is what coffer repair did for one job.
type repairResult struct {
	Job    string        `json:"job"`
	DryRun bool          `json:"dry_run"`
	Repair repair.Report `json:"repair"`
	// Untrusted are the manifest keys the catalog does not use (those
	// under a verified backup's id are replaced above; the rest are left
	// for the operator).
	Untrusted []manifest.Untrusted `json:"untrusted"`
	Sweep     []sweepResult        `json:"sweep"`
}

// sweepResult is the sweep of one destination.
type sweepResult struct {
	Destination string   `json:"destination"`
	Aborted     []string `json:"aborted_uploads"`
	Deleted     []string `json:"deleted_orphans"`
	Errors      []string `json:"errors,omitempty"`
}

func runRepair(cmd *cobra.Command, cfg *config.Config, jobs []*config.Job, f *maintenanceFlags, auditLog *audit.Log, log *zap.Logger) error {
	ctx := cmd.Context()
	trust := manifest.ConfiguredTrust(cfg.Signing)
	results := []repairResult{}
	problems := 0
	for _, j := range jobs {
		dests, err := openStores(ctx, cfg, j, "")
		if err != nil {
			return err
		}
		cat := manifest.ReadCatalog(ctx, j.Name, dests, trust, nil)
		rep, err := repair.RunCatalog(ctx, cat, dests, trust, repair.Options{DryRun: f.dryRun}, log)
		if err != nil {
			return err
		}
		res := repairResult{Job: j.Name, DryRun: f.dryRun, Repair: rep, Untrusted: cat.Untrusted, Sweep: []sweepResult{}}
		if res.Untrusted == nil {
			res.Untrusted = []manifest.Untrusted{}
		}
		for _, ev := range rep.AuditEvents(j.Name) {
			recordAudit(auditLog, log, ev)
		}
		problems += len(rep.Failed) + len(rep.Unreachable)
		if !f.dryRun {
			for _, d := range dests {
				if _, down := rep.Unreachable[d.Name]; down {
					continue
				}
				sw := sweepOne(cmd, cfg, j, d, log)
				problems += len(sw.Errors)
				if n := len(sw.Aborted) + len(sw.Deleted); n > 0 {
					recordAudit(auditLog, log, audit.Event{Action: audit.ActionSweep, Job: j.Name, Destination: d.Name, Outcome: audit.OutcomeOK,
						Detail: fmt.Sprintf("%d unfinished uploads aborted, %d orphan payloads deleted", len(sw.Aborted), len(sw.Deleted))})
				}
				res.Sweep = append(res.Sweep, sw)
			}
		}
		results = append(results, res)
		if !f.asJSON {
			printRepair(cmd, res)
		}
		if auditLog != nil {
			shipAuditTo(ctx, auditLog, dests[0].Store, log)
		}
	}
	return finishMaintenance(cmd, f.asJSON, results, problems, "repair")
}

// sweepOne sweeps job's leftovers on d.
func sweepOne(cmd *cobra.Command, cfg *config.Config, j *config.Job, d storage.Destination, log *zap.Logger) sweepResult {
	out := sweepResult{Destination: d.Name, Aborted: []string{}, Deleted: []string{}}
	rep, err := sweep.SweepJob(cmd.Context(), d, j.Name, cfg.Daemon.LeftoverGrace.D(), clock.Now(), log)
	if err != nil {
		out.Errors = append(out.Errors, err.Error())
	}
	for _, e := range rep.Errors {
		out.Errors = append(out.Errors, e.Error())
	}
	for _, it := range rep.Aborted {
		out.Aborted = append(out.Aborted, it.Key)
	}
	for _, it := range rep.Deleted {
		out.Deleted = append(out.Deleted, it.Key)
	}
	return out
}

func printRepair(cmd *cobra.Command, res repairResult) {
	out := cmd.OutOrStdout()
	mode := ""
	if res.DryRun {
		mode = " (dry run: nothing changed)"
	}
	fmt.Fprintf(out, "job %s%s\n", res.Job, mode)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACTION\tBACKUP\tTO\tFROM\tOUTCOME\tDETAIL")
	rows := 0
	for _, s := range res.Repair.Planned {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.Action, s.ID, s.To, strings.Join(s.From, ","), "planned", s.Reason)
		rows++
	}
	for _, c := range res.Repair.Copied {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", c.Action, c.ID, c.To, c.From, audit.OutcomeOK, c.Reason)
		rows++
	}
	for _, r := range res.Repair.Removed {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", repair.ActionRemove, r.ID, r.Destination, "", audit.OutcomeRemoved, r.Reason)
		rows++
	}
	for _, f := range res.Repair.Failed {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", f.Action, f.ID, f.To, "", "FAILED", f.Err)
		rows++
	}
	if rows > 0 {
		tw.Flush()
	} else {
		fmt.Fprintln(out, "  every destination holds every backup whole")
	}
	for _, u := range res.Untrusted {
		fmt.Fprintf(out, "  untrusted, not used: %s\n", u)
	}
	for _, name := range slices.Sorted(maps.Keys(res.Repair.Unreachable)) {
		fmt.Fprintf(out, "  %s: NOT REPAIRED: %s\n", name, res.Repair.Unreachable[name])
	}
	for _, sw := range res.Sweep {
		if len(sw.Aborted)+len(sw.Deleted)+len(sw.Errors) > 0 {
			fmt.Fprintf(out, "  sweep %s: %d unfinished uploads aborted, %d orphan payloads deleted\n", sw.Destination, len(sw.Aborted), len(sw.Deleted))
		}
		for _, e := range sw.Errors {
			fmt.Fprintf(out, "  sweep %s: FAILED: %s\n", sw.Destination, e)
		}
	}
}
