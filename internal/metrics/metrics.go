package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Outcome is the outcome label of coffer_backup_runs_total,
// coffer_repairs_total and coffer_config_reloads_total (its "result").
// The words are what alerts match on: a value is never renamed.
type Outcome string

// Outcomes of a backup run, a repair or a reload (ok and failed only for
// the last two).
const (
	OutcomeOK      Outcome = "ok"
	OutcomePartial Outcome = "partial"
	OutcomeFailed  Outcome = "failed"
)

// Results of a drill, the result label of coffer_drill_runs_total.
const (
	drillPassed = "passed"
	drillFailed = "failed"
)

// Skip reasons for BackupSkipped.
const (
	SkipOverlap     = "overlap"      // the job's previous run was still going
	SkipLeaseHeld   = "lease_held"   // another daemon holds the job's lease
	SkipAlreadyDone = "already_done" // a backup for this slot already exists
)

// DestResult is what one destination did in one backup run.
type DestResult struct {
	// OK is true when the destination stored the backup (payload and
	// manifest).
	OK bool
	// Bytes is the size of the payload stored there.
	Bytes int64
}

// Metrics records what the daemon does as Prometheus metrics. Create it
// with New; the zero value is not usable, but a nil *Metrics is (it
// discards everything).
type Metrics struct {
	reg *prometheus.Registry

	runs         *prometheus.CounterVec
	lastRun      *prometheus.GaugeVec
	lastDuration *prometheus.GaugeVec
	lastSuccess  *prometheus.GaugeVec
	lastBytes    *prometheus.GaugeVec
	skipped      *prometheus.CounterVec
	nextRun      *prometheus.GaugeVec
	running      *prometheus.GaugeVec
	pruned       *prometheus.CounterVec
	locked       *prometheus.GaugeVec
	swept        *prometheus.CounterVec
	repairs      *prometheus.CounterVec
	leaseHeld    *prometheus.GaugeVec
	reloads      *prometheus.CounterVec
	lastReloadOK prometheus.Gauge
	drills       *prometheus.CounterVec
	drillTime    *prometheus.GaugeVec
	drillPhase   *prometheus.GaugeVec
	drillRatio   *prometheus.GaugeVec
	drillLast    *prometheus.GaugeVec
	drillPassed  *prometheus.GaugeVec
	untrusted    *prometheus.GaugeVec
	byJob        []*prometheus.MetricVec // every vector with a job label, for Forget

	mu      sync.Mutex
	holders map[string]string // job -> holder label of its coffer_lease_held series
}

var (
	outcomes = []Outcome{OutcomeOK, OutcomePartial, OutcomeFailed}
	skips    = []string{SkipOverlap, SkipLeaseHeld, SkipAlreadyDone}
)

