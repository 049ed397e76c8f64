package metrics_test

import (
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/coffer-backup/coffer/internal/metrics"
)

// series gathers reg and returns every coffer_* sample as
// `name{label="value",...}` (labels sorted) -> value.
func series(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "coffer_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(ls)
			key := mf.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			default:
				t.Fatalf("%s: neither counter nor gauge", key)
			}
		}
	}
	return out
}

// want checks that every key in exp has that value and every key in absent
// is missing.
func want(t *testing.T, got map[string]float64, exp map[string]float64, absent ...string) {
	t.Helper()
	for k, v := range exp {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s missing", k)
		case g != v:
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
	for _, k := range absent {
		if g, ok := got[k]; ok {
			t.Errorf("%s = %v, want no such series", k, g)
		}
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func TestBackupFinishedRecordsEachDestinationsLastSuccess(t *testing.T) {
	m := metrics.New()
	t0 := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)

	// Partial: the offsite copy failed.
	m.BackupFinished("db", metrics.OutcomePartial, t0, t0.Add(90*time.Second), map[string]metrics.DestResult{
		"primary": {OK: true, Bytes: 1234},
		"offsite": {OK: false, Bytes: 99},
	})
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_backup_runs_total{job="db",outcome="partial"}`:                         1,
		`coffer_backup_last_run_timestamp_seconds{job="db"}`:                           unix(t0.Add(90 * time.Second)),
		`coffer_backup_last_duration_seconds{job="db"}`:                                90,
		`coffer_backup_last_success_timestamp_seconds{destination="primary",job="db"}`: unix(t0.Add(90 * time.Second)),
		`coffer_backup_last_bytes{destination="primary",job="db"}`:                     1234,
	},
		`coffer_backup_last_success_timestamp_seconds{destination="offsite",job="db"}`,
		`coffer_backup_last_bytes{destination="offsite",job="db"}`,
	)

	// A week later both work.
	t1 := t0.Add(7 * 24 * time.Hour)
	m.BackupFinished("db", metrics.OutcomeOK, t1, t1.Add(2*time.Minute), map[string]metrics.DestResult{
		"primary": {OK: true, Bytes: 2000},
		"offsite": {OK: true, Bytes: 2000},
	})
	// Then a run that fails everywhere: last success must not move, so a
	// staleness alert fires.
	t2 := t1.Add(7 * 24 * time.Hour)
	m.BackupFinished("db", metrics.OutcomeFailed, t2, t2.Add(5*time.Second), map[string]metrics.DestResult{
		"primary": {OK: false},
		"offsite": {OK: false},
	})
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_backup_runs_total{job="db",outcome="partial"}`:                         1,
		`coffer_backup_runs_total{job="db",outcome="ok"}`:                              1,
		`coffer_backup_runs_total{job="db",outcome="failed"}`:                          1,
		`coffer_backup_last_run_timestamp_seconds{job="db"}`:                           unix(t2.Add(5 * time.Second)),
		`coffer_backup_last_duration_seconds{job="db"}`:                                5,
		`coffer_backup_last_success_timestamp_seconds{destination="primary",job="db"}`: unix(t1.Add(2 * time.Minute)),
		`coffer_backup_last_success_timestamp_seconds{destination="offsite",job="db"}`: unix(t1.Add(2 * time.Minute)),
		`coffer_backup_last_bytes{destination="primary",job="db"}`:                     2000,
		`coffer_backup_last_bytes{destination="offsite",job="db"}`:                     2000,
	})
}

func TestJobStartsCountersAtZero(t *testing.T) {
	m := metrics.New()
	m.Job("db")
	exp := map[string]float64{`coffer_job_running{job="db"}`: 0}
	for _, o := range []string{"ok", "partial", "failed"} {
		exp[`coffer_backup_runs_total{job="db",outcome="`+o+`"}`] = 0
	}
	for _, r := range []string{"overlap", "lease_held", "already_done"} {
		exp[`coffer_backup_skipped_total{job="db",reason="`+r+`"}`] = 0
	}
	exp[`coffer_drill_runs_total{job="db",result="passed"}`] = 0
	exp[`coffer_drill_runs_total{job="db",result="failed"}`] = 0
	want(t, series(t, m.Registry()), exp)
}

