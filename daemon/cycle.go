package daemon

// The cycle: what the daemon does for a job when its slot comes. Take the
// job's lease (HA mode), back up, then look after the destinations
// (prune, sweep leftovers, repair missing copies), recording each step in
// the audit trail, metrics and notifications.
//
// Each step after the backup is independent: a failed prune does not undo
// a good backup, and an unreachable destination does not stop the others.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/human"
	"github.com/coffer-backup/coffer/internal/lease"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/internal/notify"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/internal/repair"
	"github.com/coffer-backup/coffer/internal/sweep"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// Runner runs job cycles. Its fields are the daemon's shared services.
type Runner struct {
	Log     *zap.Logger
	Audit   *audit.Log
	Metrics *metrics.Metrics
	// Holder names this daemon in leases (host and process).
	Holder string
	// Now is the clock; nil means internal/clock.Now (the system clock,
	// plus the chaos soak's offset in a soak build).
	Now func() time.Time
	// DrillDir keeps a local copy of every drill report; empty means
	// none.
	DrillDir string
	// Manifests caches verified manifests between passes (state
	// directory); nil reads every manifest every time.
	Manifests *manifest.Cache
	// UntrustedFile remembers which untrusted manifest keys were already
	// alerted (state directory), so that each is alerted once, across
	// restarts; empty remembers them in memory only (a restart alerts
	// again).
	UntrustedFile string
	// Version is Coffer's version (internal/buildinfo), recorded in
	// manifests and drill reports.
	Version string

	alerted alertedKeys

	notifier atomic.Pointer[notify.Notifier] // replaced on reload
	busy     sync.Map                        // job name -> *jobTurn: one cycle or maintenance per job
}

// SetNotifier sets where results are sent (again after a reload).
func (r *Runner) SetNotifier(n *notify.Notifier) { r.notifier.Store(n) }

func (r *Runner) notify(ctx context.Context, ev notify.Event) {
	if n := r.notifier.Load(); n != nil {
		if err := n.Send(context.WithoutCancel(ctx), ev); err != nil {
			r.Log.Warn("notification not delivered", zap.String("job", ev.Job), zap.Error(err))
		}
	}
}

func (r *Runner) ping(ctx context.Context, job *config.Job, outcome notify.Outcome) {
	if n := r.notifier.Load(); n != nil && !job.PingURL.IsZero() {
		if err := n.Ping(context.WithoutCancel(ctx), job, outcome); err != nil {
			r.Log.Warn("health check ping not delivered", zap.String("outcome", string(outcome)), zap.Error(err))
		}
	}
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return clock.Now()
}

// jobTurn lets one cycle or maintenance pass of a job run at a time, and
// lets a backup interrupt a maintenance pass instead of waiting for it.
type jobTurn struct {
	sync.Mutex
	stopMu      sync.Mutex
	maintenance context.CancelCauseFunc // the running maintenance pass, if any
}

// errPreempted is why a maintenance pass is interrupted.
var errPreempted = errors.New("interrupted: a backup of the job is due")

// turn returns job's turn.
func (r *Runner) turn(job string) *jobTurn {
	t, _ := r.busy.LoadOrStore(job, &jobTurn{})
	return t.(*jobTurn)
}

// interruptMaintenance cancels the job's running maintenance pass, so that
// a backup waits for it only as long as it takes to stop. A maintenance
// pass can stop anywhere: repair, prune and sweep leave nothing another
// pass cannot finish (as after a kill -9), whereas a backup blocked behind
// a pass stalled on an unreachable destination is a backup late.
func (t *jobTurn) interruptMaintenance() bool {
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	if t.maintenance == nil {
		return false
	}
	t.maintenance(errPreempted)
	return true
}

// maintaining records the running maintenance pass's cancel function
// (nil when it ends).
func (t *jobTurn) maintaining(cancel context.CancelCauseFunc) {
	t.stopMu.Lock()
	defer t.stopMu.Unlock()
	t.maintenance = cancel
}