// New returns Metrics registered on a new registry of their own, with the
// Go runtime and process collectors.
func New() *Metrics {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		runs: counter("coffer_backup_runs_total",
			"Backup runs that finished, by outcome (ok: every destination, partial: some, failed: none).", "job", "outcome"),
		lastRun: gauge("coffer_backup_last_run_timestamp_seconds",
			"When the job's last backup run finished, whatever its outcome.", "job"),
		lastDuration: gauge("coffer_backup_last_duration_seconds",
			"How long the job's last backup run took.", "job"),
		lastSuccess: gauge("coffer_backup_last_success_timestamp_seconds",
			"When the newest backup stored at the destination finished.", "job", "destination"),
		lastBytes: gauge("coffer_backup_last_bytes",
			"Payload size of the newest backup stored at the destination.", "job", "destination"),
		skipped: counter("coffer_backup_skipped_total",
			"Scheduled runs that did not start, by reason (overlap, lease_held, already_done).", "job", "reason"),
		nextRun: gauge("coffer_next_run_timestamp_seconds",
			"When the job is next scheduled to run.", "job"),
		running: gauge("coffer_job_running",
			"1 while a run of the job is in progress, else 0.", "job"),
		pruned: counter("coffer_pruned_backups_total",
			"Backups deleted by retention.", "job", "destination"),
		locked: gauge("coffer_locked_backups",
			"Backups retention would delete but Object Lock still protects, at the last prune.", "job", "destination"),
		swept: counter("coffer_swept_leftovers_total",
			"Leftovers removed: unfinished uploads and payloads without a manifest.", "destination"),
		repairs: counter("coffer_repairs_total",
			"Backups copied to a destination that was missing them, by outcome (ok, failed).", "job", "destination", "outcome"),
		leaseHeld: gauge("coffer_lease_held",
			"1 while the holder holds the job's HA lease, 0 when it does not.", "job", "holder"),
		reloads: counter("coffer_config_reloads_total",
			"Configuration reloads, by result (ok, failed).", "result"),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "coffer_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration was last loaded successfully.",
		}),
		drills: counter("coffer_drill_runs_total",
			"Restore drills that finished, by result (passed, failed).", "job", "result"),
		drillTime: gauge("coffer_drill_duration_seconds",
			"How long the job's last restore drill took, all phases.", "job"),
		drillPhase: gauge("coffer_drill_phase_duration_seconds",
			"How long each phase of the job's last restore drill took (locate, load, validate, cleanup).", "job", "phase"),
		drillRatio: gauge("coffer_drill_rto_ratio",
			"The job's last restore drill duration divided by its RTO; above 1 the RTO would be missed.", "job"),
		drillLast: gauge("coffer_drill_last_run_timestamp_seconds",
			"When the job's last restore drill finished, whatever its result.", "job"),
		drillPassed: gauge("coffer_drill_last_success_timestamp_seconds",
			"When the job's last passing restore drill finished.", "job"),
		untrusted: gauge("coffer_untrusted_manifests",
			"Manifest keys of the job at the destination that are not used (signature, format, or a key naming another backup), at the last read of its catalog.", "job", "destination"),
		holders: map[string]string{},
	}
	m.byJob = []*prometheus.MetricVec{
		m.drills.MetricVec, m.drillTime.MetricVec, m.drillPhase.MetricVec,
		m.drillRatio.MetricVec, m.drillLast.MetricVec, m.drillPassed.MetricVec,
		m.runs.MetricVec, m.lastRun.MetricVec, m.lastDuration.MetricVec,
		m.lastSuccess.MetricVec, m.lastBytes.MetricVec, m.skipped.MetricVec,
		m.nextRun.MetricVec, m.running.MetricVec, m.pruned.MetricVec,
		m.locked.MetricVec, m.repairs.MetricVec, m.leaseHeld.MetricVec,
		m.untrusted.MetricVec,
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.runs, m.lastRun, m.lastDuration, m.lastSuccess, m.lastBytes,
		m.skipped, m.nextRun, m.running, m.pruned, m.locked, m.swept,
		m.repairs, m.leaseHeld, m.reloads, m.lastReloadOK,
		m.drills, m.drillTime, m.drillPhase, m.drillRatio, m.drillLast, m.drillPassed,
		m.untrusted,
	)
	m.reloads.WithLabelValues(string(OutcomeOK))
	m.reloads.WithLabelValues(string(OutcomeFailed))
	return m
}

// Registry returns the registry holding every metric, for /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Job declares a configured job: its run and skip counters start at zero
// for every outcome and reason, so an increase() alert sees the first
// failure. Call it for each job at start-up and after each reload.
func (m *Metrics) Job(job string) {
	if m == nil {
		return
	}
	for _, o := range outcomes {
		m.runs.WithLabelValues(job, string(o))
	}
	for _, r := range skips {
		m.skipped.WithLabelValues(job, r)
	}
	m.drills.WithLabelValues(job, drillPassed)
	m.drills.WithLabelValues(job, drillFailed)
	m.running.WithLabelValues(job)
}

// BackupFinished records one finished backup run of job: its outcome
// (OutcomeOK, OutcomePartial or OutcomeFailed), when it finished and how
// long it took, and for each destination that stored the backup, its
// finish time and payload size. Destinations that failed keep the values
// of their last success.
func (m *Metrics) BackupFinished(job string, outcome Outcome, started, finished time.Time, perDest map[string]DestResult) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(job, string(outcome)).Inc()
	m.lastRun.WithLabelValues(job).Set(seconds(finished))
	m.lastDuration.WithLabelValues(job).Set(finished.Sub(started).Seconds())
	for dest, r := range perDest {
		if !r.OK {
			continue
		}
		m.lastSuccess.WithLabelValues(job, dest).Set(seconds(finished))
		m.lastBytes.WithLabelValues(job, dest).Set(float64(r.Bytes))
	}
}

