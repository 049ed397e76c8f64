package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/manifest"
)

func newPruneCmd(g *globals) *cobra.Command {
	f := &maintenanceFlags{}
	cmd := &cobra.Command{
		Use:   "prune [--job NAME] [--dry-run]",
		Short: "Delete backups the retention policy no longer needs, on every destination",
		Long: `Apply each job's retention policy (keep_within, default 28d; min_keep,
default 2; keep_weekly; keep_monthly) to each of its destinations and
securely delete (every object version) what it marks expired.

Never deleted: anything inside keep_within, the newest complete backup,
anything needed to keep min_keep backups, the only copy of a backup, and
nothing at all on a destination whose own clock (an S3 server's Date header,
a local directory's file times) is more than 5 minutes from this host's, or
cannot be read, or whose newest backup is dated in the future: a wrong clock
makes every age wrong. Such a destination is reported NOT PRUNED with both
times and the difference.
Backups under S3 Object Lock are kept and reported as locked. Every manifest
is read and its signature checked (signing.public_keys), and its payload's
size compared with the listing: a copy whose manifest fails is reported as
unverified, one whose payload is missing or short as incomplete (coffer
repair heals it); neither is counted as a copy nor deleted.

--dry-run prints the same plan without deleting. Every deletion is written to
the audit trail with the rule that decided it.

Exit codes: 0 done, 1 a deletion failed or a destination was refused, 2 usage
or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.maintenance(f, "prune counts only copies whose manifest signature verifies", func(cfg *config.Config, jobs []*config.Job, auditLog *audit.Log, log *zap.Logger) error {
				return runPrune(cmd, cfg, jobs, f, auditLog, log)
			})
		},
	}
	f.register(cmd, "prune", "print the plan, delete nothing")
	return cmd
}

func runPrune(cmd *cobra.Command, cfg *config.Config, jobs []*config.Job, f *maintenanceFlags, auditLog *audit.Log, log *zap.Logger) error {
	ctx := cmd.Context()
	trust := manifest.ConfiguredTrust(cfg.Signing)
	var results []*prune.Result
	problems := 0
	for _, j := range jobs {
		dests, err := openStores(ctx, cfg, j, "")
		if err != nil {
			return err
		}
		res, err := prune.Run(ctx, prune.Request{Job: j.Name, Destinations: dests, Trust: trust, Options: prune.Options{
			Policy: prune.Policy(j), Now: clock.Now(), DryRun: f.dryRun,
			OnDelete: func(it prune.Item) { recordAudit(auditLog, log, it.AuditEvent(j.Name)) },
		}}, log)
		if err != nil {
			return err
		}
		results = append(results, res)
		problems += len(res.Refused)
		for _, it := range res.Items {
			if it.Outcome.Problem() {
				problems++
			}
		}
		if !f.asJSON {
			printPrune(cmd, res, j.Destinations)
		}
		if auditLog != nil {
			shipAuditTo(ctx, auditLog, dests[0].Store, log)
		}
	}
	return finishMaintenance(cmd, f.asJSON, results, problems, "prune")
}

// printPrune writes res as a table, by destination in the job's order
// (dests) and each destination's backups newest first, then the
// destinations not pruned, in the same order.
func printPrune(cmd *cobra.Command, res *prune.Result, dests []string) {
	byDest := func(a, b string) int {
		rank := func(name string) int {
			if i := slices.Index(dests, name); i >= 0 {
				return i
			}
			return len(dests)
		}
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
	}
	out := cmd.OutOrStdout()
	mode := ""
	if res.DryRun {
		mode = " (dry run: nothing deleted)"
	}
	fmt.Fprintf(out, "job %s%s\n", res.Job, mode)
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DESTINATION\tBACKUP\tAGE\tACTION\tRULE\tREASON")
	items := slices.Clone(res.Items)
	slices.SortStableFunc(items, func(a, b prune.Item) int {
		return cmp.Or(byDest(a.Destination, b.Destination), cmp.Compare(b.ID, a.ID))
	})
	for _, it := range items {
		reason := it.Reason
		if it.Error != "" {
			reason += ": " + it.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", it.Destination, it.ID, human.Duration(clock.Since(it.Time)), it.Outcome, it.Rule, reason)
	}
	tw.Flush()
	for _, name := range slices.SortedFunc(maps.Keys(res.Refused), byDest) {
		fmt.Fprintf(out, "  %s: NOT PRUNED: %s\n", name, res.Refused[name])
	}
	if len(res.Items) == 0 && len(res.Refused) == 0 {
		fmt.Fprintln(out, "  no complete backups")
	}
}
