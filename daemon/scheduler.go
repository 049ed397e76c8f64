package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/metrics"
)

// Trigger says why a job runs.
type Trigger struct {
	// Slot is the scheduled time this run serves: a backup taken at or
	// after Slot serves it (for a catch-up run, start-up time minus one
	// schedule period).
	Slot time.Time
	// Reason is "schedule" or "catch-up".
	Reason string
}

// RunFunc runs one job once. It must return promptly when ctx is cancelled
// (uploads aborted, nothing half-written).
type RunFunc func(ctx context.Context, cfg *config.Config, job *config.Job, t Trigger)

// NewestFunc returns the time of a job's newest complete backup on any of
// its destinations; ok is false when it has none.
type NewestFunc func(ctx context.Context, cfg *config.Config, job *config.Job) (newest time.Time, ok bool, err error)

// Hooks are told what the scheduler decides, for metrics; any may be nil.
type Hooks struct {
	// Skipped is called for a slot not run, with a metrics skip reason
	// (metrics.SkipOverlap).
	Skipped func(job, reason string)
	NextRun func(job string, t time.Time)
	Running func(job string, running bool)
	// Forget is called for a job a reload removed.
	Forget func(job string)
}

// Plan says which schedule a Scheduler follows for a job (one parsed by
// config validation, followed in the job's time zone), and whether the
// job is scheduled at all.
type Plan func(job *config.Job) (sched cron.Schedule, on bool)

// BackupPlan schedules each job's backups (Job.Schedule): the default.
func BackupPlan(job *config.Job) (cron.Schedule, bool) { return job.BackupSchedule(), true }

// DrillPlan schedules each job's restore drills (Job.Drill.Schedule), for
// jobs whose drills are enabled.
func DrillPlan(job *config.Job) (cron.Schedule, bool) {
	if !job.Drill.Enabled {
		return nil, false
	}
	return job.DrillSchedule(), true
}

// Scheduler runs each job of a configuration on its cron schedule: one run
// of a job at a time (an overlapping trigger is skipped), at most
// Daemon.MaxConcurrent different jobs at once (the others wait), and a
// catch-up run at start for a job whose newest backup is older than its
// schedule period.
type Scheduler struct {
	run    RunFunc
	plan   Plan
	newest NewestFunc
	hooks  Hooks
	log    *zap.Logger
	now    func() time.Time

	mu       sync.Mutex
	cfg      *config.Config
	sem      chan struct{}      // MaxConcurrent slots
	running  map[string]bool    // jobs running now
	stopJobs context.CancelFunc // stops the current schedule loops
	runCtx   context.Context    // parent of every run; cancelled at shutdown
	loops    sync.WaitGroup     // schedule loops
	runs     sync.WaitGroup     // job runs
}

// New returns a scheduler for cfg. run does the work; newest (may be nil)
// enables catch-up runs.
func New(cfg *config.Config, run RunFunc, newest NewestFunc, hooks Hooks, log *zap.Logger) *Scheduler {
	return &Scheduler{
		run: run, plan: BackupPlan, newest: newest, hooks: hooks, log: log, now: time.Now,
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.Daemon.MaxConcurrent),
		running: map[string]bool{},
	}
}

// WithPlan makes the scheduler follow p instead of BackupPlan; call it
// before Run.
func (s *Scheduler) WithPlan(p Plan) *Scheduler {
	s.plan = p
	return s
}

// Config returns the configuration the scheduler runs now.
func (s *Scheduler) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Run schedules the jobs until ctx is cancelled, then cancels the runs in
// progress and waits up to shutdownTimeout for them to finish. It returns
// an error only when runs were still going when the timeout passed.
func (s *Scheduler) Run(ctx context.Context) error {
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	s.mu.Lock()
	s.runCtx = runCtx
	s.start(runCtx, s.cfg, true)
	s.mu.Unlock()

	<-ctx.Done()
	s.mu.Lock()
	s.stopJobs()
	timeout := s.cfg.Daemon.ShutdownTimeout.D()
	s.mu.Unlock()
	s.loops.Wait()

	s.log.Info("shutting down: cancelling running jobs", zap.Duration("timeout", timeout))
	cancelRuns()
	done := make(chan struct{})
	go func() { s.runs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("jobs still running %s after shutdown began", timeout)
	}
}

// Reload switches to cfg: schedule loops restart with the new jobs and
// schedules; runs in progress finish with the configuration they started
// with. The caller validates cfg (config.Load) before. Reload before Run
// only replaces the configuration.
func (s *Scheduler) Reload(cfg *config.Config) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cfg
	if s.runCtx == nil {
		s.cfg = cfg
		return
	}
	s.stopJobs()
	s.mu.Unlock() // loops take s.mu to trigger runs
	s.loops.Wait()
	s.mu.Lock()
	for _, name := range old.JobOrder {
		if cfg.Jobs[name] == nil && s.hooks.Forget != nil {
			s.hooks.Forget(name)
		}
	}
	if cfg.Daemon.MaxConcurrent != cap(s.sem) {
		// Runs in progress hold slots of the old semaphore and release
		// them there; new runs use the new one.
		s.sem = make(chan struct{}, cfg.Daemon.MaxConcurrent)
	}
	s.cfg = cfg
	s.start(s.runCtx, cfg, false)
}

