package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/storage"
)

// openAudit opens the audit log in the configured state directory, with
// the signing key for the heads it ships. Commands that delete (prune,
// purge) refuse to run without it.
func openAudit(cfg *config.Config) (*audit.Log, error) {
	l, err := audit.OpenConfigured(cfg)
	if err != nil {
		return nil, usageErr(err)
	}
	return l, nil
}

// auditFile is the path of the local audit log, in the configured state
// directory.
func auditFile(cfg *config.Config) (string, error) {
	dir, err := cfg.StateDir()
	if err != nil {
		return "", usageErr(err)
	}
	return filepath.Join(dir, audit.FileName), nil
}

// recordAudit writes ev to l (when not nil); a failure is logged.
func recordAudit(l *audit.Log, log *zap.Logger, ev audit.Event) {
	if l == nil {
		return
	}
	if err := l.Record(ev); err != nil {
		log.Error("audit event not recorded", zap.String("action", ev.Action), zap.Error(err))
	}
}

// shipAuditTo uploads the audit events not yet in the bucket to s.
func shipAuditTo(ctx context.Context, l *audit.Log, s storage.Store, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := l.Ship(ctx, s); err != nil {
		log.Warn("audit trail not shipped to the bucket; it is kept locally and shipped next time", zap.Error(err))
	}
}

// auditBestEffort records ev in the state directory's audit log for
// commands that change nothing in the buckets' retention (backup,
// restore): when the log cannot be opened the command still runs, with a
// warning.
func auditBestEffort(cfg *config.Config, log *zap.Logger, evs ...audit.Event) {
	l := openAuditBestEffort(cfg, log)
	if l == nil {
		return
	}
	defer l.Close()
	for _, ev := range evs {
		recordAudit(l, log, ev)
	}
}

// openAuditBestEffort opens the state directory's audit log, or logs a
// warning and returns nil when it cannot.
func openAuditBestEffort(cfg *config.Config, log *zap.Logger) *audit.Log {
	dir, err := cfg.StateDir()
	var l *audit.Log
	if err == nil {
		l, err = audit.Open(dir)
	}
	if err != nil {
		log.Warn("audit trail not written (set daemon.state_dir to a writable directory)", zap.Error(err))
		return nil
	}
	return l
}

// maintenanceFlags are the flags of a command that changes destinations
// (prune, repair).
type maintenanceFlags struct {
	job            string
	dryRun, asJSON bool
}

// register adds the flags to cmd, the command that does what ("prune")
// and whose dry run does what dryRun says.
func (f *maintenanceFlags) register(cmd *cobra.Command, what, dryRun string) {
	cmd.Flags().StringVarP(&f.job, "job", "j", "", "job to "+what+" (default: every job)")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, dryRun)
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the plan and outcome as JSON")
}

// maintenance loads the configuration and the jobs of a command that
// changes destinations (prune, repair): --job names one, none all. It
// refuses a configuration that trusts no signing key (why says what the
// command would otherwise do wrong), opens the audit log unless
// --dry-run, and calls run.
func (g *globals) maintenance(f *maintenanceFlags, why string, run func(cfg *config.Config, jobs []*config.Job, auditLog *audit.Log, log *zap.Logger) error) error {
	cfg, jobs, err := g.loadJobs(f.job, f.job == "")
	if err != nil {
		return err
	}
	if len(cfg.Signing.PublicKeys) == 0 {
		return usageErr(fmt.Errorf("%s trusts no signing key: set signing.public_keys (or signing.key_file); %s", cfg.Path, why))
	}
	log := g.logger()
	defer log.Sync()
	var auditLog *audit.Log
	if !f.dryRun {
		if auditLog, err = openAudit(cfg); err != nil {
			return err
		}
		defer auditLog.Close()
	}
	return run(cfg, jobs, auditLog, log)
}

// finishMaintenance ends a prune or repair command: the results as JSON
// when asked (the text was printed per job), and exit 1 naming how many
// problems there were.
func finishMaintenance(cmd *cobra.Command, asJSON bool, results any, problems int, what string) error {
	if asJSON {
		if err := writeJSON(cmd.OutOrStdout(), results); err != nil {
			return err
		}
	}
	if problems > 0 {
		return &exitError{code: exitFailed, err: fmt.Errorf("%s: %d problems (see above)", what, problems)}
	}
	return nil
}