// DefaultHolder names this process for leases: host and PID.
func DefaultHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// Run is a RunFunc: one scheduled cycle of job.
func (r *Runner) Run(ctx context.Context, cfg *config.Config, job *config.Job, t Trigger) {
	log := r.Log.With(zap.String("job", job.Name), zap.String("trigger", t.Reason))
	// A backup interrupts the job's maintenance pass and waits for it to
	// stop; maintenance never waits for a backup.
	turn := r.turn(job.Name)
	if turn.interruptMaintenance() {
		log.Info("maintenance pass interrupted: the backup goes first; the next pass finishes it")
	}
	turn.Lock()
	defer turn.Unlock()

	dests, err := open.JobDestinations(ctx, cfg, job)
	if err != nil {
		r.failed(ctx, log, job, fmt.Errorf("open destinations: %w", err))
		return
	}

	if cfg.Daemon.HA {
		var release func()
		ctx, release, err = r.takeLease(ctx, cfg, job, lease.Key(job.Name), dests[0], log)
		if errors.Is(err, lease.ErrHeld) {
			log.Info("another daemon holds the job's lease: slot skipped", zap.Error(err))
			r.Metrics.BackupSkipped(job.Name, metrics.SkipLeaseHeld)
			return
		}
		if err != nil {
			r.failed(ctx, log, job, err)
			return
		}
		defer release()
		// Another daemon may have served this slot before we got the lease.
		// Only a verified backup whose payload is whole counts: a planted
		// manifest key cannot make the slot look served.
		if newest, ok, _ := r.newestBackup(ctx, log, cfg, job, dests); ok && !newest.Before(t.Slot) {
			log.Info("slot already backed up by another daemon", zap.Time("slot", t.Slot), zap.Time("newest", newest))
			r.Metrics.BackupSkipped(job.Name, metrics.SkipAlreadyDone)
			return
		}
	}

	r.backup(ctx, log, cfg, job, dests)
	r.maintain(ctx, log, cfg, job, dests)
	r.ship(ctx, log, dests[0])
}

// Maintain prunes, sweeps and repairs job's destinations outside a backup
// (the daemon's repair interval). It skips a job whose cycle is running.
func (r *Runner) Maintain(ctx context.Context, cfg *config.Config, job *config.Job) {
	log := r.Log.With(zap.String("job", job.Name), zap.String("trigger", "maintenance"))
	turn := r.turn(job.Name)
	if !turn.TryLock() {
		return // a backup cycle runs; it maintains afterwards
	}
	defer turn.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	turn.maintaining(cancel)
	defer func() {
		turn.maintaining(nil)
		cancel(nil)
	}()
	dests, err := open.JobDestinations(ctx, cfg, job)
	if err != nil {
		log.Error("maintenance: open destinations", zap.Error(err))
		return
	}
	if cfg.Daemon.HA {
		var release func()
		ctx, release, err = r.takeLease(ctx, cfg, job, lease.Key(job.Name), dests[0], log)
		if err != nil {
			log.Debug("maintenance skipped: no lease", zap.Error(err))
			return
		}
		defer release()
	}
	r.maintain(ctx, log, cfg, job, dests)
	r.ship(ctx, log, dests[0])
}