// DrillFinished records a restore drill of job: whether it passed (result
// "passed" or "failed"), when it finished, its total and per-phase
// durations and its ratio to the RTO.
func (m *Metrics) DrillFinished(job string, passed bool, finished time.Time, total float64, phases map[string]float64, rtoRatio float64) {
	if m == nil {
		return
	}
	result := drillFailed
	if passed {
		result = drillPassed
	}
	m.drills.WithLabelValues(job, result).Inc()
	m.drillLast.WithLabelValues(job).Set(seconds(finished))
	m.drillTime.WithLabelValues(job).Set(total)
	m.drillRatio.WithLabelValues(job).Set(rtoRatio)
	for phase, s := range phases {
		m.drillPhase.WithLabelValues(job, phase).Set(s)
	}
	if passed {
		m.drillPassed.WithLabelValues(job).Set(seconds(finished))
	}
}

// DrillNotStarted records a drill of job that failed before restoring
// anything (no identity, destination not opened): a failed run, with no
// duration or RTO ratio to report.
func (m *Metrics) DrillNotStarted(job string, at time.Time) {
	if m == nil {
		return
	}
	m.drills.WithLabelValues(job, drillFailed).Inc()
	m.drillLast.WithLabelValues(job).Set(seconds(at))
}

// BackupSkipped counts a scheduled run of job that did not start, with
// reason SkipOverlap, SkipLeaseHeld or SkipAlreadyDone.
func (m *Metrics) BackupSkipped(job, reason string) {
	if m == nil {
		return
	}
	m.skipped.WithLabelValues(job, reason).Inc()
}

// NextRun records when job is next scheduled to run.
func (m *Metrics) NextRun(job string, t time.Time) {
	if m == nil {
		return
	}
	m.nextRun.WithLabelValues(job).Set(seconds(t))
}

// Running records whether a run of job is in progress.
func (m *Metrics) Running(job string, running bool) {
	if m == nil {
		return
	}
	m.running.WithLabelValues(job).Set(b2f(running))
}

// Pruned counts n backups of job deleted from dest by retention.
func (m *Metrics) Pruned(job, dest string, n int) {
	if m == nil {
		return
	}
	m.pruned.WithLabelValues(job, dest).Add(float64(n))
}

// Locked records how many backups of job at dest retention would delete
// but Object Lock still protects (a level, set at each prune).
func (m *Metrics) Locked(job, dest string, n int) {
	if m == nil {
		return
	}
	m.locked.WithLabelValues(job, dest).Set(float64(n))
}

// Swept counts n leftovers (unfinished uploads, payloads without a
// manifest) removed from dest.
func (m *Metrics) Swept(dest string, n int) {
	if m == nil {
		return
	}
	m.swept.WithLabelValues(dest).Add(float64(n))
}

// Repaired counts one backup of job copied to dest, which was missing it,
// with outcome OutcomeOK or OutcomeFailed.
func (m *Metrics) Repaired(job, dest string, outcome Outcome) {
	if m == nil {
		return
	}
	m.repairs.WithLabelValues(job, dest, string(outcome)).Inc()
}

// Untrusted records how many manifest keys of job at dest are not used
// because they fail verification (a level, set at each read of the job's
// catalog that listed dest).
func (m *Metrics) Untrusted(job, dest string, n int) {
	if m == nil {
		return
	}
	m.untrusted.WithLabelValues(job, dest).Set(float64(n))
}

// LeaseHeld records whether holder (a daemon's host name) holds job's HA
// lease. A job has one coffer_lease_held series: when the holder changes,
// the previous holder's series is removed.
func (m *Metrics) LeaseHeld(job, holder string, held bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.holders[job]; ok && old != holder {
		m.leaseHeld.DeleteLabelValues(job, old)
	}
	m.holders[job] = holder
	m.leaseHeld.WithLabelValues(job, holder).Set(b2f(held))
}

// ConfigReloaded counts a configuration reload and, when it succeeded,
// records the time.
func (m *Metrics) ConfigReloaded(ok bool) {
	if m == nil {
		return
	}
	result := OutcomeFailed
	if ok {
		result = OutcomeOK
		m.lastReloadOK.Set(seconds(time.Now()))
	}
	m.reloads.WithLabelValues(string(result)).Inc()
}

// Forget removes every series labelled with job, for a job a reload
// removed. Destination-only series (coffer_swept_leftovers_total) stay.
func (m *Metrics) Forget(job string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.holders, job)
	for _, v := range m.byJob {
		v.DeletePartialMatch(prometheus.Labels{"job": job})
	}
}

// seconds is t as fractional Unix seconds.
func seconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
