package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"filippo.io/age"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/seal"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/lease"
	"github.com/coffer-backup/coffer/internal/notify"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// DrillRequest says which drill to run.
type DrillRequest struct {
	// From names the destination to drill from; empty means the job's
	// drill.from (the offsite copy by default).
	From string
	// ID of the backup; empty means the newest on From.
	ID string
	// Identities decrypt the backup; nil means the job's
	// drill.identity_file.
	Identities []age.Identity
	// Keep leaves the scratch database for debugging.
	Keep bool
	// Trust checks manifest signatures; nil means the configured
	// signing.public_keys.
	Trust *manifest.Trust
	// Parallel is how a PostgreSQL custom-format backup is restored; nil
	// means the configured restore.jobs and restore.spool_dir.
	Parallel *snapshot.Parallel
}

// DrillNow runs one restore drill of job and keeps its evidence: the
// report goes to the source destination and to DrillDir, an audit event is
// recorded, metrics are set, and a failure or a drill slower than the
// job's warning fraction of the RTO is notified. The report is returned
// also when the drill failed (nil only when it could not start).
func (r *Runner) DrillNow(ctx context.Context, cfg *config.Config, job *config.Job, req DrillRequest) (*drill.Report, error) {
	log := r.Log.With(zap.String("job", job.Name))
	from, err := drillSource(ctx, cfg, job, req.From)
	if err == nil && req.Identities == nil {
		req.Identities, err = drillIdentities(job)
	}
	if err != nil {
		err = fmt.Errorf("drill of job %s: %w", job.Name, err)
		r.drillFailed(ctx, job, req.From, err)
		return nil, err
	}
	host, _ := os.Hostname()
	tr := manifest.ConfiguredTrust(cfg.Signing)
	if req.Trust != nil {
		tr = *req.Trust
	}
	par := snapshot.Parallel{Jobs: cfg.Restore.Jobs, SpoolDir: cfg.Restore.SpoolDir}
	if req.Parallel != nil {
		par = *req.Parallel
	}
	// The daemon logs the drill's progress every 30 s; `coffer drill`
	// brings its own reporting.
	pctx, stopProgress := progress.Ensure(ctx, log, "drill")
	rep, err := drill.Run(pctx, drill.Options{
		Config: cfg, Job: job, From: from, ID: req.ID, Identities: req.Identities, Trust: tr,
		Keep: req.Keep, Host: host, Version: r.Version, Now: r.Now, Log: r.Log, // drill.Run adds the job
		Parallel: par,
	})
	stopProgress()
	if rep == nil {
		r.drillFailed(ctx, job, from.Name, err)
		return nil, err
	}
	keepCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	signer, serr := cfg.Signing.Signer()
	if serr != nil {
		log.Warn("drill report stored unsigned: the compliance report will not accept it as evidence", zap.Error(serr))
	}
	if kerr := drill.Keep(keepCtx, rep, from, r.DrillDir, signer); kerr != nil {
		log.Error("drill evidence not fully stored", zap.Error(kerr))
	}
	r.record(rep.AuditEvent())
	r.Metrics.DrillFinished(job.Name, rep.Passed(), rep.Finished, rep.TotalSeconds, rep.PhaseSeconds(), rep.RTORatio)
	outcome := notify.OutcomeOK
	msg := fmt.Sprintf("drill of %s from %s passed in %s (%s of the RTO)", rep.Backup, from.Name, human.Duration(rep.Total()), drill.Percent(rep.RTORatio))
	switch {
	case !rep.Passed():
		outcome, msg = notify.OutcomeFailed, fmt.Sprintf("drill from %s failed: %s", from.Name, rep.Error)
	case rep.Unproven() != "":
		outcome, msg = notify.OutcomeWarning, fmt.Sprintf("drill of %s from %s passed, but the compliance report will not accept it: %s", rep.Backup, from.Name, rep.Unproven())
	case rep.Warning != "":
		outcome, msg = notify.OutcomeWarning, fmt.Sprintf("drill from %s passed with a warning: %s", from.Name, rep.Warning)
	}
	r.notify(ctx, notify.Event{Time: rep.Finished, Kind: "drill", Job: job.Name, BackupID: rep.Backup, Outcome: outcome, Message: msg})
	return rep, err
}