// takeLease takes job's HA lease (key) in d and keeps it renewed. The returned
// context is cancelled if the lease is lost; release gives the lease up.
// An error wrapping lease.ErrHeld means another daemon has it.
func (r *Runner) takeLease(ctx context.Context, cfg *config.Config, job *config.Job, key string, d storage.Destination, log *zap.Logger) (context.Context, func(), error) {
	l, err := lease.Acquire(ctx, d.Store, key, r.Holder, cfg.Daemon.LeaseTTL.D())
	if errors.Is(err, lease.ErrImplausibleExpiry) {
		r.implausibleLease(ctx, log, job, key, err)
	}
	if errors.Is(err, lease.ErrHeld) {
		return ctx, nil, err
	}
	if err != nil {
		return ctx, nil, fmt.Errorf("take lease in %s: %w", d.Name, err)
	}
	if err := l.Implausible(); err != nil {
		r.implausibleLease(ctx, log, job, key, err)
	}
	r.record(audit.Event{Action: audit.ActionLeaseAcquired, Job: job.Name, Destination: d.Name, Outcome: audit.OutcomeOK, Detail: r.Holder})
	r.Metrics.LeaseHeld(job.Name, r.Holder, true)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := l.Keep(ctx, func(err error) {
		log.Error("lease lost: cancelling the run", zap.Error(err))
		r.record(audit.Event{Action: audit.ActionLeaseLost, Job: job.Name, Destination: d.Name, Outcome: audit.OutcomeFailed, Detail: err.Error()})
		cancel(err)
	})
	release := func() {
		stop()
		relCtx, c := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer c()
		if err := l.Release(relCtx); err != nil {
			log.Warn("lease release failed; it expires on its own", zap.Error(err))
		} else {
			r.record(audit.Event{Action: audit.ActionLeaseReleased, Job: job.Name, Destination: d.Name, Outcome: audit.OutcomeOK, Detail: r.Holder})
		}
		r.Metrics.LeaseHeld(job.Name, r.Holder, false)
		cancel(nil)
	}
	return ctx, release, nil
}

// implausibleLease warns and alerts about a lease whose stored expiry was
// not believed (lease.ErrImplausibleExpiry): another daemon's clock runs
// fast, or someone wrote the bucket. Left alone it would stop every other
// daemon until that expiry.
func (r *Runner) implausibleLease(ctx context.Context, log *zap.Logger, job *config.Job, key string, err error) {
	log.Warn("lease expiry not believed: another daemon's clock runs fast, or the lease was planted", zap.Error(err))
	kind := "backup"
	if key == lease.DrillKey(job.Name) {
		kind = "drill"
	}
	r.notify(ctx, notify.Event{Time: r.now(), Kind: kind, Job: job.Name, Outcome: notify.OutcomeFailed, Message: err.Error()})
}

// backup takes one backup and reports it everywhere.
func (r *Runner) backup(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) {
	r.ping(ctx, job, notify.OutcomeStarted)
	signer, err := cfg.Signing.Signer()
	if err != nil {
		r.failed(ctx, log, job, err)
		return
	}
	bj, err := backup.ConfiguredJob(cfg, job, signer, dests, r.Version)
	if err != nil {
		r.failed(ctx, log, job, err)
		return
	}
	started := r.now()
	pctx, stopProgress := progress.Ensure(ctx, log, "backup") // a line every 30 s while it runs
	res, err := backup.Run(pctx, bj, log)
	stopProgress()
	finished := r.now()

	perDest := map[string]metrics.DestResult{}
	detail := map[string]string{}
	id, outcome := "", backup.Failed
	if res != nil {
		id, outcome = res.ID, res.Outcome
		for _, d := range res.Destinations {
			perDest[d.Name] = metrics.DestResult{OK: d.Err == nil, Bytes: d.Bytes}
			detail[d.Name] = notify.DestinationOK
			if d.Err != nil {
				detail[d.Name] = d.Err.Error()
			}
		}
	}
	notified, counted := runOutcome(outcome)
	r.Metrics.BackupFinished(job.Name, counted, started, finished, perDest)
	msg := fmt.Sprintf("backup %s: %s in %s", id, outcome, human.Duration(finished.Sub(started)))
	if err != nil {
		msg = "backup failed: " + err.Error()
	}
	for _, ev := range backup.AuditEvents(job.Name, res, err) {
		r.record(ev)
	}
	r.notify(ctx, notify.Event{Time: finished, Kind: "backup", Job: job.Name, BackupID: id, Outcome: notified, Message: msg, Destinations: detail})
	if res != nil && res.ClockWarning != "" {
		r.notify(ctx, notify.Event{Time: finished, Kind: "clock", Job: job.Name, BackupID: id, Outcome: notify.OutcomeFailed, Message: "clock check: " + res.ClockWarning})
	}
	r.ping(ctx, job, notified)
	if err != nil {
		log.Error("backup failed", zap.Error(err))
	}
}