func TestSchedulerMetrics(t *testing.T) {
	m := metrics.New()
	next := time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)
	m.NextRun("db", next.Add(-time.Hour))
	m.NextRun("db", next)
	m.BackupSkipped("db", metrics.SkipOverlap)
	m.BackupSkipped("db", metrics.SkipOverlap)
	m.BackupSkipped("db", metrics.SkipLeaseHeld)
	m.Running("db", true)
	m.Running("web", true)
	m.Running("web", false)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_next_run_timestamp_seconds{job="db"}`:               unix(next),
		`coffer_backup_skipped_total{job="db",reason="overlap"}`:    2,
		`coffer_backup_skipped_total{job="db",reason="lease_held"}`: 1,
		`coffer_job_running{job="db"}`:                              1,
		`coffer_job_running{job="web"}`:                             0,
	})
}

func TestMaintenanceMetrics(t *testing.T) {
	m := metrics.New()
	m.Pruned("db", "primary", 3)
	m.Pruned("db", "primary", 2)
	m.Locked("db", "primary", 4)
	m.Locked("db", "primary", 1) // a level, not a count: replaced
	m.Swept("offsite", 2)
	m.Swept("offsite", 1)
	m.Repaired("db", "offsite", metrics.OutcomeOK)
	m.Repaired("db", "offsite", metrics.OutcomeFailed)
	m.Repaired("db", "offsite", metrics.OutcomeOK)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_pruned_backups_total{destination="primary",job="db"}`:           5,
		`coffer_locked_backups{destination="primary",job="db"}`:                 1,
		`coffer_swept_leftovers_total{destination="offsite"}`:                   3,
		`coffer_repairs_total{destination="offsite",job="db",outcome="ok"}`:     2,
		`coffer_repairs_total{destination="offsite",job="db",outcome="failed"}`: 1,
	})
}

func TestLeaseHeldKeepsOneSeriesPerJob(t *testing.T) {
	m := metrics.New()
	m.LeaseHeld("db", "host-a", true)
	m.LeaseHeld("web", "host-a", true)
	m.LeaseHeld("db", "host-b", true) // the lease moved
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_lease_held{holder="host-b",job="db"}`:  1,
		`coffer_lease_held{holder="host-a",job="web"}`: 1,
	}, `coffer_lease_held{holder="host-a",job="db"}`)

	m.LeaseHeld("db", "host-b", false)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_lease_held{holder="host-b",job="db"}`: 0,
	}, `coffer_lease_held{holder="host-a",job="db"}`)
}

func TestConfigReloaded(t *testing.T) {
	m := metrics.New()
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_config_reloads_total{result="ok"}`:     0,
		`coffer_config_reloads_total{result="failed"}`: 0,
	})

	before := unix(time.Now())
	m.ConfigReloaded(true)
	after := unix(time.Now())
	got := series(t, m.Registry())
	ts := got["coffer_config_last_reload_success_timestamp_seconds"]
	if ts < before || ts > after {
		t.Errorf("last reload success = %v, want between %v and %v", ts, before, after)
	}

	m.ConfigReloaded(false)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_config_reloads_total{result="ok"}`:            1,
		`coffer_config_reloads_total{result="failed"}`:        1,
		`coffer_config_last_reload_success_timestamp_seconds`: ts, // a failure does not move it
	})
}

// populate sets every metric for job.
func populate(m *metrics.Metrics, job string) {
	now := time.Now()
	m.Job(job)
	m.BackupFinished(job, metrics.OutcomeOK, now.Add(-time.Minute), now, map[string]metrics.DestResult{"primary": {OK: true, Bytes: 1}})
	m.BackupSkipped(job, metrics.SkipAlreadyDone)
	m.NextRun(job, now.Add(time.Hour))
	m.Running(job, false)
	m.Pruned(job, "primary", 1)
	m.Locked(job, "primary", 1)
	m.Repaired(job, "primary", metrics.OutcomeOK)
	m.LeaseHeld(job, "host-a", true)
	m.Swept("primary", 1)
	m.ConfigReloaded(true)
	m.DrillFinished(job, true, now, 60, map[string]float64{"load": 50}, 60.0/28800)
}

