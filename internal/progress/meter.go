// Package progress shows how far a long backup, restore or drill has got,
// so that an on-call engineer can plan by it.
//
// The pipelines count into a Meter, which a context carries (WithMeter,
// FromContext): an atomic add per read or write on the hot path, no lock,
// no allocation, and nothing at all when the context carries no Meter. A
// phase change (download, spool, pg_restore data, ...) swaps one pointer.
// A Reporter samples the Meter on a ticker of its own: on a terminal it
// redraws one line per phase on standard error (Terminal), elsewhere it
// logs a line every DefaultEvery at Info. Progress never goes to standard
// output, which may carry a dump (-o -) or JSON.
package progress

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Bytes is the Unit of a phase that counts bytes.
const Bytes = "bytes"

// Phase describes one phase of a long operation.
type Phase struct {
	// Name says what the phase does, e.g. "download", "pg_restore data".
	Name string
	// Destination is the destination serving the phase's data (a
	// restore's), shown as "from DEST"; "" for none.
	Destination string
	// Unit is what is counted: Bytes, items named in the plural
	// ("tables"), or "" for nothing (a phase shown with its time only).
	Unit string
	// Total is how many bytes or items the phase handles; 0 is unknown.
	Total int64
	// Estimate says that Total is a guess (a backup's: the size of the
	// job's last backup), which the count may pass.
	Estimate bool
}

// Label is how the phase is named to people: the name, and the
// destination serving it.
func (p Phase) Label() string {
	if p.Destination != "" {
		return p.Name + " from " + p.Destination
	}
	return p.Name
}

// Meter counts the progress of one operation, a phase at a time. The
// pipelines update it from any goroutine; every method is safe for
// concurrent use and does nothing on a nil *Meter, so a pipeline run
// without a reporter pays one nil check.
type Meter struct {
	cur atomic.Pointer[phase]
	seq atomic.Uint64
	now func() time.Time

	mu  sync.Mutex
	all []*phase // every phase started, in order (Phases)
}

// phase is one started phase. Its description may be updated (Retitle,
// Expect) without starting a new one.
type phase struct {
	seq     uint64
	started time.Time
	done    atomic.Int64
	desc    atomic.Pointer[Phase]
}

// NewMeter returns a Meter with no phase started.
func NewMeter() *Meter { return &Meter{now: time.Now} }

// Start begins phase p, counting from zero; the previous phase ends.
func (m *Meter) Start(p Phase) {
	if m == nil {
		return
	}
	ph := &phase{seq: m.seq.Add(1), started: m.now()}
	ph.desc.Store(&p)
	m.mu.Lock()
	m.all = append(m.all, ph)
	m.mu.Unlock()
	m.cur.Store(ph)
}

// Count is a phase and how much of it is done.
type Count struct {
	Phase
	Done int64
}

// Phases returns every phase started, in order, with its count: the
// final count of each that has ended, the count so far of the current
// one.
func (m *Meter) Phases() []Count {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Count, len(m.all))
	for i, ph := range m.all {
		s := ph.sample()
		out[i] = Count{Phase: s.Phase, Done: s.done}
	}
	return out
}

// Add counts n more bytes or items done in the current phase.
func (m *Meter) Add(n int64) {
	if m == nil {
		return
	}
	if p := m.cur.Load(); p != nil {
		p.done.Add(n)
	}
}

// Retitle renames the current phase, keeping its count: a loader says
// what it does with the bytes a restore hands it ("download and spool").
func (m *Meter) Retitle(name string) {
	m.update(func(p *Phase) bool {
		p.Name = name
		return true
	})
}

// Expect sets total as the current phase's estimated total, unless it
// already has a total.
func (m *Meter) Expect(total int64) {
	m.update(func(p *Phase) bool {
		if p.Total > 0 || total <= 0 {
			return false
		}
		p.Total, p.Estimate = total, true
		return true
	})
}

// update changes a copy of the current phase's description with fn and
// stores it, unless fn returns false.
func (m *Meter) update(fn func(*Phase) bool) {
	if m == nil {
		return
	}
	ph := m.cur.Load()
	if ph == nil {
		return
	}
	for {
		old := ph.desc.Load()
		p := *old
		if !fn(&p) || ph.desc.CompareAndSwap(old, &p) {
			return
		}
	}
}

// from returns the phases started since phase seq, seq included (the
// first phase is 1), oldest first.
func (m *Meter) from(seq uint64) []*phase {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := min(int(max(seq, 1))-1, len(m.all))
	return append([]*phase(nil), m.all[i:]...)
}

// sample is what a reporter reads of a Meter at one moment.
type sample struct {
	Phase
	seq     uint64
	started time.Time
	done    int64
	ph      *phase // to read the phase's final count once it has ended
}

// sample returns the current phase and its count; ok is false before
// the first phase.
func (m *Meter) sample() (s sample, ok bool) {
	ph := m.cur.Load()
	if ph == nil {
		return s, false
	}
	return ph.sample(), true
}

func (ph *phase) sample() sample {
	return sample{Phase: *ph.desc.Load(), seq: ph.seq, started: ph.started, done: ph.done.Load(), ph: ph}
}

type meterKey struct{}

// WithMeter returns a context that carries m to the pipelines.
func WithMeter(ctx context.Context, m *Meter) context.Context {
	return context.WithValue(ctx, meterKey{}, m)
}

// FromContext returns the Meter ctx carries, or nil (on which every
// method does nothing).
func FromContext(ctx context.Context) *Meter {
	m, _ := ctx.Value(meterKey{}).(*Meter)
	return m
}
