package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/audit"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/drill"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/metrics"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/open"
)

// These tests run the daemon's parts on a backuptest.Setup: an SQLite job
// backed up to two local directories, no service needed.

// runnerSetup is a backuptest.Setup, its configuration and job app, and
// a Runner for it with an audit log in the setup's state directory, fresh
// metrics and a webhook receiving its notifications (failures and partial
// runs).
type runnerSetup struct {
	*backuptest.Setup
	cfg   *config.Config
	job   *config.Job
	r     *Runner
	audit *audit.Log
	hook  *webhook
}

func newRunnerSetup(t *testing.T, rows int) *runnerSetup {
	t.Helper()
	s := backuptest.NewSetup(t, rows, "")
	auditLog, err := audit.Open(s.State)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auditLog.Close() })
	hook, n := newWebhook(t)
	r := &Runner{Log: zaptest.NewLogger(t), Audit: auditLog, Metrics: metrics.New(), Holder: "test",
		DrillDir: filepath.Join(s.State, "drills")}
	r.SetNotifier(n)
	cfg := s.Load(t)
	return &runnerSetup{Setup: s, cfg: cfg, job: cfg.Jobs["app"], r: r, audit: auditLog, hook: hook}
}

// cycle runs one scheduled cycle of job app.
func (rs *runnerSetup) cycle(t *testing.T) {
	rs.r.Run(t.Context(), rs.cfg, rs.job, Trigger{Slot: time.Now(), Reason: "schedule"})
}

// catalog reads job app's verified catalog on its destinations.
func (rs *runnerSetup) catalog(t *testing.T) (*manifest.Catalog, []storage.Destination) {
	t.Helper()
	dests, err := open.JobDestinations(t.Context(), rs.cfg, rs.job)
	if err != nil {
		t.Fatal(err)
	}
	return manifest.ReadCatalog(t.Context(), "app", dests, manifest.ConfiguredTrust(rs.cfg.Signing), nil), dests
}

// where lists each backup of c as id@destinations, oldest first.
func where(c *manifest.Catalog) []string {
	var out []string
	for _, b := range c.Backups {
		out = append(out, b.ID+"@"+strings.Join(b.Destinations, ","))
	}
	return out
}

