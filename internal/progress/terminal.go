package progress

import (
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/coffer-backup/coffer/internal/human"
)

// barWidth is the width of the bar itself; it shrinks to fit a narrow
// terminal.
const barWidth = 20

// Terminal is a process's standard error, shared by the progress line
// and the log. When it is a terminal, a reporter draws one line per
// phase on it, redrawn in place (github.com/schollz/progressbar/v3 draws
// it; only the reporter's goroutine and log writes touch it, never the
// pipelines); a log line written meanwhile clears the progress line,
// and the line is drawn again below it. Otherwise it passes writes
// through.
type Terminal struct {
	mu  sync.Mutex
	w   io.Writer
	tty bool

	bar  *progressbar.ProgressBar // the current phase's line; nil when none is drawn
	ph   *phase                   // the phase it shows
	max  int64                    // the bar's total; -1 when unknown
	desc string                   // the bar's description
}

// NewTerminal wraps f, usually os.Stderr.
func NewTerminal(f *os.File) *Terminal {
	return &Terminal{w: f, tty: term.IsTerminal(int(f.Fd()))}
}

// IsTerminal says whether progress lines are drawn on t.
func (t *Terminal) IsTerminal() bool { return t != nil && t.tty }

// Write writes p (a log line), clearing a progress line first and drawing
// it again after.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar != nil {
		_ = t.bar.Clear()
	}
	n, err := t.w.Write(p)
	if t.bar != nil {
		_ = t.bar.RenderBlank()
	}
	return n, err
}

// Sync flushes the underlying file, if it is one.
func (t *Terminal) Sync() error {
	if s, ok := t.w.(interface{ Sync() error }); ok {
		return s.Sync()
	}
	return nil
}

// show draws s as sampled at now: on the current line while its phase
// lasts; a new phase ends the line (with the old phase's final count)
// and starts another.
func (t *Terminal) show(s sample, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ph != nil && t.ph.seq != s.seq {
		t.endLine(now)
	}
	if t.bar == nil {
		t.newBar(s, now)
	}
	t.draw(s, now)
}

// draw redraws the line with s; the caller holds t.mu.
func (t *Terminal) draw(s sample, now time.Time) {
	if d := description(s, now); d != t.desc {
		t.bar.Describe(d)
		t.desc = d
	}
	if t.max > 0 {
		s.done = min(s.done, t.max) // the bar stops drawing past its total
	}
	_ = t.bar.Set64(s.done)
}

// end draws the current phase's final state and ends its line.
func (t *Terminal) end(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.endLine(now)
}

// endLine draws the final count of the line's phase and moves to the
// next line; the caller holds t.mu.
func (t *Terminal) endLine(now time.Time) {
	if t.bar == nil {
		return
	}
	t.draw(t.ph.sample(), now)
	if !t.bar.IsFinished() { // a bar that reached its total ended its line
		_ = t.bar.Exit()
	}
	t.bar, t.ph = nil, nil
}

// newBar starts the line for s; the caller holds t.mu. The line is a bar
// when the phase's total is known, else a spinner; either shows the
// count (bytes, rate; items), elapsed time and, with a bar, the time
// left.
func (t *Terminal) newBar(s sample, now time.Time) {
	t.desc = description(s, now)
	t.max = -1
	if s.Unit != "" && s.Total > 0 && !s.Estimate {
		t.max = s.Total
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(t.w),
		progressbar.OptionSetDescription(t.desc),
		progressbar.OptionSetWidth(barWidth),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSpinnerType(14),
		// No goroutine of the bar's own: the reporter redraws it.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(t.w, "\n") }),
		progressbar.OptionSetRenderBlankState(true),
	}
	switch {
	case s.Unit == Bytes:
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionShowBytes(true))
	case s.Unit != "" && t.max > 0:
		opts = append(opts, progressbar.OptionShowCount())
	}
	t.bar, t.ph = progressbar.NewOptions64(t.max, opts...), s.ph
}

// description is the text before the bar: the phase's label, the unit
// of a count of items, and an estimated total with the time left at the
// phase's average rate (the bar shows only exact totals).
func description(s sample, now time.Time) string {
	d := s.Label()
	if s.Unit != "" && s.Unit != Bytes {
		d += " (" + s.Unit + ")"
	}
	if s.Estimate && s.Total > 0 {
		total := strconv.FormatInt(s.Total, 10) + " " + s.Unit
		if s.Unit == Bytes {
			total = human.Bytes(s.Total)
		}
		d += " (estimated total " + total
		if left, ok := eta(s.Total-s.done, rate(s.done, now.Sub(s.started))); ok {
			d += ", about " + human.Duration(left) + " left"
		}
		d += ")"
	}
	return d + ":"
}
