package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/coffer-backup/coffer/storage"
)

// When every destination of a backup uploads in parts of the same sizes
// (S3), the fan-out fills part-sized buffers itself and hands each one,
// read-only, to every upload as that upload's next part (a
// storage.PartReader), instead of every upload copying the stream into
// part buffers of its own: a backup to two buckets holds one set of part
// buffers, not two. A buffer goes back to the pool once every live upload
// has sent it.

// sharedPart is one part of the stream, shared by every sink.
type sharedPart struct {
	data []byte
	last bool // the stream's final part; only it may be short
	refs atomic.Int32
	pool *partBuffers
}

// release gives up one reference; the last returns the buffer.
func (p *sharedPart) release() {
	if p.refs.Add(-1) == 0 {
		p.pool.put(p.data)
	}
}

// partBuffers is the pool of a backup's shared part buffers: at most max
// exist, allocated only when every existing one is in use.
type partBuffers struct {
	free  chan []byte
	slots chan struct{}
	held  atomic.Int64
}

func newPartBuffers(max int) *partBuffers {
	return &partBuffers{free: make(chan []byte, max), slots: make(chan struct{}, max)}
}

// get returns a buffer of size bytes; it waits at most stall for one to
// come back when max exist, and returns nil after that.
func (b *partBuffers) get(size int64, stall time.Duration) []byte {
	select {
	case buf := <-b.free:
		return b.fit(buf, size)
	default:
	}
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case buf := <-b.free:
		return b.fit(buf, size)
	case b.slots <- struct{}{}:
		b.grow(size)
		return make([]byte, 0, size)
	case <-t.C:
		return nil
	}
}

func (b *partBuffers) fit(buf []byte, size int64) []byte {
	if int64(cap(buf)) >= size {
		return buf[:0]
	}
	b.grow(size - int64(cap(buf)))
	return make([]byte, 0, size)
}

func (b *partBuffers) put(buf []byte) { b.free <- buf[:0] }

func (b *partBuffers) grow(n int64) {
	b.held.Add(n)
	storage.AddPartMemory(n)
}

// release ends the pool's share of storage.PartMemory.
func (b *partBuffers) release() { storage.AddPartMemory(-b.held.Swap(0)) }

// partSchedule returns the part sizes and buffer count every destination
// agrees on, or ok false when one does not upload in parts or they differ.
func partSchedule(dests []storage.Destination) (sizeFor func(int32) int64, buffers int, ok bool) {
	if len(dests) == 0 {
		return nil, 0, false
	}
	var first storage.PartSizer
	for _, d := range dests {
		ps, isSizer := d.Store.(storage.PartSizer)
		if !isSizer {
			return nil, 0, false
		}
		if first == nil {
			first = ps
		}
		// Every part number: 10,000 calls each, microseconds once a backup.
		for n := int32(1); n <= storage.MaxParts; n++ {
			if ps.PartSize(n) != first.PartSize(n) {
				return nil, 0, false
			}
		}
		buffers = max(buffers, ps.PartBuffers())
	}
	return first.PartSize, buffers, true
}