// start begins one schedule loop per job. s.mu is held.
func (s *Scheduler) start(ctx context.Context, cfg *config.Config, catchUp bool) {
	loopCtx, cancel := context.WithCancel(ctx)
	s.stopJobs = cancel
	for _, name := range cfg.JobOrder {
		job := cfg.Jobs[name]
		sched, on := s.plan(job)
		if !on {
			continue
		}
		loc := job.Location()
		s.loops.Add(1)
		go func() {
			defer s.loops.Done()
			// Slots that pass while the catch-up check runs (it may
			// wait up to a minute on a slow destination) are served
			// after it, not lost: the loop starts from now.
			from := s.now()
			if catchUp {
				s.catchUp(loopCtx, ctx, cfg, job, sched, loc)
			}
			s.loop(loopCtx, ctx, cfg, job, sched, loc, from)
		}()
	}
}

// loop waits for each activation of job's schedule after from and
// triggers a run in runCtx. Activations between from and the loop's
// start (while the catch-up check ran) are triggered at once, in order:
// the first starts a run, the others are skipped as overlapping (logged
// and counted), so that no slot is passed over in silence. It returns
// when loopCtx is cancelled.
func (s *Scheduler) loop(loopCtx, runCtx context.Context, cfg *config.Config, job *config.Job, sched cron.Schedule, loc *time.Location, from time.Time) {
	next := sched.Next(from.In(loc))
	backlog := true // next may be a slot that passed before the loop began
	for {
		if !backlog || next.After(s.now()) {
			backlog = false
			next = sched.Next(s.now().In(loc))
		}
		if s.hooks.NextRun != nil {
			s.hooks.NextRun(job.Name, next)
		}
		s.log.Debug("next run", zap.String("job", job.Name), zap.Time("at", next))
		t := time.NewTimer(time.Until(next))
		select {
		case <-loopCtx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.trigger(runCtx, cfg, job, Trigger{Slot: next, Reason: "schedule"})
		if backlog {
			next = sched.Next(next)
		}
	}
}

// catchUp runs job at once when no backup was taken since its latest
// slot (the daemon was down over it, or was killed during its run), or
// when it has none. The newest backup is judged by the job's last slot,
// not by its age: a daemon killed during a slot's run and restarted
// within seconds finds last period's backup a little less than a period
// old, and would otherwise wait a whole period with that slot unserved.
func (s *Scheduler) catchUp(loopCtx, runCtx context.Context, cfg *config.Config, job *config.Job, sched cron.Schedule, loc *time.Location) {
	if s.newest == nil {
		return
	}
	now := s.now()
	period := config.SchedulePeriod(sched, now.In(loc))
	last, hasLast := lastSlot(sched, now.In(loc), period)
	ctx, cancel := context.WithTimeout(loopCtx, time.Minute)
	newest, ok, err := s.newest(ctx, cfg, job)
	cancel()
	switch {
	case err != nil:
		s.log.Warn("catch-up check failed; waiting for the next slot", zap.String("job", job.Name), zap.Error(err))
		return
	case ok && hasLast && !newest.Before(last):
		return
	case ok && !hasLast && now.Sub(newest) <= period:
		return
	}
	fields := []zap.Field{zap.String("job", job.Name), zap.Duration("period", period)}
	if hasLast {
		fields = append(fields, zap.Time("last_slot", last))
	}
	if ok {
		fields = append(fields, zap.Time("newest_backup", newest))
	} else {
		fields = append(fields, zap.String("newest_backup", "none"))
	}
	s.log.Info("missed run: catching up now", fields...)
	slot := now.Add(-period)
	if hasLast {
		slot = last
	}
	s.trigger(runCtx, cfg, job, Trigger{Slot: slot, Reason: "catch-up"})
}

// lastSlot returns the latest activation of sched at or before now,
// looking back one period (the longest gap between activations, so there
// is one unless the schedule is irregular beyond what Period saw).
func lastSlot(sched cron.Schedule, now time.Time, period time.Duration) (time.Time, bool) {
	if period > 400*24*time.Hour {
		return time.Time{}, false
	}
	var last time.Time
	for t := sched.Next(now.Add(-period - time.Second)); !t.IsZero() && !t.After(now); t = sched.Next(t) {
		last = t
	}
	return last, !last.IsZero()
}

// trigger starts a run of job unless one is already going.
func (s *Scheduler) trigger(ctx context.Context, cfg *config.Config, job *config.Job, t Trigger) {
	s.mu.Lock()
	if s.running[job.Name] {
		s.mu.Unlock()
		s.log.Warn("previous run still going: this slot is skipped", zap.String("job", job.Name), zap.Time("slot", t.Slot))
		if s.hooks.Skipped != nil {
			s.hooks.Skipped(job.Name, metrics.SkipOverlap)
		}
		return
	}
	s.running[job.Name] = true
	sem := s.sem
	s.runs.Add(1)
	s.mu.Unlock()

	go func() {
		defer s.runs.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, job.Name)
			s.mu.Unlock()
		}()
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-sem }()
		if s.hooks.Running != nil {
			s.hooks.Running(job.Name, true)
			defer s.hooks.Running(job.Name, false)
		}
		s.run(ctx, cfg, job, t)
	}()
}
