package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/internal/monitor"
	"github.com/coffer-backup/coffer/internal/page"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// startMonitor serves /healthz, /readyz, /metrics and the page (with the
// state directory dir's audit log).
func startMonitor(cfg *config.Config, m *metrics.Metrics, sched *Scheduler, dir string, log *zap.Logger) (*monitor.Server, error) {
	var allow []netip.Prefix
	for _, a := range cfg.Daemon.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil { // validated by config
			return nil, &SetupError{err}
		}
		allow = append(allow, p)
	}
	return monitor.Start(monitor.Options{
		Listen:   cfg.Daemon.Listen,
		Token:    cfg.Daemon.Token,
		Allow:    allow,
		Gatherer: m.Registry(),
		Ready:    (&readiness{sched: sched}).check,
		// The page reads the stores like coffer report, on its own
		// connections, and takes no lock of the scheduler or the runner.
		Page: page.New(page.Options{Config: sched.Config, StateDir: dir, Protected: !cfg.Daemon.Token.IsZero(),
			Log: log.Named("page")}),
		Log: log,
	})
}

// readiness answers /readyz: every destination of the running
// configuration answers. Stores are opened once per configuration, not
// per probe (opening one loads the AWS SDK configuration).
type readiness struct {
	sched *Scheduler

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
		_, err := d.Store.Stat(ctx, layout.Readyz)
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
