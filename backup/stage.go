package backup

import (
	"errors"
	"io"
	"sync"
)

// stageDepth and stageChunk bound one stage's queue: at most
// stageDepth+1 chunks of up to stageChunk bytes wait between two stages.
const (
	stageDepth = 8
	stageChunk = 256 << 10
)

// stage decouples a writer from its caller: Write copies p into a free
// chunk and queues it; one goroutine writes the queue to the underlying
// writer. The stages of the pipeline (dump reading, zstd, age and the
// uploads) so run side by side, the way a shell pipeline's processes do,
// instead of each waiting for the next. Memory is bounded by the queue.
//
// The first error from the underlying writer is sticky: later Writes and
// Close return it, and queued chunks are discarded.
type stage struct {
	w     io.Writer
	queue chan []byte
	free  chan []byte // fixed set of chunks: no garbage, bounded memory
	done  chan struct{}
	mu    sync.Mutex
	err   error
	once  sync.Once
}

func newStage(w io.Writer) *stage {
	s := &stage{w: w, queue: make(chan []byte, stageDepth), free: make(chan []byte, stageDepth+1), done: make(chan struct{})}
	for range stageDepth + 1 {
		s.free <- make([]byte, 0, stageChunk)
	}
	go s.run()
	return s
}

func (s *stage) run() {
	defer close(s.done)
	for buf := range s.queue {
		if s.failed() == nil {
			if _, err := s.w.Write(buf); err != nil {
				s.fail(err)
			}
		}
		s.free <- buf[:0]
	}
}

func (s *stage) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *stage) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Write queues a copy of p, in chunks of at most stageChunk bytes.
func (s *stage) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := s.failed(); err != nil {
			return n, err
		}
		k := min(len(p), stageChunk)
		buf := append(<-s.free, p[:k]...)
		s.queue <- buf
		p, n = p[k:], n+k
	}
	return n, nil
}

// errStageClosed is what a stage reports when it was closed by abort.
var errStageClosed = errors.New("pipeline stage closed")

// Close waits until every queued chunk is written and returns the first
// write error.
// It must not run concurrently with Write. Calling it again is harmless.
func (s *stage) Close() error {
	s.once.Do(func() { close(s.queue) })
	<-s.done
	return s.failed()
}

// abort discards what is queued and stops the stage. Like Close, it must
// not run concurrently with Write.
func (s *stage) abort() {
	s.fail(errStageClosed)
	s.Close()
}
