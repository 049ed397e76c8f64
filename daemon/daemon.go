package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/internal/notify"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage/open"
)

// Options are what Run needs from the command line.
type Options struct {
	// Config is the validated configuration to start with.
	Config *config.Config
	// Load loads and validates the configuration file again, on SIGHUP.
	Load func() (*config.Config, error)
	// Version is Coffer's version (internal/buildinfo), recorded in
	// manifests and drill reports and sent with notifications.
	Version string
	// Log receives the daemon's structured log.
	Log *zap.Logger
}

// SetupError is an error in the configuration or the host that stops the
// daemon before it starts (the CLI's exit status 2).
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Run runs the daemon until ctx is cancelled: every job on its backup and
// drill schedules, maintenance every daemon.repair_interval, the monitor
// endpoints, and configuration reload on SIGHUP. At the end it ships the
// audit trail. It returns a *SetupError when the daemon cannot start.
func Run(ctx context.Context, o Options) error {
	cfg, log := o.Config, o.Log
	dir, err := cfg.StateDir()
	if err != nil {
		return &SetupError{err}
	}
	auditLog, err := audit.Open(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	defer auditLog.Close()
	if err := auditLog.SetSigning(cfg.Signing); err != nil {
		return &SetupError{err}
	}

	open.WarnPlainHTTP(log, cfg)
	if cfg.Daemon.HA {
		if err := probeHA(ctx, cfg); err != nil {
			return &SetupError{err}
		}
	}

	m := metrics.New()
	for _, name := range cfg.JobOrder {
		m.Job(name) // counters exist at zero, so the first failure shows as an increase
	}
	manifests, err := manifest.OpenCache(filepath.Join(dir, "manifests"))
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	runner := &Runner{Log: log, Audit: auditLog, Metrics: m, Holder: DefaultHolder(), DrillDir: filepath.Join(dir, "drills"),
		Manifests: manifests, UntrustedFile: filepath.Join(dir, "untrusted-alerted.json"), Version: o.Version}
	runner.SetNotifier(notify.New(cfg.Notify, log, notify.WithVersion(o.Version)))
	sched := New(cfg, runner.Run, runner.Newest, Hooks{
		Skipped: m.BackupSkipped,
		NextRun: m.NextRun,
		Running: m.Running,
		Forget:  m.Forget,
	}, log)
	// Restore drills follow each job's drill.schedule, apart from backups.
	drills := New(cfg, runner.Drill, runner.NewestDrill, Hooks{}, log.With(zap.String("schedule", "drill"))).WithPlan(DrillPlan)
	logDrillSetup(cfg, log)

	if cfg.Daemon.Listen != "off" {
		srv, err := startMonitor(cfg, m, sched, dir, log)
		if err != nil {
			return err
		}
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(c)
		}()
		log.Info("serving health, metrics and the page", zap.String("address", srv.Addr()))
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			reload(o, []*Scheduler{sched, drills}, runner, m, auditLog, log)
		}
	}()
	go maintenanceLoop(ctx, sched, runner)

	log.Info("coffer daemon started", zap.String("config", cfg.Path), zap.Strings("jobs", cfg.JobOrder),
		zap.Int("max_concurrent", cfg.Daemon.MaxConcurrent), zap.Bool("ha", cfg.Daemon.HA), zap.String("state_dir", dir))
	drillsDone := make(chan error, 1)
	go func() { drillsDone <- drills.Run(ctx) }()
	err = errors.Join(sched.Run(ctx), <-drillsDone)
	shipCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shipAudit(shipCtx, sched.Config(), auditLog, log)
	if err != nil {
		log.Error("shutdown", zap.Error(err))
		return err
	}
	log.Info("coffer daemon stopped")
	return nil
}

// reload loads the configuration file again and switches to it, or keeps
// the running one when the new file is invalid.
func reload(o Options, scheds []*Scheduler, runner *Runner, m *metrics.Metrics, auditLog *audit.Log, log *zap.Logger) {
	cfg, err := o.Load()
	ev := audit.Event{Action: audit.ActionConfigReload, Outcome: audit.OutcomeOK, Detail: o.Config.Path}
	if err != nil {
		log.Error("configuration reload rejected: the running configuration stays", zap.Error(err))
		m.ConfigReloaded(false)
		ev.Outcome, ev.Detail = audit.OutcomeFailed, err.Error()
	} else {
		runner.SetNotifier(notify.New(cfg.Notify, log, notify.WithVersion(o.Version)))
		open.WarnPlainHTTP(log, cfg)
		for _, name := range cfg.JobOrder {
			m.Job(name)
		}
		for _, s := range scheds {
			s.Reload(cfg)
		}
		logDrillSetup(cfg, log)
		if err := auditLog.SetSigning(cfg.Signing); err != nil {
			log.Error("shipped audit heads keep the previous signing key", zap.Error(err))
		}
		m.ConfigReloaded(true)
		log.Info("configuration reloaded", zap.String("config", cfg.Path), zap.Strings("jobs", cfg.JobOrder))
	}
	if err := auditLog.Record(ev); err != nil {
		log.Error("audit event not recorded", zap.Error(err))
	}
}

// maintenanceLoop repairs, prunes and sweeps every job each
// daemon.repair_interval, so a destination that comes back is repaired
// without waiting for the next backup.
func maintenanceLoop(ctx context.Context, sched *Scheduler, runner *Runner) {
	for {
		interval := sched.Config().Daemon.RepairInterval.D()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
		cfg := sched.Config()
		for _, name := range cfg.JobOrder {
			if ctx.Err() != nil {
				return
			}
			runner.Maintain(ctx, cfg, cfg.Jobs[name])
		}
	}
}

// shipAudit uploads unshipped audit events to the first destination of
// the first job (the primary).
func shipAudit(ctx context.Context, cfg *config.Config, auditLog *audit.Log, log *zap.Logger) {
	job := cfg.Jobs[cfg.JobOrder[0]]
	// As a job destination: with Object Lock, audit objects are locked.
	d, err := open.JobDestination(ctx, cfg, job, job.Destinations[0])
	if err != nil {
		log.Warn("audit trail not shipped at shutdown; it is kept locally and shipped next time", zap.Error(err))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := auditLog.Ship(ctx, d.Store); err != nil {
		log.Warn("audit trail not shipped to the bucket; it is kept locally and shipped next time", zap.Error(err))
	}
}

// logDrillSetup warns about jobs whose scheduled drills cannot decrypt:
// they will fail, and alert, at each drill slot until fixed.
func logDrillSetup(cfg *config.Config, log *zap.Logger) {
	for _, name := range cfg.JobOrder {
		j := cfg.Jobs[name]
		if j.Drill.Enabled && j.Drill.IdentityFile == "" {
			log.Warn("scheduled drills of this job will fail: no drill.identity_file (the private age identity drills decrypt with)",
				zap.String("job", name), zap.String("drill_schedule", j.Drill.Schedule))
		}
	}
}
