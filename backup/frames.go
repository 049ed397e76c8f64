package backup

import (
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frameSize is how much plaintext goes into one zstd frame. Frames of 1 MiB
// compress as well as one long stream on database dumps (measured: ratio
// 0.329 vs 0.330 on the benchmark's rows) and klauspost's EncodeAll on them
// is 2.5x faster than its streaming encoder. 256 KiB frames held a quarter
// of the memory and encode as fast on one goroutine, but in a backup on 2
// busy cores they cost 6-10% more time and CPU (README, "Backup memory");
// the memory for 1 MiB frames comes from the S3 uploads sharing their part
// buffers (parts.go).
const frameSize = 1 << 20

// frameWriter compresses its input as a sequence of independent zstd frames
// of up to frameSize bytes each, on several goroutines, and writes the
// frames to out in input order. Concatenated frames are one valid zstd
// stream (RFC 8878, section 3.1): `zstd -d` and every decoder read them as
// one.
//
// Memory is bounded: workers+2 frames (input and output buffers) exist in
// all. Write and Close must not be called concurrently.
type frameWriter struct {
	out   io.Writer
	enc   *zstd.Encoder // EncodeAll may be called concurrently
	free  chan *frame
	work  chan *frame
	order chan *frame
	cur   *frame
	wrote bool
	done  chan struct{} // the output goroutine has finished
	once  sync.Once
	mu    sync.Mutex
	err   error
}

type frame struct {
	in, out []byte
	ready   chan struct{} // closed when out holds the compressed frame
}

func newFrameWriter(out io.Writer, level, workers int) (*frameWriter, error) {
	workers = max(workers, 1)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(workers), zstd.WithZeroFrames(true),
		// A frame never refers beyond itself: a window of one frame keeps
		// each encoder's history at about two frames instead of 16 MiB.
		zstd.WithWindowSize(frameSize),
		// No per-frame xxhash64: age authenticates every 64 KiB of the
		// compressed stream before a decoder sees it (the stock `age -d`
		// too), and the manifest's SHA-256 covers the plaintext, which
		// restore checks. The checksum would guard nothing they do not,
		// at ~1.5% of Coffer's CPU per backup.
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	n := workers + 2
	f := &frameWriter{out: out, enc: enc, free: make(chan *frame, n), work: make(chan *frame, n),
		order: make(chan *frame, n), done: make(chan struct{})}
	for range n {
		f.free <- &frame{in: make([]byte, 0, frameSize), out: make([]byte, 0, frameSize+frameSize/8)}
	}
	for range workers {
		go func() {
			for fr := range f.work {
				fr.out = f.enc.EncodeAll(fr.in, fr.out[:0])
				close(fr.ready)
			}
		}()
	}
	go f.writeFrames()
	return f, nil
}

// writeFrames writes finished frames in order.
func (f *frameWriter) writeFrames() {
	defer close(f.done)
	for fr := range f.order {
		<-fr.ready
		if f.failed() == nil {
			if _, err := f.out.Write(fr.out); err != nil {
				f.fail(err)
			}
		}
		f.free <- fr
	}
}

func (f *frameWriter) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *frameWriter) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// Write buffers p into frames and hands every full frame to the workers.
func (f *frameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if err := f.failed(); err != nil {
			return n, err
		}
		if f.cur == nil {
			f.cur = <-f.free
			f.cur.in = f.cur.in[:0]
		}
		k := min(len(p), frameSize-len(f.cur.in))
		f.cur.in = append(f.cur.in, p[:k]...)
		p, n = p[k:], n+k
		if len(f.cur.in) == frameSize {
			f.submit()
		}
	}
	return n, nil
}

func (f *frameWriter) submit() {
	fr := f.cur
	f.cur = nil
	fr.ready = make(chan struct{})
	f.wrote = true
	f.order <- fr
	f.work <- fr
}

// Close compresses what is buffered, waits until every frame is written
// and returns the first error. An empty input still yields one (empty)
// frame, so the payload is a valid zstd stream.
func (f *frameWriter) Close() error {
	if f.failed() == nil && (f.cur != nil && len(f.cur.in) > 0 || !f.wrote) {
		if f.cur == nil {
			f.cur = <-f.free
			f.cur.in = f.cur.in[:0]
		}
		f.submit()
	}
	f.shutdown()
	return f.failed()
}

// errAborted is the sticky error of an aborted frameWriter.
var errAborted = errors.New("compression aborted")

// abort stops the workers and discards pending frames.
func (f *frameWriter) abort() {
	f.fail(errAborted)
	f.shutdown()
}

func (f *frameWriter) shutdown() {
	f.once.Do(func() {
		close(f.order)
		close(f.work)
		<-f.done
		f.enc.Close()
	})
}