// runOutcome is a backup run's outcome in the words of notifications
// (and pings) and of the coffer_backup_runs_total metric.
func runOutcome(o backup.Outcome) (notify.Outcome, metrics.Outcome) {
	switch o {
	case backup.OK:
		return notify.OutcomeOK, metrics.OutcomeOK
	case backup.Partial:
		return notify.OutcomePartial, metrics.OutcomePartial
	default:
		return notify.OutcomeFailed, metrics.OutcomeFailed
	}
}

// failed reports a cycle that could not start a backup.
func (r *Runner) failed(ctx context.Context, log *zap.Logger, job *config.Job, err error) {
	log.Error("cycle failed", zap.Error(err))
	r.Metrics.BackupFinished(job.Name, metrics.OutcomeFailed, r.now(), r.now(), nil)
	r.record(audit.Event{Action: audit.ActionBackup, Job: job.Name, Outcome: audit.OutcomeFailed, Detail: err.Error()})
	r.notify(ctx, notify.Event{Time: r.now(), Kind: "backup", Job: job.Name, Outcome: notify.OutcomeFailed, Message: err.Error()})
	r.ping(ctx, job, notify.OutcomeFailed)
}

// maintain sweeps leftovers on each destination, repairs missing copies,
// then prunes. Repair comes before prune so that prune sees every copy
// that can exist.
//
// Both work on the job's verified catalog, read through the runner's
// manifest cache: once for repair, and again for prune only when repair
// changed something (the second read fetches only the manifests repair
// wrote).
func (r *Runner) maintain(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) {
	if ctx.Err() != nil {
		return
	}
	r.sweep(ctx, log, cfg, job, dests)
	cat := r.catalog(ctx, log, cfg, job, dests)
	if ctx.Err() != nil {
		return
	}
	rep, err := repair.RunCatalog(ctx, cat, dests, manifest.ConfiguredTrust(cfg.Signing), repair.Options{}, log)
	if ctx.Err() != nil {
		// Preempted by a backup, or the daemon is stopping. What was
		// copied is recorded; what the interruption stopped is neither
		// alerted nor counted as failed, and prune does not run: the next
		// pass redoes both.
		log.Info("maintenance cut short", zap.NamedError("cause", context.Cause(ctx)))
		for _, c := range rep.Copied {
			r.Metrics.Repaired(job.Name, c.To, metrics.OutcomeOK)
		}
		rep.Failed = nil
		for _, ev := range rep.AuditEvents(job.Name) {
			r.record(ev)
		}
		return
	}
	if err != nil {
		log.Error("repair failed", zap.Error(err))
	}
	// Destinations that could not be listed are left alone until the next
	// cycle: prune counts a copy there as missing anyway, which only keeps
	// more.
	if len(cat.Unreachable) > 0 {
		dests = slices.DeleteFunc(slices.Clone(dests), func(d storage.Destination) bool {
			_, down := cat.Unreachable[d.Name]
			return down
		})
	}
	for _, c := range rep.Copied {
		r.Metrics.Repaired(job.Name, c.To, metrics.OutcomeOK)
	}
	for _, f := range rep.Failed {
		r.Metrics.Repaired(job.Name, f.To, metrics.OutcomeFailed)
	}
	for _, ev := range rep.AuditEvents(job.Name) {
		r.record(ev)
	}
	if len(rep.Failed) > 0 {
		r.notify(ctx, notify.Event{Time: r.now(), Kind: "repair", Job: job.Name, Outcome: notify.OutcomeFailed,
			Message: fmt.Sprintf("%d repairs of missing or broken copies failed", len(rep.Failed))})
	}
	if len(rep.Removed) > 0 {
		r.notify(ctx, notify.Event{Time: r.now(), Kind: "repair", Job: job.Name, Outcome: notify.OutcomeFailed,
			Message: fmt.Sprintf("%d verified manifests removed: no destination held their payload whole, so those backups are lost", len(rep.Removed))})
	}
	if len(rep.Copied)+len(rep.Removed) > 0 {
		cat = r.catalog(ctx, log, cfg, job, dests)
	} else if len(cat.Unreachable) > 0 {
		// Prune is not refused (and alerted) for what repair already
		// logged: it runs on the reachable destinations only.
		reachable := *cat
		reachable.Unreachable = nil
		cat = &reachable
	}

	res, err := prune.RunCatalog(ctx, cat, dests, prune.Options{Policy: prune.Policy(job), Now: r.now(), OnDelete: func(it prune.Item) {
		r.record(it.AuditEvent(job.Name))
	}}, log)
	if res != nil {
		for _, d := range dests {
			r.Metrics.Pruned(job.Name, d.Name, res.Deleted(d.Name))
			r.Metrics.Locked(job.Name, d.Name, res.Locked(d.Name))
		}
	}
	if ctx.Err() != nil {
		// Preempted or stopping: a destination the cancellation cut short
		// (a listing of the re-read catalog) is not alerted as refused.
		log.Info("prune cut short", zap.NamedError("cause", context.Cause(ctx)))
		return
	}
	if res != nil {
		for _, name := range slices.Sorted(maps.Keys(res.Refused)) {
			r.notify(ctx, notify.Event{Time: r.now(), Kind: "prune", Job: job.Name, Outcome: notify.OutcomeFailed,
				Message: "prune refused on " + name + ": " + res.Refused[name]})
		}
	}
	if err != nil {
		log.Error("prune failed", zap.Error(err))
	}
}

