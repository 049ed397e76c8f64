package progress

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeTicker records the period asked for and ticks when the test says.
type fakeTicker struct {
	every   time.Duration
	c       chan time.Time
	handled chan struct{}
	stopped bool
}

func (f *fakeTicker) ticker(d time.Duration) (<-chan time.Time, func()) {
	f.every, f.c = d, make(chan time.Time)
	return f.c, func() { f.stopped = true }
}

// tick ticks at now and returns once the reporter has handled the tick.
func (f *fakeTicker) tick(now time.Time) {
	f.c <- now
	<-f.handled
}

// testReporter is a reporter on a Meter with a fake clock and ticker,
// running; the test stops it.
func testReporter(t *testing.T, o Options) (*Meter, *fakeClock, *fakeTicker, *reporter) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m := &Meter{now: clock.now}
	ft := &fakeTicker{handled: make(chan struct{})}
	r := newReporter(m, o, ft.ticker)
	r.handled = func() { ft.handled <- struct{}{} }
	go r.run()
	t.Cleanup(r.stop)
	return m, clock, ft, r
}

func TestRateAndETA(t *testing.T) {
	if got := rate(300<<20, 10*time.Second); got != 30<<20 {
		t.Errorf("rate(300 MiB, 10s) = %v, want 30 MiB/s", got)
	}
	if got := rate(5, 0); got != 0 {
		t.Errorf("rate over no time = %v, want 0", got)
	}
	if got := rate(-5, time.Second); got != 0 {
		t.Errorf("rate of a negative count = %v, want 0", got)
	}
	for _, c := range []struct {
		left int64
		rate float64
		want time.Duration
		ok   bool
	}{
		{900 << 20, 30 << 20, 30 * time.Second, true},
		{10, 3, 4 * time.Second, true}, // 3.33 s: rounded up, never promising too early
		{28, 0.4, 70 * time.Second, true},
		{0, 5, 0, false},  // done
		{-3, 5, 0, false}, // past an estimated total
		{10, 0, 0, false}, // no rate yet
		{1 << 40, 1e-6, maxETA, true},
	} {
		got, ok := eta(c.left, c.rate)
		if got != c.want || ok != c.ok {
			t.Errorf("eta(%d, %v) = %v, %v; want %v, %v", c.left, c.rate, got, ok, c.want, c.ok)
		}
	}
}