// writeParts is Write in shared-parts mode.
func (f *fanout) writeParts(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if f.cur == nil {
			if err := f.nextBuffer(); err != nil {
				return n, err
			}
		}
		size := int(f.sizeFor(f.num))
		k := min(len(p), size-len(f.cur.data))
		f.cur.data = append(f.cur.data, p[:k]...)
		p, n = p[k:], n+k
		if len(f.cur.data) == size {
			if err := f.publish(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// nextBuffer starts the next part. When no buffer comes back within the
// stall timeout, the uploads still holding parts are dropped.
func (f *fanout) nextBuffer() error {
	for {
		if f.live() == 0 {
			return errors.New("every destination failed")
		}
		if buf := f.buffers.get(f.sizeFor(f.num), f.stall); buf != nil {
			f.cur = &sharedPart{data: buf, pool: f.buffers}
			return nil
		}
		for _, s := range f.sinks {
			if !s.isFailed() && s.holding.Load() > 0 {
				s.dropStalled(f.stall)
			}
		}
	}
}

func (f *fanout) live() int {
	n := 0
	for _, s := range f.sinks {
		if !s.isFailed() {
			n++
		}
	}
	return n
}

// publish hands the current part to every live sink.
func (f *fanout) publish() error {
	c := f.cur
	f.cur = nil
	f.num++
	c.refs.Store(1) // this function's, released below
	live := 0
	for _, s := range f.sinks {
		if s.isFailed() {
			continue
		}
		c.refs.Add(1)
		s.holding.Add(1)
		if offer(s, s.parts, c, f.stall) {
			live++
			continue
		}
		s.holding.Add(-1)
		c.refs.Add(-1)
	}
	c.release()
	if live == 0 {
		return errors.New("every destination failed")
	}
	return nil
}

// finishParts publishes what is buffered as the final, short part unless
// the backup is aborted.
func (f *fanout) finishParts(abort error) {
	if abort != nil {
		if f.cur != nil {
			f.buffers.put(f.cur.data)
			f.cur = nil
		}
		return
	}
	if f.cur == nil {
		return // the sinks see the end when their queues close
	}
	f.cur.last = true
	_ = f.publish()
}

// offer sends v to sink s on ch (its queue of chunks or of parts) and
// reports whether s took it. When ch is full it waits, but not forever: a
// sink that fails meanwhile is passed over, and one that takes nothing for
// stall is dropped from the backup.
func offer[T any](s *sink, ch chan<- T, v T, stall time.Duration) bool {
	select {
	case ch <- v:
		return true
	default:
	}
	t := time.NewTimer(stall)
	defer t.Stop()
	select {
	case ch <- v:
		return true
	case <-s.failed:
	case <-t.C:
		s.dropStalled(stall)
	}
	return false
}

// dropStalled cancels one sink's upload after it made no progress for
// stall; the backup goes on without it.
func (s *sink) dropStalled(stall time.Duration) {
	err := fmt.Errorf("%s: no progress for %s: upload stalled; dropped from this backup", s.dest.Name, stall)
	s.stalled.Store(&err)
	s.markFailed()
	s.cancel()
}

// partsReader is what a sink's upload reads in shared-parts mode: a
// storage.PartReader over the sink's queue of parts.
type partsReader struct {
	s   *sink
	cur *sharedPart // partly read through Read
	off int
}

// next takes the sink's next part, or io.EOF (or the abort error) at the
// end of the stream.
func (r *partsReader) next(ctx context.Context) (*sharedPart, error) {
	select {
	case p, ok := <-r.s.parts:
		if !ok {
			if r.s.abort != nil {
				return nil, r.s.abort
			}
			return nil, io.EOF
		}
		return p, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// NextPart implements storage.PartReader.
func (r *partsReader) NextPart(ctx context.Context, size int64) ([]byte, func(), error) {
	if r.cur != nil {
		return nil, nil, errors.New("parts asked for after a partial Read")
	}
	p, err := r.next(ctx)
	if err != nil {
		return nil, nil, err
	}
	release := func() {
		r.s.holding.Add(-1)
		p.release()
	}
	if int64(len(p.data)) != size && (!p.last || int64(len(p.data)) > size) {
		release()
		return nil, nil, fmt.Errorf("shared part of %d bytes where the upload expects %d", len(p.data), size)
	}
	return p.data, release, nil
}

// Read implements io.Reader for stores that read the stream as bytes.
func (r *partsReader) Read(b []byte) (int, error) {
	for r.cur == nil || r.off == len(r.cur.data) {
		r.dropCurrent()
		p, err := r.next(context.Background())
		if err != nil {
			return 0, err
		}
		r.cur, r.off = p, 0
	}
	n := copy(b, r.cur.data[r.off:])
	r.off += n
	return n, nil
}

func (r *partsReader) dropCurrent() {
	if r.cur != nil {
		r.s.holding.Add(-1)
		r.cur.release()
		r.cur = nil
	}
}

// drain releases every part still queued for a sink whose upload has
// returned, until the fan-out closes the queue.
func (r *partsReader) drain() {
	r.dropCurrent()
	for p := range r.s.parts {
		r.s.holding.Add(-1)
		p.release()
	}
}

var _ storage.PartReader = (*partsReader)(nil)
