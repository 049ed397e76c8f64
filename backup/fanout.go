package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// queueDepth is how many writes may wait for one destination before the
// dump is back-pressured. age writes ~64 KiB at a time and the chunks are
// shared by all destinations, so the fan-out holds about 1 MiB in all.
const queueDepth = 16

// DefaultStallTimeout is how long a destination may accept no data before
// it is dropped from a backup (its upload aborted, the others go on).
const DefaultStallTimeout = 5 * time.Minute

// fanout copies one stream to several uploads, each fed by its own goroutine
// and bounded queue, so that a failed upload does not stop the others, and
// a stalled one (a black-holed connection) is dropped after stall.
type fanout struct {
	sinks  []*sink
	free   chan *chunk // fixed set of buffers shared by all sinks
	closed bool        // set by finish; later writes fail
	stall  time.Duration

	// Shared-parts mode (parts.go), when buffers is not nil.
	buffers *partBuffers
	sizeFor func(n int32) int64
	cur     *sharedPart // being filled
	num     int32       // cur's part number, from 1
}

// chunk is one write, shared read-only by every sink; the last sink done
// with it returns it to the free list.
type chunk struct {
	data []byte
	refs atomic.Int32
}

func (f *fanout) release(c *chunk) {
	if c.refs.Add(-1) == 0 {
		f.free <- c
	}
}

// sink is one destination's upload.
type sink struct {
	dest    storage.Destination
	queue   chan *chunk
	pw      *io.PipeWriter
	done    chan struct{} // closed when Put has returned
	failed  chan struct{} // closed when the upload failed
	once    sync.Once
	abort   error // set before queue is closed to abort the upload
	info    storage.ObjectInfo
	err     error
	started time.Time
	elapsed time.Duration
	cancel  context.CancelFunc // stops this upload alone
	stalled atomic.Pointer[error]
	// Shared-parts mode: the parts queued for this upload, and how many
	// parts it holds (queued or being sent).
	parts   chan *sharedPart
	holding atomic.Int32
}

// newFanout starts one upload per destination, storing key.
func newFanout(ctx context.Context, dests []storage.Destination, key string, stall time.Duration) *fanout {
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	// A slow sink holds at most queueDepth queued chunks plus the one it is
	// writing; two more let the writer fill the next one meanwhile.
	f := &fanout{stall: stall}
	if sizeFor, buffers, ok := partSchedule(dests); ok {
		f.sizeFor, f.num, f.buffers = sizeFor, 1, newPartBuffers(buffers)
		for _, d := range dests {
			f.sinks = append(f.sinks, f.startSharedSink(ctx, d, key, buffers))
		}
		return f
	}
	f.free = make(chan *chunk, queueDepth+2)
	for range queueDepth + 2 {
		f.free <- &chunk{data: make([]byte, 0, 64<<10+16)}
	}
	for _, d := range dests {
		pr, pw := io.Pipe()
		sctx, cancel := context.WithCancel(ctx)
		s := &sink{
			cancel:  cancel,
			dest:    d,
			queue:   make(chan *chunk, queueDepth),
			pw:      pw,
			done:    make(chan struct{}),
			failed:  make(chan struct{}),
			started: time.Now(),
		}
		go func() {
			defer close(s.done)
			s.info, s.err = d.Store.Put(sctx, key, pr)
			s.elapsed = time.Since(s.started)
			if e := s.stalled.Load(); e != nil {
				s.err = *e
			}
			if s.err != nil {
				s.markFailed()
			}
			// Unblock the feeder if Put returned without reading to EOF.
			pr.CloseWithError(errUploadEnded)
		}()
		go s.feed(f.release)
		f.sinks = append(f.sinks, s)
	}
	return f
}

// startSharedSink starts one upload reading shared parts.
func (f *fanout) startSharedSink(ctx context.Context, d storage.Destination, key string, depth int) *sink {
	sctx, cancel := context.WithCancel(ctx)
	s := &sink{
		cancel:  cancel,
		dest:    d,
		parts:   make(chan *sharedPart, depth),
		done:    make(chan struct{}),
		failed:  make(chan struct{}),
		started: time.Now(),
	}
	r := &partsReader{s: s}
	go func() {
		defer close(s.done)
		s.info, s.err = d.Store.Put(sctx, key, r)
		s.elapsed = time.Since(s.started)
		if e := s.stalled.Load(); e != nil {
			s.err = *e
		}
		if s.err != nil {
			s.markFailed()
		} else if s.holding.Load() > 0 {
			// Put returned without reading to the end.
			s.err = errors.New("upload ended before the stream did")
			s.markFailed()
		}
		r.drain()
	}()
	return s
}

var errUploadEnded = errors.New("upload ended")

func (s *sink) markFailed() { s.once.Do(func() { close(s.failed) }) }

func (s *sink) isFailed() bool {
	select {
	case <-s.failed:
		return true
	default:
		return false
	}
}

// feed moves queued buffers into the upload's pipe. After a pipe error it
// keeps draining the queue so the fan-out never blocks on a dead upload.
func (s *sink) feed(release func(*chunk)) {
	var werr error
	for c := range s.queue {
		if werr == nil {
			if _, werr = s.pw.Write(c.data); werr != nil {
				s.markFailed()
			}
		}
		release(c)
	}
	if s.abort != nil {
		s.pw.CloseWithError(s.abort)
	} else {
		s.pw.Close()
	}
}

// Write hands p to every live upload. It fails only when every upload has
// failed.
func (f *fanout) Write(p []byte) (int, error) {
	if f.closed {
		return 0, errors.New("write after the uploads ended")
	}
	if f.buffers != nil {
		return f.writeParts(p)
	}
	c := <-f.free
	c.data = append(c.data[:0], p...)
	// One reference for this function, released below, so the chunk cannot
	// return to the free list while it is still being handed out.
	c.refs.Store(1)
	live := 0
	for _, s := range f.sinks {
		if s.isFailed() {
			continue
		}
		c.refs.Add(1)
		if offer(s, s.queue, c, f.stall) {
			live++
			continue
		}
		c.refs.Add(-1)
	}
	f.release(c)
	if live == 0 {
		return 0, errors.New("every destination failed")
	}
	return len(p), nil
}

// finish ends every upload: with EOF when abort is nil, else with abort as
// the read error, which makes each store discard the upload. It waits for
// all uploads to return.
func (f *fanout) finish(abort error) {
	f.closed = true
	if f.buffers != nil {
		f.finishParts(abort)
		defer f.buffers.release()
	}
	for _, s := range f.sinks {
		s.abort = abort
		if f.buffers != nil {
			close(s.parts)
		} else {
			close(s.queue)
		}
	}
	// An upload that does not finish within the stall timeout after its
	// last byte (a completion request into a black hole) is cancelled.
	deadline := time.NewTimer(f.stall)
	defer deadline.Stop()
	for _, s := range f.sinks {
		select {
		case <-s.done:
			continue
		case <-deadline.C:
			deadline.Reset(0) // the rest are past the deadline too
		}
		if abort == nil {
			err := fmt.Errorf("%s: upload did not complete within %s of its last byte: stalled", s.dest.Name, f.stall)
			s.stalled.Store(&err)
		}
		s.markFailed()
		s.cancel()
		<-s.done
	}
}
