package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/storage/open"
)

func newBackupCmd(g *globals) *cobra.Command {
	var job string
	var all, asJSON, allowShrink bool
	cmd := &cobra.Command{
		Use:   "backup (--job NAME | --all)",
		Short: "Take a backup now and store it at every destination of the job",
		Long: `Dump the job's database once and stream it through zstd and age to all of
the job's destinations at the same time. The manifest is written last; a
failed run leaves no backup visible anywhere.

A dump that is empty, or more than the job's max_shrink_percent (default 50)
smaller than the previous backup's, fails: a broken or emptied source must
not replace good backups silently. --allow-shrink accepts an expected
shrink once (an empty dump still fails).

Every manifest is signed with signing.key_file (required) and numbered:
1 + the highest sequence among the newest backups the destinations hold.

Progress goes to stderr: on a terminal one line per phase (bytes dumped,
rate, against the last backup's size as an estimate), redrawn in place;
off a terminal or with --json a "backup progress" log line every 30 s.

Exit codes: 0 every destination stored it, 3 partial (some did: the good
copies are kept), 1 failed, 2 usage or config error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, jobs, err := g.loadJobs(job, all)
			if err != nil {
				return err
			}
			signer, err := loadSigner(cfg)
			if err != nil {
				return err
			}
			log := g.logger()
			defer log.Sync()
			open.WarnPlainHTTP(log, cfg, jobs...)
			return runBackups(cmd, g, cfg, signer, jobs, asJSON, allowShrink, log)
		},
	}
	cmd.Flags().StringVarP(&job, "job", "j", "", "job to back up")
	cmd.Flags().BoolVar(&all, "all", false, "back up every job, one after another")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON on stdout")
	cmd.Flags().BoolVar(&allowShrink, "allow-shrink", false, "accept a dump much smaller than the previous backup's")
	return cmd
}

// runBackups backs up jobs in turn, signing with signer, showing each
// one's progress, and maps the worst outcome to an exit code.
func runBackups(cmd *cobra.Command, g *globals, cfg *config.Config, signer *sign.Signer, jobs []*config.Job, asJSON, allowShrink bool, log *zap.Logger) error {
	ctx := cmd.Context()
	var results []*backup.Result
	failed, partial := 0, 0
	for _, j := range jobs {
		jctx, stopProgress := g.startProgress(ctx, log.With(zap.String("job", j.Name)), "backup", asJSON)
		res, err := backupJob(jctx, cfg, signer, j, allowShrink, log)
		stopProgress()
		auditBestEffort(cfg, log, backup.AuditEvents(j.Name, res, err)...)
		if res != nil {
			results = append(results, res)
		}
		switch {
		case err != nil:
			failed++
			if !asJSON {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: FAILED: %v\n", j.Name, err)
			}
		case res.Outcome == backup.Partial:
			partial++
		}
		if err == nil && !asJSON {
			printResult(cmd, res)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if asJSON {
		if err := writeJSON(cmd.OutOrStdout(), results); err != nil {
			return err
		}
	}
	switch {
	case failed > 0:
		return &exitError{code: exitFailed, err: fmt.Errorf("%d of %d backups failed", failed, len(jobs))}
	case partial > 0:
		return &exitError{code: exitPartial, err: fmt.Errorf("%d of %d backups are partial: not every destination holds a copy", partial, len(jobs))}
	}
	return nil
}

func backupJob(ctx context.Context, cfg *config.Config, signer *sign.Signer, j *config.Job, allowShrink bool, log *zap.Logger) (*backup.Result, error) {
	stores, err := openStores(ctx, cfg, j, "")
	if err != nil {
		return nil, err
	}
	bj, err := backup.ConfiguredJob(cfg, j, signer, stores, version)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", j.Name, err)
	}
	if allowShrink {
		bj.MaxShrinkPercent = 100 // no floor
	}
	return backup.Run(ctx, bj, log)
}

func printResult(cmd *cobra.Command, res *backup.Result) {
	out := cmd.OutOrStdout()
	m := res.Manifest
	fmt.Fprintf(out, "%s: %s backup %s: %s dump -> %s stored, in %s\n", res.Job, res.Outcome, res.ID,
		humanBytes(m.Plain.Bytes), humanBytes(m.Payload.Bytes), human.Duration(m.Duration()))
	for _, d := range res.Destinations {
		if d.Err != nil {
			fmt.Fprintf(out, "  %-10s FAILED  %s\n", d.Name, d.Err)
			continue
		}
		fmt.Fprintf(out, "  %-10s ok      %s\n", d.Name, d.Store)
	}
	if res.ClockWarning != "" {
		fmt.Fprintf(out, "  WARNING: %s\n", res.ClockWarning)
	}
}

// humanBytes formats n in binary units.
func humanBytes(n int64) string { return human.Bytes(n) }
