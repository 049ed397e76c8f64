package snapshot

import (
	"bytes"
	"io"
	"os"
	"slices"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/sys/unix"
)

func TestGrowPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if !growPipe(r) {
		t.Fatal("growPipe reported failure")
	}
	sc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var getErr error
	if err := sc.Control(func(fd uintptr) { size, getErr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if getErr != nil {
		t.Fatal(getErr)
	}
	if size < dumpPipeSize {
		t.Fatalf("pipe buffer is %d bytes after growPipe, want %d", size, dumpPipeSize)
	}
	if growPipe(nil) {
		t.Fatal("growPipe(nil) reported a grown pipe")
	}
}

// chunkReader returns its chunks one Read at a time, then EOF.
type chunkReader struct{ chunks [][]byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	if len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	return n, nil
}

// sizeLog records the size of every read through it.
type sizeLog struct {
	r     io.Reader
	sizes []int
}

func (l *sizeLog) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.sizes = append(l.sizes, n)
	return n, err
}

// TestPacedReader: a dump read through pump arrives whole and in order,
// and the reader pauses before each read that follows a short one (under
// shortRead), and only then.
func TestPacedReader(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 40000)
	src := &sizeLog{r: &chunkReader{chunks: [][]byte{want[:4096], want[4096:300000], want[300000:300500], want[300500:]}}}
	var pausedAfter []int
	paced := &pacedReader{r: src, sleep: func(d time.Duration) {
		if d != readPause {
			t.Errorf("paused %s, want %s", d, readPause)
		}
		pausedAfter = append(pausedAfter, src.sizes[len(src.sizes)-1])
	}}
	var got bytes.Buffer
	readErr, writeErr := pump(&got, paced, nil)
	if readErr != nil || writeErr != nil {
		t.Fatalf("pump: read error %v, write error %v", readErr, writeErr)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("pump copied %d bytes that differ from the %d written", got.Len(), len(want))
	}
	// The 295,904-byte chunk takes two reads of copyBuffer and the rest.
	wantReads := []int{4096, copyBuffer, 295904 - copyBuffer, 500, len(want) - 300500, 0}
	if !slices.Equal(src.sizes, wantReads) {
		t.Fatalf("reads %v, want %v", src.sizes, wantReads)
	}
	if wantPaused := []int{4096, 295904 - copyBuffer, 500}; !slices.Equal(pausedAfter, wantPaused) {
		t.Fatalf("paused after reads of %v, want %v", pausedAfter, wantPaused)
	}
}

// TestPacedReaderReadError: a read error ends the copy without a pause.
func TestPacedReaderReadError(t *testing.T) {
	pauses := 0
	paced := &pacedReader{r: iotest.ErrReader(io.ErrUnexpectedEOF), sleep: func(time.Duration) { pauses++ }}
	readErr, _ := pump(io.Discard, paced, nil)
	if readErr != io.ErrUnexpectedEOF || pauses != 0 {
		t.Fatalf("read error %v after %d pauses, want %v after none", readErr, pauses, io.ErrUnexpectedEOF)
	}
}
