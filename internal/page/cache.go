package page

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/report"
)

// errBusy is returned to a request that waited longer than its bound for
// a gather still running; the gather goes on and fills the cache.
var errBusy = errors.New("the report is still being gathered from the destinations")

// gatherFunc reads the report's input for cfg's jobs over a window of
// weeks.
type gatherFunc func(ctx context.Context, cfg *config.Config, weeks int) (report.Input, error)

// snapshot is what one gather learned: the report's input and the
// report Evaluate made of it. Both are shared by every request that reads
// the snapshot and MUST NOT be changed.
type snapshot struct {
	cfg *config.Config // the configuration gathered for
	in  report.Input
	rep *report.Report
	at  time.Time // when the gather ended
}

// entry is one gather, running or done.
type entry struct {
	cfg   *config.Config
	done  chan struct{} // closed when snap and err are set
	snap  *snapshot
	err   error
	ended time.Time
}

// cache keeps each window's snapshot for ttl and runs one gather at a
// time: concurrent requests for a window share one gather, and requests
// for other windows wait for the running one. A gather runs on its own
// context bounded by timeout, not on a request's, so a client that goes
// away does not waste it. It shares no lock with the backup path: it
// reads the stores and the audit log file like `coffer report`.
type cache struct {
	gather  gatherFunc
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	entries map[int]*entry // by weeks
	slot    chan struct{}  // one gather (or audit export) at a time
}

func newCache(g gatherFunc, ttl, timeout time.Duration, now func() time.Time) *cache {
	return &cache{gather: g, ttl: ttl, timeout: timeout, now: now, entries: map[int]*entry{}, slot: make(chan struct{}, 1)}
}

// get returns the snapshot of weeks for cfg: a cached one younger than
// ttl, or a new gather's. It waits for the gather until ctx ends, then
// returns errBusy.
func (c *cache) get(ctx context.Context, cfg *config.Config, weeks int) (*snapshot, error) {
	c.mu.Lock()
	now := c.now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if e.cfg != cfg || now.Sub(e.ended) >= c.ttl {
				delete(c.entries, k)
			}
		default: // running: kept, even for an old configuration
		}
	}
	e := c.entries[weeks]
	if e != nil && e.cfg != cfg {
		e = nil // still running for the previous configuration
	}
	if e == nil {
		e = &entry{cfg: cfg, done: make(chan struct{})}
		c.entries[weeks] = e
		go c.run(e, weeks)
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.snap, e.err
	case <-ctx.Done():
		return nil, errBusy
	}
}

// run does e's gather when the slot is free.
func (c *cache) run(e *entry, weeks int) {
	defer close(e.done)
	c.slot <- struct{}{}
	defer func() { <-c.slot }()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	in, err := c.gather(ctx, e.cfg, weeks)
	e.ended = c.now()
	if err != nil {
		e.err = err
		return
	}
	e.snap = &snapshot{cfg: e.cfg, in: in, rep: report.Evaluate(in), at: e.ended}
}

// exclusive runs fn in the gather slot, bounded by the timeout; it gives
// up with errBusy when ctx ends before the slot is free.
func (c *cache) exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	select {
	case c.slot <- struct{}{}:
	case <-ctx.Done():
		return errBusy
	}
	defer func() { <-c.slot }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return fn(ctx)
}