func TestAmountAndRateString(t *testing.T) {
	for _, c := range []struct {
		s    sample
		want string
	}{
		{sample{Phase: Phase{Unit: Bytes, Total: 1200 << 20}, done: 540 << 20}, "540.0 MiB of 1.2 GiB (45%)"},
		{sample{Phase: Phase{Unit: Bytes}, done: 90 << 20}, "90.0 MiB"},
		{sample{Phase: Phase{Unit: Bytes, Total: 1 << 30, Estimate: true}, done: 1 << 29}, "512.0 MiB of ~1.0 GiB (50%)"},
		{sample{Phase: Phase{Unit: "tables", Total: 40}, done: 12}, "12 of 40 tables (30%)"},
		{sample{Phase: Phase{Unit: "tables", Total: 3}, done: 2}, "2 of 3 tables (66%)"}, // never rounded up to a promise
		{sample{Phase: Phase{Unit: "tables"}, done: 7}, "7 tables"},
	} {
		if got := amount(c.s); got != c.want {
			t.Errorf("amount(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
	for _, c := range []struct {
		rate float64
		unit string
		want string
	}{
		{48 << 20, Bytes, "48.0 MiB/s"},
		{2.5, "tables", "2.5 tables/s"},
		{0.05, "indexes", "3.0 indexes/min"},
		{0, "tables", "0.0 tables/s"},
	} {
		if got := rateString(c.rate, c.unit); got != c.want {
			t.Errorf("rateString(%v, %q) = %q, want %q", c.rate, c.unit, got, c.want)
		}
	}
}

// TestMeterNil: a pipeline run without a reporter has a nil Meter, and
// every method does nothing.
func TestMeterNil(t *testing.T) {
	var m *Meter
	m.Start(Phase{Name: "download"})
	m.Add(5)
	m.Retitle("x")
	m.Expect(10)
	if m.Phases() != nil {
		t.Fatal("a nil Meter has phases")
	}
	if got := FromContext(context.Background()); got != nil {
		t.Fatalf("FromContext of a bare context = %v, want nil", got)
	}
}

// TestMeterPhases: Start counts from zero, Retitle and Expect keep the
// count and the phase, Expect does not override a known total.
func TestMeterPhases(t *testing.T) {
	m := NewMeter()
	if _, ok := m.sample(); ok {
		t.Fatal("a sample before any phase")
	}
	m.Add(3) // before any phase: nowhere to count, no panic
	m.Start(Phase{Name: "download", Destination: "offsite", Unit: Bytes, Total: 100})
	m.Add(40)
	m.Retitle("download and spool")
	m.Expect(500) // the manifest's size is known: kept
	s, _ := m.sample()
	if s.Name != "download and spool" || s.Destination != "offsite" || s.done != 40 || s.Total != 100 || s.Estimate || s.seq != 1 {
		t.Fatalf("after Retitle and Expect: %+v", s)
	}
	if got := s.Label(); got != "download and spool from offsite" {
		t.Errorf("Label() = %q", got)
	}
	m.Start(Phase{Name: "app: dump and upload", Unit: Bytes})
	m.Expect(1000)
	m.Add(7)
	s2, _ := m.sample()
	if s2.seq != 2 || s2.done != 7 || s2.Total != 1000 || !s2.Estimate {
		t.Fatalf("second phase: %+v", s2)
	}
	if old := s.ph.sample(); old.done != 40 {
		t.Fatalf("the ended phase's count changed to %d", old.done)
	}
	all := m.Phases()
	if len(all) != 2 || all[0].Name != "download and spool" || all[0].Done != 40 || all[1].Done != 7 || all[1].Total != 1000 {
		t.Fatalf("Phases() = %+v", all)
	}
}

// TestLogCadence: off a terminal, a progress line is logged at each tick
// of a DefaultEvery (30 s) ticker, with the rate over the time since the
// previous line of the phase, the ETA from it, and the phase and the
// destination serving it; nothing is logged when the reporter stops.
func TestLogCadence(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	m, clock, ft, r := testReporter(t, Options{Log: zap.New(core), What: "restore"})
	if ft.every != DefaultEvery || DefaultEvery != 30*time.Second {
		t.Fatalf("ticker every %v, want 30s", ft.every)
	}
	ft.tick(clock.now()) // no phase yet: nothing to say
	m.Start(Phase{Name: "download", Destination: "offsite", Unit: Bytes, Total: 3000 << 20})
	m.Add(300 << 20)
	clock.advance(30 * time.Second)
	ft.tick(clock.now())
	m.Add(600 << 20) // faster now: the second line's rate is over its own 30 s
	clock.advance(30 * time.Second)
	ft.tick(clock.now())
	m.Start(Phase{Name: "pg_restore data", Unit: "tables", Total: 40})
	m.Add(12)
	clock.advance(30 * time.Second)
	ft.tick(clock.now())
	m.Start(Phase{Name: "pg_restore pre-data (schema)"})
	clock.advance(30 * time.Second)
	ft.tick(clock.now())
	r.stop()
	if !ft.stopped {
		t.Error("ticker not stopped")
	}
	want := []map[string]any{
		{"phase": "download", "destination": "offsite", "progress": "300.0 MiB of 2.9 GiB (10%)", "rate": "10.0 MiB/s", "eta": "4m30s",
			"elapsed": "30s", "done": int64(300 << 20), "total": int64(3000 << 20), "unit": "bytes"},
		{"phase": "download", "destination": "offsite", "progress": "900.0 MiB of 2.9 GiB (30%)", "rate": "20.0 MiB/s", "eta": "1m45s",
			"elapsed": "1m", "done": int64(900 << 20), "total": int64(3000 << 20), "unit": "bytes"},
		{"phase": "pg_restore data", "progress": "12 of 40 tables (30%)", "rate": "24.0 tables/min", "eta": "1m10s",
			"elapsed": "30s", "done": int64(12), "total": int64(40), "unit": "tables"},
		{"phase": "pg_restore pre-data (schema)", "elapsed": "30s"},
	}
	got := logs.All()
	if len(got) != len(want) {
		t.Fatalf("%d log lines, want %d: %+v", len(got), len(want), got)
	}
	for i, e := range got {
		if e.Message != "restore progress" || e.Level != zapcore.InfoLevel {
			t.Errorf("line %d: %s %q, want Info \"restore progress\"", i, e.Level, e.Message)
		}
		fields := e.ContextMap()
		if len(fields) != len(want[i]) {
			t.Errorf("line %d: fields %v, want %v", i, fields, want[i])
			continue
		}
		for k, v := range want[i] {
			if fields[k] != v {
				t.Errorf("line %d: %s = %v (%T), want %v", i, k, fields[k], fields[k], v)
			}
		}
	}
}

// TestNotATerminal: a Terminal that is not one (a file, a pipe) gets no
// progress line: progress is logged instead.
func TestNotATerminal(t *testing.T) {
	var out bytes.Buffer
	core, logs := observer.New(zapcore.InfoLevel)
	m, clock, ft, r := testReporter(t, Options{Terminal: &Terminal{w: &out}, Log: zap.New(core)})
	if ft.every != DefaultEvery {
		t.Fatalf("ticker every %v, want %v", ft.every, DefaultEvery)
	}
	m.Start(Phase{Name: "download", Unit: Bytes, Total: 100})
	m.Add(50)
	clock.advance(DefaultEvery)
	ft.tick(clock.now())
	r.stop()
	if out.Len() != 0 || logs.Len() != 1 {
		t.Fatalf("off a terminal: %q drawn and %d lines logged, want nothing drawn and one line logged", out.String(), logs.Len())
	}
}

// lines returns what a terminal shows of out: each line as last drawn
// (the text after its last carriage return), blank ones left out.
func lines(out string) []string {
	var shown []string
	for l := range strings.SplitSeq(out, "\n") {
		parts := strings.Split(l, "\r")
		if s := strings.TrimSpace(parts[len(parts)-1]); s != "" {
			shown = append(shown, s)
		}
	}
	return shown
}

// TestTerminalLines: on a terminal, each phase gets one line redrawn in
// place (carriage returns, no new line until the phase ends), which ends
// showing the phase's final count, also a phase that started and ended
// between two redraws; nothing is logged; a log line written meanwhile
// appears above the progress line, which is drawn again below it.
func TestTerminalLines(t *testing.T) {
	var out bytes.Buffer
	term := &Terminal{w: &out, tty: true}
	core, logs := observer.New(zapcore.InfoLevel)
	m, clock, ft, r := testReporter(t, Options{Terminal: term, Log: zap.New(core)})
	if ft.every != redrawEvery {
		t.Fatalf("ticker every %v, want %v", ft.every, redrawEvery)
	}
	m.Start(Phase{Name: "download", Destination: "offsite", Unit: Bytes, Total: 1200 << 20})
	for range 4 {
		m.Add(100 << 20)
		clock.advance(time.Second)
		ft.tick(clock.now())
	}
	if strings.Contains(out.String(), "\n") {
		t.Fatalf("a new line while the phase runs: %q", out.String())
	}
	m.Retitle("download and spool")
	m.Add(800 << 20) // the rest, after the last redraw
	m.Start(Phase{Name: "pg_restore pre-data (schema)"})
	ft.tick(clock.now())
	zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zapcore.EncoderConfig{MessageKey: "msg"}), zapcore.AddSync(term), zapcore.InfoLevel)).
		Info("a log line")
	m.Start(Phase{Name: "short"}) // started and ended between two redraws
	m.Start(Phase{Name: "pg_restore data", Unit: "tables", Total: 40})
	m.Add(12)
	ft.tick(clock.now())
	m.Add(28)
	r.stop()
	if logs.Len() != 0 {
		t.Errorf("%d lines logged on a terminal, want none", logs.Len())
	}
	got := lines(out.String())
	want := []string{
		"download and spool from offsite: 100% |",
		"a log line", // over the progress line, drawn again below it
		"pg_restore pre-data (schema):",
		"short:",
		"pg_restore data (tables): 100% |",
	}
	if len(got) != len(want) {
		t.Fatalf("terminal shows %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("line %d: %q, want it to hold %q", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[0], "(1.2/1.2 GiB") || !strings.Contains(got[4], "(40/40)") {
		t.Errorf("final counts not shown:\n%s", strings.Join(got, "\n"))
	}
	if !strings.Contains(out.String(), "download from offsite:  33% |") || !strings.Contains(out.String(), "(400 MiB/1.2 GiB") {
		t.Errorf("no redraw at a third of the download: %q", out.String())
	}
}

// TestTerminalEstimate: an estimated total (the last backup's size,
// which the count may pass) is no bar: the count is shown with a
// spinner, and the estimate with the time left at the average rate.
func TestTerminalEstimate(t *testing.T) {
	var out bytes.Buffer
	m, clock, ft, r := testReporter(t, Options{Terminal: &Terminal{w: &out, tty: true}})
	m.Start(Phase{Name: "app: dump and upload to primary, offsite", Unit: Bytes})
	m.Add(10 << 20)
	clock.advance(time.Second)
	ft.tick(clock.now())
	m.Expect(40 << 20)
	ft.tick(clock.now())
	if !strings.Contains(out.String(), "app: dump and upload to primary, offsite (estimated total 40.0 MiB, about 3s left): (10 MiB, ") {
		t.Fatalf("the estimate is not shown: %q", out.String())
	}
	m.Add(50 << 20)
	clock.advance(time.Second)
	ft.tick(clock.now())
	r.stop()
	got := lines(out.String())
	if len(got) != 1 || !strings.Contains(got[0], "(estimated total 40.0 MiB): (60 MiB") || strings.Contains(got[0], "|") {
		t.Fatalf("after passing the estimate: %q, want the count without a bar", got)
	}
}

// TestEnsure: the daemon's Ensure starts logging only when the context
// carries no Meter (a command that reports its own way).
func TestEnsure(t *testing.T) {
	ctx, stop := Ensure(context.Background(), zap.NewNop(), "drill")
	m := FromContext(ctx)
	if m == nil {
		t.Fatal("Ensure: no Meter")
	}
	ctx2, stop2 := Ensure(ctx, zap.NewNop(), "drill")
	if FromContext(ctx2) != m {
		t.Fatal("Ensure replaced a Meter the context carried")
	}
	stop2()
	stop()
	stop() // twice is fine
}

// BenchmarkMeterAdd is the hot path's cost per read: one atomic add,
// with a reporter sampling meanwhile, and nothing without a Meter.
func BenchmarkMeterAdd(b *testing.B) {
	b.Run("meter", func(b *testing.B) {
		ctx, stop := Start(context.Background(), Options{Log: zap.NewNop(), Every: time.Millisecond})
		defer stop()
		m := FromContext(ctx)
		m.Start(Phase{Name: "download", Unit: Bytes, Total: 1 << 40})
		for b.Loop() {
			m.Add(256 << 10)
		}
	})
	b.Run("none", func(b *testing.B) {
		m := FromContext(context.Background())
		for b.Loop() {
			m.Add(256 << 10)
		}
	})
}
