package progress

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/internal/human"
)

// DefaultEvery is how often progress is logged when it is not drawn on a
// terminal.
const DefaultEvery = 30 * time.Second

// redrawEvery is how often the terminal line is redrawn.
const redrawEvery = 250 * time.Millisecond

// Options say how progress is reported.
type Options struct {
	// Terminal, when it is a terminal, gets one line per phase redrawn in
	// place, and nothing is logged. Nil or not a terminal: progress is
	// logged.
	Terminal *Terminal
	// Log gets a progress line at Info every Every (DefaultEvery when 0),
	// the first one Every after the start: an operation shorter than that
	// logs none.
	Log   *zap.Logger
	Every time.Duration
	// What names the operation in the log's message: "restore" logs
	// "restore progress"; "" logs "progress".
	What string
}

// Start starts reporting the progress of what runs with the returned
// context, as o says. stop ends the reporting (on a terminal it draws the
// last state of the line and ends it); call it before printing a result.
func Start(ctx context.Context, o Options) (_ context.Context, stop func()) {
	m := NewMeter()
	r := newReporter(m, o, realTicker)
	go r.run()
	return WithMeter(ctx, m), r.stop
}

// Ensure starts logging the progress of what to log, as Start with only
// a logger does, unless ctx already carries a Meter (a command reporting
// its own way); then it returns ctx and a stop that does nothing.
func Ensure(ctx context.Context, log *zap.Logger, what string) (_ context.Context, stop func()) {
	if FromContext(ctx) != nil {
		return ctx, func() {}
	}
	return Start(ctx, Options{Log: log, What: what})
}

// realTicker is a time.Ticker's channel and its Stop.
func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// reporter samples a Meter on its own goroutine: the pipelines only add
// to counters.
type reporter struct {
	m        *Meter
	term     *Terminal // nil: log
	log      *zap.Logger
	msg      string // the log lines' message
	now      func() time.Time
	tick     <-chan time.Time
	stopTick func()
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
	handled  func() // after each tick (tests)
	shown    uint64 // the last phase drawn on the terminal
	// last is the previous log line's phase, count and time: a line's
	// rate is over the window since.
	last struct {
		seq  uint64
		done int64
		at   time.Time
	}
}

func newReporter(m *Meter, o Options, ticker func(time.Duration) (<-chan time.Time, func())) *reporter {
	r := &reporter{m: m, log: o.Log, msg: "progress", now: m.now, quit: make(chan struct{}), done: make(chan struct{})}
	if o.What != "" {
		r.msg = o.What + " progress"
	}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	every := o.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if o.Terminal != nil && o.Terminal.IsTerminal() {
		r.term, every = o.Terminal, redrawEvery
	}
	r.tick, r.stopTick = ticker(every)
	return r
}

func (r *reporter) run() {
	defer close(r.done)
	for {
		select {
		case <-r.quit:
			if r.term != nil {
				r.term.end(r.now())
			}
			return
		case <-r.tick:
		}
		if r.term != nil {
			// Every phase gets its line, also one that started and ended
			// between two redraws.
			for _, ph := range r.m.from(r.shown) {
				r.term.show(ph.sample(), r.now())
				r.shown = ph.seq
			}
		} else if s, ok := r.m.sample(); ok {
			r.logLine(s, r.now())
		}
		if r.handled != nil {
			r.handled()
		}
	}
}

// stop ends the reporting and waits until the reporter is done.
func (r *reporter) stop() {
	r.once.Do(func() {
		r.stopTick()
		close(r.quit)
	})
	<-r.done
}

// logLine logs s as seen at now, its rate over the time since the
// previous line of the same phase (or since the phase started).
func (r *reporter) logLine(s sample, now time.Time) {
	from, since := int64(0), s.started
	if r.last.seq == s.seq {
		from, since = r.last.done, r.last.at
	}
	r.last.seq, r.last.done, r.last.at = s.seq, s.done, now
	fields := []zap.Field{zap.String("phase", s.Name)}
	if s.Destination != "" {
		fields = append(fields, zap.String("destination", s.Destination))
	}
	if s.Unit != "" {
		perSecond := rate(s.done-from, now.Sub(since))
		fields = append(fields, zap.String("progress", amount(s)), zap.String("rate", rateString(perSecond, s.Unit)))
		if left, ok := eta(s.Total-s.done, perSecond); ok {
			fields = append(fields, zap.String("eta", human.Duration(left)))
		}
	}
	fields = append(fields, zap.String("elapsed", human.Duration(now.Sub(s.started).Truncate(time.Second))))
	if s.Unit != "" {
		fields = append(fields, zap.Int64("done", s.done))
		if s.Total > 0 {
			fields = append(fields, zap.Int64("total", s.Total))
		}
		fields = append(fields, zap.String("unit", s.Unit))
		if s.Estimate {
			fields = append(fields, zap.Bool("total_estimated", true))
		}
	}
	r.log.Info(r.msg, fields...)
}

// rate is n per second over d; 0 when d is not positive.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 || n <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// maxETA caps an estimate: a rate near zero does not promise centuries.
const maxETA = 100 * 24 * time.Hour

// eta is how long left more take at perSecond, to the second; ok is
// false when it cannot be told (nothing left to compare with, no rate).
func eta(left int64, perSecond float64) (d time.Duration, ok bool) {
	if left <= 0 || perSecond <= 0 {
		return 0, false
	}
	s := math.Ceil(float64(left) / perSecond)
	if s >= maxETA.Seconds() {
		return maxETA, true
	}
	return time.Duration(s) * time.Second, true
}

// amount says how much of the phase is done: "512.0 MiB of 1.1 GiB (45%)",
// "12 of 40 tables (30%)", "90.0 MiB" with no total; an estimated total
// has a "~".
func amount(s sample) string {
	f := func(n int64) string { return strconv.FormatInt(n, 10) }
	unit := " " + s.Unit
	if s.Unit == Bytes {
		f, unit = human.Bytes, ""
	}
	if s.Total <= 0 {
		return f(s.done) + unit
	}
	approx := ""
	if s.Estimate {
		approx = "~"
	}
	pct := 100 * float64(s.done) / float64(s.Total)
	return fmt.Sprintf("%s of %s%s%s (%.0f%%)", f(s.done), approx, f(s.Total), unit, math.Floor(pct))
}

// rateString formats perSecond of unit: "48.0 MiB/s", "2.5 tables/s",
// "3.0 tables/min" below one a second.
func rateString(perSecond float64, unit string) string {
	if unit == Bytes {
		return human.Bytes(int64(perSecond)) + "/s"
	}
	if perSecond > 0 && perSecond < 1 {
		return strconv.FormatFloat(perSecond*60, 'f', 1, 64) + " " + unit + "/min"
	}
	return strconv.FormatFloat(perSecond, 'f', 1, 64) + " " + unit + "/s"
}
