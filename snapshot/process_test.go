package snapshot

import (
	"bytes"
	"io"
	"slices"
	"testing"
	"testing/iotest"
)

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

// TestPumpPace: pump hands the size of every read to pace before it reads
// again, and copies every byte in order.
func TestPumpPace(t *testing.T) {
	want := bytes.Repeat([]byte("0123456789"), 40000)
	src := &chunkReader{chunks: [][]byte{want[:4096], want[4096:300000], want[300000:300500], want[300500:]}}
	var got bytes.Buffer
	var paced []int
	readErr, writeErr := pump(&got, src, nil, func(n int) { paced = append(paced, n) })
	if readErr != nil || writeErr != nil {
		t.Fatalf("pump: read error %v, write error %v", readErr, writeErr)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("pump copied %d bytes that differ from the %d written", got.Len(), len(want))
	}
	// The 295,904-byte chunk takes two reads of copyBuffer and the rest.
	wantPaced := []int{4096, copyBuffer, 295904 - copyBuffer, 500, len(want) - 300500}
	if !slices.Equal(paced, wantPaced) {
		t.Fatalf("pace saw reads %v, want %v", paced, wantPaced)
	}
}

// TestPumpPaceReadError: a read error ends the copy without another pace.
func TestPumpPaceReadError(t *testing.T) {
	calls := 0
	readErr, _ := pump(io.Discard, iotest.ErrReader(io.ErrUnexpectedEOF), nil, func(int) { calls++ })
	if readErr != io.ErrUnexpectedEOF || calls != 0 {
		t.Fatalf("read error %v after %d paces, want %v after none", readErr, calls, io.ErrUnexpectedEOF)
	}
}