func TestForgetRemovesOnlyThatJob(t *testing.T) {
	m := metrics.New()
	populate(m, "gone")
	populate(m, "kept")
	keptBefore := 0
	for k := range series(t, m.Registry()) {
		if strings.Contains(k, `job="kept"`) {
			keptBefore++
		}
	}

	m.Forget("gone")

	got := series(t, m.Registry())
	keptAfter := 0
	for k := range got {
		if strings.Contains(k, `job="gone"`) {
			t.Errorf("series %s survived Forget", k)
		}
		if strings.Contains(k, `job="kept"`) {
			keptAfter++
		}
	}
	if keptAfter != keptBefore || keptAfter < 12 {
		t.Errorf("job kept has %d series after Forget, %d before; want equal and at least 12", keptAfter, keptBefore)
	}
	want(t, got, map[string]float64{`coffer_swept_leftovers_total{destination="primary"}`: 2})

	// The forgotten job's lease holder is forgotten too: a new lease
	// starts a fresh series and removes no other.
	m.LeaseHeld("gone", "host-b", true)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_lease_held{holder="host-b",job="gone"}`: 1,
		`coffer_lease_held{holder="host-a",job="kept"}`: 1,
	})
}

func TestEveryMetricIsDocumentedAndFollowsConventions(t *testing.T) {
	m := metrics.New()
	populate(m, "db")
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		if strings.HasPrefix(mf.GetName(), "coffer_") {
			names = append(names, mf.GetName())
			if !strings.Contains(string(doc), "\t"+mf.GetName()+" ") {
				t.Errorf("%s is not in doc.go's table", mf.GetName())
			}
		}
	}
	if len(names) != 21 {
		t.Errorf("%d coffer metrics exposed, want 21: %v", len(names), names)
	}
	for _, n := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !seen[n] {
			t.Errorf("%s missing: Go or process collector not registered", n)
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestEachMetricsHasItsOwnRegistry(t *testing.T) {
	a, b := metrics.New(), metrics.New() // would panic on a shared registry
	a.Swept("primary", 1)
	if n := testutil.CollectAndCount(b.Registry(), "coffer_swept_leftovers_total"); n != 0 {
		t.Errorf("b sees %d swept series recorded on a", n)
	}
}

func TestNilMetricsDiscards(t *testing.T) {
	var m *metrics.Metrics
	// Each must return without panicking.
	m.Job("db")
	m.BackupFinished("db", metrics.OutcomeOK, time.Now(), time.Now(), nil)
	m.BackupSkipped("db", metrics.SkipOverlap)
	m.NextRun("db", time.Now())
	m.Running("db", true)
	m.Pruned("db", "p", 1)
	m.Locked("db", "p", 1)
	m.Swept("p", 1)
	m.Repaired("db", "p", metrics.OutcomeOK)
	m.LeaseHeld("db", "h", true)
	m.ConfigReloaded(true)
	m.Forget("db")
}

func TestDrillFinishedKeepsLastSuccessOnFailure(t *testing.T) {
	m := metrics.New()
	t0 := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC)
	m.DrillFinished("db", true, t0, 1800, map[string]float64{"load": 1500, "validate": 200}, 1800.0/28800)
	t1 := t0.Add(30 * 24 * time.Hour)
	m.DrillFinished("db", false, t1, 40000, map[string]float64{"load": 39000}, 40000.0/28800)
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_drill_runs_total{job="db",result="passed"}`:              1,
		`coffer_drill_runs_total{job="db",result="failed"}`:              1,
		`coffer_drill_duration_seconds{job="db"}`:                        40000,
		`coffer_drill_rto_ratio{job="db"}`:                               40000.0 / 28800,
		`coffer_drill_phase_duration_seconds{job="db",phase="load"}`:     39000,
		`coffer_drill_phase_duration_seconds{job="db",phase="validate"}`: 200,
		`coffer_drill_last_run_timestamp_seconds{job="db"}`:              unix(t1),
		`coffer_drill_last_success_timestamp_seconds{job="db"}`:          unix(t0),
	})
	t2 := t1.Add(time.Hour)
	m.DrillNotStarted("db", t2) // no identity file: counted, no duration
	want(t, series(t, m.Registry()), map[string]float64{
		`coffer_drill_runs_total{job="db",result="failed"}`:     2,
		`coffer_drill_duration_seconds{job="db"}`:               40000,
		`coffer_drill_last_run_timestamp_seconds{job="db"}`:     unix(t2),
		`coffer_drill_last_success_timestamp_seconds{job="db"}`: unix(t0),
	})
	m.Forget("db")
	want(t, series(t, m.Registry()), nil, `coffer_drill_duration_seconds{job="db"}`, `coffer_drill_rto_ratio{job="db"}`)
}
