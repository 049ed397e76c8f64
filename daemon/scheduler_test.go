package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/robfig/cron/v3"

	"github.com/coffer-backup/coffer/config"
)

const testRecipient = "age18amwfsmeuppmnlyt0zs9jwlclknurzzch0969wrd3pkc67q0mglqe2mfcj"

// testConfig returns a valid configuration with one sqlite job per
// schedule ("a", "b", ...).
func testConfig(t *testing.T, daemon string, schedules ...string) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "recipients: [%s]\ndestinations:\n  d: {type: local, path: /tmp/coffer-sched-test}\njobs:\n", testRecipient)
	for i, s := range schedules {
		fmt.Fprintf(&b, "  %c:\n    source: {type: sqlite, path: /tmp/x.db}\n    schedule: %q\n", 'a'+i, s)
	}
	b.WriteString(daemon)
	cfg, err := config.Parse("test.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// recorder counts runs and skips and the most jobs seen running at once.
type recorder struct {
	mu          sync.Mutex
	runs        map[string][]Trigger
	skips       map[string]int
	active      map[string]int
	maxSameJob  int
	maxAllJobs  int
	activeTotal int
	hold        time.Duration // how long each run takes unless cancelled
	ignoreCtx   bool
}

func newRecorder(hold time.Duration) *recorder {
	return &recorder{runs: map[string][]Trigger{}, skips: map[string]int{}, active: map[string]int{}, hold: hold}
}

func (r *recorder) run(ctx context.Context, _ *config.Config, job *config.Job, t Trigger) {
	r.mu.Lock()
	r.runs[job.Name] = append(r.runs[job.Name], t)
	r.active[job.Name]++
	r.activeTotal++
	r.maxSameJob = max(r.maxSameJob, r.active[job.Name])
	r.maxAllJobs = max(r.maxAllJobs, r.activeTotal)
	r.mu.Unlock()
	if r.ignoreCtx {
		time.Sleep(r.hold)
	} else {
		select {
		case <-time.After(r.hold):
		case <-ctx.Done():
		}
	}
	r.mu.Lock()
	r.active[job.Name]--
	r.activeTotal--
	r.mu.Unlock()
}

func (r *recorder) hooks() Hooks {
	return Hooks{Skipped: func(job, reason string) {
		r.mu.Lock()
		r.skips[job+":"+reason]++
		r.mu.Unlock()
	}}
}

func (r *recorder) count(job string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.runs[job])
}

// runFor runs s for d, then shuts it down and returns Run's error.
func runFor(t *testing.T, s *Scheduler, d time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.Run(ctx)
}