// TestRunCycle runs the daemon's cycle of an SQLite job. With offsite
// unable to store (a file stands where the job's folder goes), the backup
// is partial: it is on primary only, the audit trail has primary ok and
// offsite failed with its error, the webhook is told "partial" with
// offsite's error, the metrics count a partial run and primary's size,
// and the audit trail is shipped to primary. The cycle's maintenance then
// fails to copy the backup to offsite (three tries, 6s) and says so.
// Once offsite works again, the
// next cycle stores its backup on both and its maintenance copies the
// first backup to offsite.
func TestRunCycle(t *testing.T) {
	rs := newRunnerSetup(t, 500)
	blocker := filepath.Join(rs.Offsite, "app")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	rs.cycle(t)

	c, dests := rs.catalog(t)
	if len(c.Backups) != 1 || !slices.Equal(c.Backups[0].Destinations, []string{"primary"}) {
		t.Fatalf("after a cycle with offsite broken: backups %v, want one, on primary only", where(c))
	}
	first := c.Backups[0]
	evs := auditEvents(t, rs.audit, audit.ActionBackup)
	if len(evs) != 2 || evs[0].Destination != "primary" || evs[0].Outcome != audit.OutcomeOK || evs[0].BackupID != first.ID ||
		evs[1].Destination != "offsite" || evs[1].Outcome != audit.OutcomeFailed || evs[1].BackupID != first.ID ||
		!strings.Contains(evs[1].Detail, "not a directory") {
		t.Fatalf("audit backup events %+v, want primary ok and offsite failed (not a directory), for %s", evs, first.ID)
	}
	got := rs.hook.received()
	if len(got) != 2 || got[1]["kind"] != "repair" || got[1]["outcome"] != "failed" {
		t.Fatalf("notifications %v, want the backup's and a failed repair", got)
	}
	ev := got[0]
	dd, _ := ev["destinations"].(map[string]any)
	offErr, _ := dd["offsite"].(string)
	if ev["kind"] != "backup" || ev["outcome"] != "partial" || ev["backup_id"] != first.ID || dd["primary"] != "ok" || !strings.Contains(offErr, "not a directory") {
		t.Fatalf("notification %v, want a partial backup %s, primary ok, offsite's error", ev, first.ID)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"coffer_backup_runs_total", []string{"job", "app", "outcome", "partial"}, 1},
		{"coffer_backup_runs_total", []string{"job", "app", "outcome", "ok"}, -1},
		{"coffer_backup_last_bytes", []string{"job", "app", "destination", "primary"}, float64(first.Manifest.Payload.Bytes)},
		{"coffer_backup_last_bytes", []string{"job", "app", "destination", "offsite"}, -1},
		{"coffer_repairs_total", []string{"job", "app", "destination", "offsite", "outcome", "failed"}, 1},
	} {
		if got := metric(t, rs.r.Metrics, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if !slices.ContainsFunc(backuptest.Keys(t, dests[0].Store), func(k string) bool { return strings.HasPrefix(k, "_coffer/audit/") }) {
		t.Errorf("primary holds %v: no audit trail shipped", backuptest.Keys(t, dests[0].Store))
	}

	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	rs.cycle(t)

	c, _ = rs.catalog(t)
	if len(c.Backups) != 2 || c.Backups[0].ID != first.ID {
		t.Fatalf("after the second cycle: backups %v, want the first and a second", where(c))
	}
	for _, b := range c.Backups {
		if !slices.Equal(b.Destinations, []string{"primary", "offsite"}) {
			t.Errorf("backup %s on %v, want on primary and offsite (the first one repaired)", b.ID, b.Destinations)
		}
	}
	if got := metric(t, rs.r.Metrics, "coffer_backup_runs_total", "job", "app", "outcome", "ok"); got != 1 {
		t.Errorf("coffer_backup_runs_total{ok} = %v, want 1", got)
	}
	if got := metric(t, rs.r.Metrics, "coffer_repairs_total", "job", "app", "destination", "offsite", "outcome", "ok"); got != 1 {
		t.Errorf("coffer_repairs_total{offsite, ok} = %v, want 1", got)
	}
	if evs := auditEvents(t, rs.audit, audit.ActionRepair); len(evs) != 2 || evs[0].Outcome != audit.OutcomeFailed ||
		evs[1].BackupID != first.ID || evs[1].Destination != "offsite" || evs[1].Outcome != audit.OutcomeOK {
		t.Errorf("audit repair events %+v, want the first cycle's failure, then %s copied to offsite", evs, first.ID)
	}
	if got := rs.hook.received(); len(got) != 2 {
		t.Errorf("notifications %v after a good cycle, want still two (successes are not sent)", got)
	}
}

// TestMaintain runs the daemon's maintenance of a job with a backup whose
// offsite copy is gone and two older, fake ones past keep_within (28d,
// min_keep 2, so the newer of them stays): repair copies the missing copy back,
// prune deletes the expired backup from both destinations, and each is
// audited and counted. While a cycle of the job runs, maintenance skips
// it.
func TestMaintain(t *testing.T) {
	rs := newRunnerSetup(t, 200)
	rs.cycle(t)
	c, dests := rs.catalog(t)
	if len(c.Backups) != 1 {
		t.Fatalf("backups %v, want one", where(c))
	}
	real := c.Backups[0].Manifest
	now := time.Now()
	var fakes []string
	for _, days := range []time.Duration{40, 35} {
		m := backuptest.Fake(t, "app", manifest.NewID(now.Add(-days*24*time.Hour)), nil, "primary", "offsite")
		backuptest.Put(t, rs.Signer, m, nil, dests[0].Store, dests[1].Store)
		fakes = append(fakes, m.ID)
	}
	for _, key := range []string{manifest.Key("app", real.ID), real.Payload.Key} {
		if err := dests[1].Store.Delete(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}

	// A cycle of the job runs: maintenance leaves it alone.
	mu := rs.r.turn("app")
	mu.Lock()
	rs.r.Maintain(t.Context(), rs.cfg, rs.job)
	mu.Unlock()
	before := []string{fakes[0] + "@primary,offsite", fakes[1] + "@primary,offsite", real.ID + "@primary"}
	if c, _ := rs.catalog(t); !slices.Equal(where(c), before) {
		t.Fatalf("maintenance during a cycle: backups %v, want %v untouched", where(c), before)
	}

	rs.r.Maintain(t.Context(), rs.cfg, rs.job)

	c, _ = rs.catalog(t)
	want := []string{fakes[1] + "@primary,offsite", real.ID + "@primary,offsite"}
	if got := where(c); !slices.Equal(got, want) {
		t.Fatalf("after maintenance: backups %v, want %v (the 40-day-old one pruned, the newest repaired)", got, want)
	}
	if evs := auditEvents(t, rs.audit, audit.ActionRepair); len(evs) != 1 || evs[0].BackupID != real.ID || evs[0].Destination != "offsite" {
		t.Errorf("audit repair events %+v, want %s copied to offsite", evs, real.ID)
	}
	pruned := auditEvents(t, rs.audit, audit.ActionPrune)
	var deleted []string
	for _, ev := range pruned {
		if ev.Outcome == "deleted" {
			deleted = append(deleted, ev.Destination+":"+ev.BackupID)
		}
	}
	slices.Sort(deleted)
	if want := []string{"offsite:" + fakes[0], "primary:" + fakes[0]}; !slices.Equal(deleted, want) {
		t.Errorf("audit prune deletions %v, want %v (all prune events: %+v)", deleted, want, pruned)
	}
	for _, d := range []string{"primary", "offsite"} {
		if got := metric(t, rs.r.Metrics, "coffer_pruned_backups_total", "job", "app", "destination", d); got != 1 {
			t.Errorf("coffer_pruned_backups_total{%s} = %v, want 1", d, got)
		}
	}
	if got := metric(t, rs.r.Metrics, "coffer_repairs_total", "job", "app", "destination", "offsite", "outcome", "ok"); got != 1 {
		t.Errorf("coffer_repairs_total{offsite, ok} = %v, want 1", got)
	}
}

// TestDrillNow drills an SQLite job from its offsite directory. A passing
// drill restores the newest backup, keeps its evidence in DrillDir and on
// offsite (where status and the compliance report read it), audits and
// counts it, and leaves no scratch database. A drill with an identity
// that cannot decrypt fails, keeps its evidence too, and is notified.
func TestDrillNow(t *testing.T) {
	rs := newRunnerSetup(t, 500)
	rs.cycle(t)
	c, dests := rs.catalog(t)
	newest, ok := c.Newest()
	if !ok {
		t.Fatal("no backup to drill")
	}

	rep, err := rs.r.DrillNow(t.Context(), rs.cfg, rs.job, DrillRequest{})
	if err != nil || rep == nil || !rep.Passed() || rep.From != "offsite" || rep.Backup != newest.ID {
		t.Fatalf("drill: %+v, %v; want passed, of %s from offsite", rep, err, newest.ID)
	}
	data, err := os.ReadFile(filepath.Join(rs.r.DrillDir, "app", rep.ID+".json"))
	var local drill.Report
	if err != nil || json.Unmarshal(data, &local) != nil || local.ID != rep.ID || !local.Passed() {
		t.Fatalf("local evidence %s: %v, %+v; want the passed report", rep.ID, err, local)
	}
	stored, err := drill.LatestReport(t.Context(), dests[1].Store, "app", manifest.ConfiguredTrust(rs.cfg.Signing))
	if err != nil || stored == nil || stored.ID != rep.ID || !stored.Passed() {
		t.Fatalf("evidence on offsite: %+v, %v; want report %s, passed and signed", stored, err, rep.ID)
	}
	if evs := auditEvents(t, rs.audit, audit.ActionDrill); len(evs) != 1 || evs[0].Outcome != audit.OutcomeOK || evs[0].BackupID != newest.ID || evs[0].Destination != "offsite" {
		t.Errorf("audit drill events %+v, want one ok for %s from offsite", evs, newest.ID)
	}
	if got := metric(t, rs.r.Metrics, "coffer_drill_runs_total", "job", "app", "result", "passed"); got != 1 {
		t.Errorf("coffer_drill_runs_total{passed} = %v, want 1", got)
	}
	if left, _ := os.ReadDir(rs.Scratch); len(left) != 0 {
		t.Errorf("scratch directory holds %v after the drill, want nothing", left)
	}
	if got := rs.hook.received(); len(got) != 0 {
		t.Errorf("notifications %v for a passing drill, want none", got)
	}

	wrong := backuptest.NewIdentity(t)
	rep, err = rs.r.DrillNow(t.Context(), rs.cfg, rs.job, DrillRequest{Identities: []age.Identity{wrong}})
	if err == nil || rep == nil || rep.Passed() {
		t.Fatalf("drill with a wrong identity: %+v, %v; want a failed report", rep, err)
	}
	if _, err := os.Stat(filepath.Join(rs.r.DrillDir, "app", rep.ID+".json")); err != nil {
		t.Errorf("failed drill's local evidence: %v", err)
	}
	if got := metric(t, rs.r.Metrics, "coffer_drill_runs_total", "job", "app", "result", "failed"); got != 1 {
		t.Errorf("coffer_drill_runs_total{failed} = %v, want 1", got)
	}
	if got := rs.hook.received(); len(got) != 1 || got[0]["kind"] != "drill" || got[0]["outcome"] != "failed" {
		t.Errorf("notifications %v, want one failed drill", got)
	}
}

// TestReloadKeepsRunningConfigOnError: a SIGHUP whose configuration does
// not load leaves both schedulers on the running configuration, counts a
// failed reload and audits it with the error; a valid one switches them,
// and is counted and audited as ok.
func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	rs := newRunnerSetup(t, 10)
	cfg, r := rs.cfg, rs.r
	scheds := []*Scheduler{
		New(cfg, r.Run, nil, Hooks{}, r.Log),
		New(cfg, r.Drill, nil, Hooks{}, r.Log).WithPlan(DrillPlan),
	}
	loadErr := errors.New(rs.Config + ":6: jobs.app.source.type: unknown source type")
	valid := rs.Load(t)
	for i, step := range []struct {
		name       string
		load       *config.Config // nil: the file does not load
		want       *config.Config // the schedulers' configuration after
		outcome    audit.Outcome  // of the audit event
		detail     string
		failed, ok float64 // coffer_config_reloads_total after
	}{
		{"invalid file", nil, cfg, audit.OutcomeFailed, loadErr.Error(), 1, 0},
		{"valid file", valid, valid, audit.OutcomeOK, rs.Config, 1, 1},
	} {
		o := Options{Config: cfg, Log: r.Log, Load: func() (*config.Config, error) {
			if step.load == nil {
				return nil, loadErr
			}
			return step.load, nil
		}}
		reload(o, scheds, r, r.Metrics, rs.audit, r.Log)
		for j, sc := range scheds {
			if sc.Config() != step.want {
				t.Fatalf("%s: scheduler %d runs the wrong configuration", step.name, j)
			}
		}
		failed := metric(t, r.Metrics, "coffer_config_reloads_total", "result", "failed")
		ok := metric(t, r.Metrics, "coffer_config_reloads_total", "result", "ok")
		if failed != step.failed || ok != step.ok {
			t.Errorf("%s: coffer_config_reloads_total failed %v, ok %v; want %v, %v", step.name, failed, ok, step.failed, step.ok)
		}
		evs := auditEvents(t, rs.audit, audit.ActionConfigReload)
		if len(evs) != i+1 || evs[i].Outcome != step.outcome || evs[i].Detail != step.detail {
			t.Errorf("%s: audit reload events %+v, want event %d %s with detail %q", step.name, evs, i+1, step.outcome, step.detail)
		}
	}
}

// TestReadyz: /readyz answers 200 while every destination can be
// statted, and 503 naming the destination when one cannot (its _coffer
// folder is a symbolic link to itself: not "does not exist", an error).
func TestReadyz(t *testing.T) {
	s := backuptest.NewSetup(t, 10, "")
	cfg := s.Load(t)
	cfg.Daemon.Listen = "127.0.0.1:0"
	log := zaptest.NewLogger(t)
	srv, err := startMonitor(cfg, metrics.New(), New(cfg, nil, nil, Hooks{}, log), s.State, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	readyz := func() (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + srv.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with both destinations well: %d %q, want 200", code, body)
	}
	loop := filepath.Join(s.Offsite, "_coffer")
	if err := os.Symlink("_coffer", loop); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "destination offsite") || strings.Contains(body, "primary") {
		t.Fatalf("/readyz with offsite broken: %d %q, want 503 naming offsite only", code, body)
	}
	if err := os.Remove(loop); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Fatalf("/readyz with offsite back: %d %q, want 200", code, body)
	}
}