// sweep removes the leftovers of interrupted runs on every destination at
// once (unfinished uploads and payloads without a manifest, older than
// daemon.leftover_grace). It comes first in a maintenance pass, and each
// destination on its own, so that a destination that hangs (or repair and
// prune waiting on one) does not keep the others' leftovers.
func (r *Runner) sweep(ctx context.Context, log *zap.Logger, cfg *config.Config, job *config.Job, dests []storage.Destination) {
	type result struct {
		rep sweep.Report
		err error
	}
	results := make([]result, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		wg.Go(func() {
			rep, err := sweep.SweepJob(ctx, d, job.Name, cfg.Daemon.LeftoverGrace.D(), r.now(), log)
			results[i] = result{rep, err}
		})
	}
	wg.Wait()
	for i, d := range dests {
		rep, err := results[i].rep, results[i].err
		if err != nil && !interrupted(ctx) {
			log.Warn("sweep failed", zap.String("destination", d.Name), zap.Error(err))
		}
		for _, e := range rep.Errors {
			log.Warn("leftover not swept", zap.String("destination", d.Name), zap.Error(e))
		}
		n := len(rep.Aborted) + len(rep.Deleted)
		r.Metrics.Swept(d.Name, n)
		if n > 0 {
			r.record(audit.Event{Action: audit.ActionSweep, Job: job.Name, Destination: d.Name, Outcome: audit.OutcomeOK,
				Detail: fmt.Sprintf("%d unfinished uploads aborted, %d orphan payloads deleted", len(rep.Aborted), len(rep.Deleted))})
		}
	}
}

// interrupted reports whether ctx is a maintenance pass a backup
// interrupted (see jobTurn).
func interrupted(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errPreempted)
}

// ship uploads the audit events not yet in the bucket (not after an
// interrupted maintenance pass: the backup that interrupted it ships).
func (r *Runner) ship(ctx context.Context, log *zap.Logger, d storage.Destination) {
	if r.Audit == nil || interrupted(ctx) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := r.Audit.Ship(ctx, d.Store); err != nil {
		log.Warn("audit trail not shipped to the bucket; retried after the next run", zap.String("destination", d.Name), zap.Error(err))
	}
}

// record writes an audit event; a failure is logged (the audit file's
// disk may be full) and does not stop the cycle.
func (r *Runner) record(ev audit.Event) {
	if r.Audit == nil {
		return
	}
	if err := r.Audit.Record(ev); err != nil {
		r.Log.Error("audit event not recorded", zap.String("action", ev.Action), zap.Error(err))
	}
}