// drillFailed reports a drill that could not start.
func (r *Runner) drillFailed(ctx context.Context, job *config.Job, from string, err error) {
	r.Log.Error("drill failed", zap.String("job", job.Name), zap.Error(err))
	now := r.now()
	r.Metrics.DrillNotStarted(job.Name, now)
	r.record(audit.Event{Action: audit.ActionDrill, Job: job.Name, Destination: from, Outcome: audit.OutcomeFailed, Detail: err.Error()})
	r.notify(ctx, notify.Event{Time: now, Kind: "drill", Job: job.Name, Outcome: notify.OutcomeFailed, Message: err.Error()})
}

// Drill is a RunFunc for the drill schedule: one scheduled drill of
// job. In HA mode it takes the job's drill lease, so that one daemon
// drills each slot, and skips a slot another daemon already drilled.
func (r *Runner) Drill(ctx context.Context, cfg *config.Config, job *config.Job, t Trigger) {
	log := r.Log.With(zap.String("job", job.Name), zap.String("trigger", t.Reason))
	if cfg.Daemon.HA {
		// The job's leases live on its first destination.
		first, err := open.JobDestination(ctx, cfg, job, job.Destinations[0])
		if err != nil {
			r.drillFailed(ctx, job, job.Drill.From, fmt.Errorf("open destination: %w", err))
			return
		}
		var release func()
		ctx, release, err = r.takeLease(ctx, cfg, job, lease.DrillKey(job.Name), first, log)
		if errors.Is(err, lease.ErrHeld) {
			log.Info("another daemon holds the job's drill lease: drill slot skipped")
			return
		}
		if err != nil {
			r.drillFailed(ctx, job, job.Drill.From, err)
			return
		}
		defer release()
		if last, ok, _ := r.NewestDrill(ctx, cfg, job); ok && !last.Before(t.Slot) {
			log.Info("drill slot already served by another daemon", zap.Time("slot", t.Slot))
			return
		}
	}
	r.DrillNow(ctx, cfg, job, DrillRequest{})
}

// NewestDrill is a daemon.NewestFunc for the drill schedule: when job's
// newest drill on its drill source started. A job with no verified backup
// on its drill source yet counts as freshly drilled, so that start-up does
// not drill nothing (a planted manifest key is not a backup).
func (r *Runner) NewestDrill(ctx context.Context, cfg *config.Config, job *config.Job) (time.Time, bool, error) {
	from, err := drillSource(ctx, cfg, job, "")
	if err != nil {
		return time.Time{}, false, err
	}
	last, err := drill.LatestReport(ctx, from.Store, job.Name, manifest.ConfiguredTrust(cfg.Signing))
	if err != nil {
		return time.Time{}, false, err
	}
	if last != nil {
		return last.Started, true, nil
	}
	c := r.catalog(ctx, r.Log.With(zap.String("job", job.Name)), cfg, job, []storage.Destination{from})
	if _, ok := c.Newest(); !ok {
		return time.Now(), true, nil
	}
	return time.Time{}, false, nil
}

// drillSource opens the destination a drill of job reads, and no other:
// name, or the job's drill.from.
func drillSource(ctx context.Context, cfg *config.Config, job *config.Job, name string) (storage.Destination, error) {
	if name == "" {
		name = job.Drill.From
	}
	d, err := open.JobDestination(ctx, cfg, job, name)
	if err != nil {
		return storage.Destination{}, fmt.Errorf("open destination: %w", err)
	}
	return d, nil
}

// drillIdentities loads the job's drill.identity_file.
func drillIdentities(job *config.Job) ([]age.Identity, error) {
	f := job.Drill.IdentityFile
	if f == "" {
		return nil, fmt.Errorf("no identity to decrypt with: set jobs.%s.drill.identity_file (the private age identity; keep it on restore and drill hosts only)", job.Name)
	}
	return seal.LoadIdentitiesWith(f, seal.PassphraseFile(job.Drill.PassphraseFile))
}