func TestOverlappingTriggerIsSkipped(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", "* * * * * *") // every second
	r := newRecorder(2500 * time.Millisecond)
	s := New(cfg, r.run, nil, r.hooks(), zap.NewNop())
	if err := runFor(t, s, 4200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.maxSameJob != 1 {
		t.Errorf("job ran %d times at once", r.maxSameJob)
	}
	if n := r.count("a"); n < 1 || n > 2 {
		t.Errorf("%d runs in 4.2s with 2.5s runs, want 1 or 2", n)
	}
	if r.skips["a:overlap"] < 2 {
		t.Errorf("skips = %v, want at least 2 overlap skips", r.skips)
	}
}

func TestMaxConcurrentJobs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", "* * * * * *", "* * * * * *", "* * * * * *")
	r := newRecorder(700 * time.Millisecond)
	s := New(cfg, r.run, nil, r.hooks(), zap.NewNop())
	if err := runFor(t, s, 3500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.maxAllJobs != 1 {
		t.Errorf("%d jobs ran at once with max_concurrent 1", r.maxAllJobs)
	}
	for _, job := range []string{"a", "b", "c"} {
		if r.count(job) == 0 {
			t.Errorf("job %s never ran: waiting jobs must get their turn", job)
		}
	}

	cfg = testConfig(t, "daemon: {max_concurrent: 3}\n", "* * * * * *", "* * * * * *", "* * * * * *")
	r = newRecorder(700 * time.Millisecond)
	s = New(cfg, r.run, nil, r.hooks(), zap.NewNop())
	if err := runFor(t, s, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if r.maxAllJobs < 2 {
		t.Errorf("at most %d job ran at once with max_concurrent 3", r.maxAllJobs)
	}
}

func TestCatchUp(t *testing.T) {
	// The job's last slot (Sunday 02:00 UTC) at or before now.
	sched := parsedSchedule(t, "0 2 * * 0")
	last, ok := lastSlot(sched, time.Now().UTC(), config.SchedulePeriod(sched, time.Now().UTC()))
	if !ok {
		t.Fatal("no last slot within a week")
	}
	for _, tc := range []struct {
		name    string
		newest  func() time.Time // nil: no backup yet
		err     error
		wantRun bool
		now     time.Time // the scheduler's clock; zero: the real one
	}{
		{"no backup yet", nil, nil, true, time.Time{}},
		{"missed last Sunday", func() time.Time { return last.Add(-8 * 24 * time.Hour) }, nil, true, time.Time{}},
		{"backed up at the last slot", func() time.Time { return last.Add(5 * time.Second) }, nil, false, time.Time{}},
		{"backed up since the last slot", func() time.Time { return last.Add(30 * time.Hour) }, nil, false, time.Time{}},
		// Killed during the last slot's run and restarted within
		// seconds: the week before's backup is a little less than a
		// week old at the last slot, but the last slot is not served.
		{"killed during the last slot's run", func() time.Time { return last.Add(-7*24*time.Hour + 3*time.Second) }, nil, true, last.Add(2 * time.Second)},
		{"catalog unreachable", nil, fmt.Errorf("connection refused"), false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, "", "0 2 * * 0")
			r := newRecorder(0)
			newest := func(context.Context, *config.Config, *config.Job) (time.Time, bool, error) {
				if tc.err != nil {
					return time.Time{}, false, tc.err
				}
				if tc.newest == nil {
					return time.Time{}, false, nil
				}
				return tc.newest(), true, nil
			}
			s := New(cfg, r.run, newest, r.hooks(), zap.NewNop())
			if !tc.now.IsZero() {
				s.now = func() time.Time { return tc.now }
			}
			if err := runFor(t, s, 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if got := r.count("a"); (got == 1) != tc.wantRun || got > 1 {
				t.Fatalf("%d runs, want catch-up run %v", got, tc.wantRun)
			}
			if tc.wantRun && (r.runs["a"][0].Reason != "catch-up" || !r.runs["a"][0].Slot.Equal(last)) {
				t.Errorf("run %+v, want a catch-up of the slot %v", r.runs["a"][0], last)
			}
		})
	}
}

func TestShutdownCancelsRuns(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "daemon: {shutdown_timeout: 2s}\n", "* * * * * *")
	r := newRecorder(time.Hour) // returns only when cancelled
	s := New(cfg, r.run, nil, r.hooks(), zap.NewNop())
	start := time.Now()
	if err := runFor(t, s, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("shutdown took %s", d)
	}
	if r.count("a") != 1 || r.activeTotal != 0 {
		t.Errorf("runs %d, still active %d", r.count("a"), r.activeTotal)
	}

	// A run that ignores cancellation makes Run report it after the timeout.
	cfg = testConfig(t, "daemon: {shutdown_timeout: 1s}\n", "* * * * * *")
	r = newRecorder(4 * time.Second)
	r.ignoreCtx = true
	s = New(cfg, r.run, nil, r.hooks(), zap.NewNop())
	start = time.Now()
	err := runFor(t, s, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "still running") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 3500*time.Millisecond {
		t.Errorf("shutdown took %s, want about 2.5s", d)
	}
}

