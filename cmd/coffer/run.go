package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/cycle"
	"github.com/coffer-backup/coffer/daemon"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/metrics"
	"github.com/coffer-backup/coffer/monitor"
	"github.com/coffer-backup/coffer/notify"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

func newRunCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: every job on its schedule, with retention, repair, metrics and alerts",
		Long: `Run each job on its cron schedule (default weekly, Sunday 02:00 in the job's
time zone) until SIGTERM or SIGINT. After each backup the daemon repairs
copies missing from a destination, prunes by the retention policy and sweeps
leftovers of interrupted runs; it repeats that maintenance every
daemon.repair_interval. A job that missed its slot while the daemon was down
runs at start.

SIGHUP reloads the configuration; an invalid file is rejected with its
errors and the running configuration stays. SIGTERM cancels running jobs
(uploads aborted, no manifest written) within daemon.shutdown_timeout and
exits 0.

/healthz, /readyz and /metrics are served on daemon.listen
(default 127.0.0.1:9847).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig()
			if err != nil {
				return err
			}
			if _, err := loadSigner(cfg); err != nil { // every backup must be signed
				return err
			}
			log := g.logger()
			defer log.Sync()
			return runDaemon(cmd.Context(), g, cfg, log)
		},
	}
}

// runDaemon runs the scheduler until ctx is cancelled.
func runDaemon(ctx context.Context, g *globals, cfg *config.Config, log *zap.Logger) error {
	dir, err := stateDir(cfg)
	if err != nil {
		return usageErr(err)
	}
	auditLog, err := audit.Open(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	defer auditLog.Close()
	if err := signAudit(auditLog, cfg); err != nil {
		return usageErr(err)
	}

	open.WarnPlainHTTP(log, cfg)
	if cfg.Daemon.HA {
		if err := probeHA(ctx, cfg); err != nil {
			return usageErr(err)
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
	runner := &cycle.Runner{Log: log, Audit: auditLog, Metrics: m, Holder: cycle.DefaultHolder(), DrillDir: filepath.Join(dir, "drills"),
		Manifests: manifests, UntrustedFile: filepath.Join(dir, "untrusted-alerted.json")}
	runner.SetNotifier(notify.New(cfg.Notify, log, notify.WithVersion(version)))
	sched := daemon.New(cfg, runner.Run, runner.Newest, daemon.Hooks{
		Skipped: m.BackupSkipped,
		NextRun: m.NextRun,
		Running: m.Running,
		Forget:  m.Forget,
	}, log)
	// Restore drills follow each job's drill.schedule, apart from backups.
	drills := daemon.New(cfg, runner.Drill, runner.NewestDrill, daemon.Hooks{}, log.With(zap.String("schedule", "drill"))).WithPlan(daemon.DrillPlan)
	logDrillSetup(cfg, log)

	if cfg.Daemon.Listen != "off" {
		srv, err := startMonitor(cfg, m, sched, log)
		if err != nil {
			return err
		}
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(c)
		}()
		log.Info("serving health and metrics", zap.String("address", srv.Addr()))
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
			reload(g, []*daemon.Scheduler{sched, drills}, runner, m, auditLog, log)
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
func reload(g *globals, scheds []*daemon.Scheduler, runner *cycle.Runner, m *metrics.Metrics, auditLog *audit.Log, log *zap.Logger) {
	cfg, err := g.loadConfig()
	ev := audit.Event{Action: audit.ActionConfigReload, Outcome: "ok", Detail: g.configPath}
	if err != nil {
		log.Error("configuration reload rejected: the running configuration stays", zap.Error(err))
		m.ConfigReloaded(false)
		ev.Outcome, ev.Detail = "failed", err.Error()
	} else {
		runner.SetNotifier(notify.New(cfg.Notify, log, notify.WithVersion(version)))
		open.WarnPlainHTTP(log, cfg)
		for _, name := range cfg.JobOrder {
			m.Job(name)
		}
		for _, s := range scheds {
			s.Reload(cfg)
		}
		logDrillSetup(cfg, log)
		if err := signAudit(auditLog, cfg); err != nil {
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
func maintenanceLoop(ctx context.Context, sched *daemon.Scheduler, runner *cycle.Runner) {
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

// startMonitor serves /healthz, /readyz and /metrics.
func startMonitor(cfg *config.Config, m *metrics.Metrics, sched *daemon.Scheduler, log *zap.Logger) (*monitor.Server, error) {
	var allow []netip.Prefix
	for _, a := range cfg.Daemon.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil { // validated by config
			return nil, usageErr(err)
		}
		allow = append(allow, p)
	}
	return monitor.Start(monitor.Options{
		Listen:   cfg.Daemon.Listen,
		Token:    cfg.Daemon.Token,
		Allow:    allow,
		Gatherer: m.Registry(),
		Ready:    (&readiness{sched: sched}).check,
		Log:      log,
	})
}

// readiness answers /readyz: every destination of the running
// configuration answers. Stores are opened once per configuration, not
// per probe (opening one loads the AWS SDK configuration).
type readiness struct {
	sched *daemon.Scheduler

	mu     sync.Mutex
	cfg    *config.Config // the configuration stores were opened for
	stores []storage.Destination
}

func (r *readiness) check(ctx context.Context) error {
	stores, err := r.open(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range stores {
		_, err := d.Store.Stat(ctx, "_coffer/readyz")
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			errs = append(errs, fmt.Errorf("destination %s: %w", d.Name, err))
		}
	}
	return errors.Join(errs...)
}

// open returns the stores of the running configuration.
func (r *readiness) open(ctx context.Context) ([]storage.Destination, error) {
	cfg := r.sched.Config()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg == cfg {
		return r.stores, nil
	}
	var stores []storage.Destination
	for _, name := range cfg.DestinationOrder {
		s, err := open.Store(ctx, cfg.Destinations[name])
		if err != nil {
			return nil, fmt.Errorf("destination %s: %w", name, err)
		}
		stores = append(stores, storage.Destination{Name: name, Store: s})
	}
	r.cfg, r.stores = cfg, stores
	return stores, nil
}

// probeHA checks that each job's lease destination honours conditional
// writes; HA mode is refused otherwise.
func probeHA(ctx context.Context, cfg *config.Config) error {
	seen := map[string]bool{}
	for _, name := range cfg.JobOrder {
		d := cfg.Jobs[name].Destinations[0]
		if seen[d] {
			continue
		}
		seen[d] = true
		s, err := open.Store(ctx, cfg.Destinations[d])
		if err != nil {
			return err
		}
		p, ok := s.(interface{ ProbeConditionalWrites(context.Context) error })
		if !ok {
			return fmt.Errorf("daemon.ha: destination %s (%s) cannot hold a lease: HA mode needs an S3 destination with conditional writes first in each job's list", d, s)
		}
		if err := p.ProbeConditionalWrites(ctx); err != nil {
			return fmt.Errorf("daemon.ha: destination %s: %w", d, err)
		}
	}
	return nil
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
	shipAuditTo(ctx, auditLog, d.Store, log)
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