func TestReloadSwitchesJobs(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", "0 2 * * 0", "0 3 * * 0") // a and b: not due in this test
	r := newRecorder(0)
	var forgot atomic.Value
	hooks := r.hooks()
	hooks.Forget = func(job string) { forgot.Store(job) }
	s := New(cfg, r.run, nil, hooks, zap.NewNop())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	s.Reload(testConfig(t, "", "* * * * * *")) // only a, now every second
	time.Sleep(2200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.count("a") < 1 {
		t.Error("reloaded schedule never ran")
	}
	if forgot.Load() != "b" {
		t.Errorf("Forget called with %v, want b", forgot.Load())
	}
	if s.Config().Jobs["b"] != nil {
		t.Error("old config still active")
	}
}

// parsedSchedule is spec as config validation parses a job's schedule.
func parsedSchedule(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	job := &config.Job{Name: "a", Schedule: spec}
	if err := job.Resolve(); err != nil {
		t.Fatal(err)
	}
	return job.BackupSchedule()
}

func TestScheduleUsesJobTimezone(t *testing.T) {
	cfg := testConfig(t, "", "0 2 * * 0")
	job := cfg.Jobs["a"]
	job.Timezone = "Europe/London"
	if err := job.Resolve(); err != nil {
		t.Fatal(err)
	}
	sched, on := BackupPlan(job)
	if !on {
		t.Fatal("BackupPlan leaves the job out")
	}
	// 2026-07-05 is a Sunday in British Summer Time: 02:00 BST is 01:00 UTC.
	next := sched.Next(time.Date(2026, 7, 4, 12, 0, 0, 0, time.UTC).In(job.Location()))
	if want := time.Date(2026, 7, 5, 1, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next = %s, want %s", next.UTC(), want)
	}
}

// TestDrillPlan: a scheduler on DrillPlan follows each job's
// drill.schedule, not its backup schedule, and leaves out jobs whose
// drills are disabled.
func TestDrillPlan(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", "0 2 * * 0", "0 2 * * 0")
	cfg.Jobs["a"].Drill.Schedule = "* * * * * *"
	cfg.Jobs["b"].Drill.Schedule = "* * * * * *"
	cfg.Jobs["b"].Drill.Enabled = false
	for _, j := range cfg.Jobs {
		if err := j.Resolve(); err != nil {
			t.Fatal(err)
		}
	}
	r := newRecorder(0)
	s := New(cfg, r.run, nil, r.hooks(), zap.NewNop()).WithPlan(DrillPlan)
	if err := runFor(t, s, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := r.count("a"); n < 2 {
		t.Errorf("job a drilled %d times in 2.5s on a 1s drill schedule, want at least 2", n)
	}
	if n := r.count("b"); n != 0 {
		t.Errorf("job b (drills disabled) drilled %d times", n)
	}
}

// TestSlotsDuringCatchUpCheckAreServed: the catch-up check may wait long
// on a slow destination; the slots that pass meanwhile must be triggered
// after it (a run, or a logged overlap skip), not lost in silence.
func TestSlotsDuringCatchUpCheckAreServed(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", "* * * * * *") // every second
	r := newRecorder(0)
	var checked time.Time
	newest := func(context.Context, *config.Config, *config.Job) (time.Time, bool, error) {
		time.Sleep(2500 * time.Millisecond) // a black-holed destination
		checked = time.Now()
		return time.Now(), true, nil // fresh: no catch-up run
	}
	s := New(cfg, r.run, newest, r.hooks(), zap.NewNop())
	if err := runFor(t, s, 2900*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	served := len(r.runs["a"]) + r.skips["a:overlap"]
	if served < 2 {
		t.Fatalf("%d slots run or skipped (runs %v, skips %v); want the 2 slots that passed during the 2.5 s check", served, r.runs["a"], r.skips)
	}
	if first := r.runs["a"][0].Slot; !first.Before(checked.Add(-time.Second)) {
		t.Errorf("first run serves slot %v, want one that passed during the check (ended %v)", first, checked)
	}
}
