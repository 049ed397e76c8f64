package backup

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestFramesDecodeAsOneStream checks that the concatenated frames decode,
// as one stream, to exactly the input, at sizes around frame boundaries.
func TestFramesDecodeAsOneStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, frameSize - 1, frameSize, frameSize + 1, 3*frameSize + frameSize/2} {
		in := make([]byte, size)
		for i := range in { // compressible but not trivial
			in[i] = "abcdefgh"[rng.IntN(8)]
		}
		var out bytes.Buffer
		fw, err := newFrameWriter(&out, 3, 3)
		if err != nil {
			t.Fatal(err)
		}
		for p := in; len(p) > 0; { // uneven writes
			k := min(len(p), 1+rng.IntN(300_000))
			if _, err := fw.Write(p[:k]); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := fw.Close(); err != nil {
			t.Fatal(err)
		}
		dec, err := zstd.NewReader(&out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(dec)
		dec.Close()
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("size %d: decoded %d bytes, err %v; want the input back", size, len(got), err)
		}
	}
}

type failWriter struct{}

var errDisk = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDisk }

// TestFrameWriterReportsOutputErrors checks that a failing output surfaces
// on Write or Close, never silently.
func TestFrameWriterReportsOutputErrors(t *testing.T) {
	fw, err := newFrameWriter(failWriter{}, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5*frameSize)
	_, werr := fw.Write(buf)
	cerr := fw.Close()
	if !errors.Is(werr, errDisk) && !errors.Is(cerr, errDisk) {
		t.Fatalf("Write err %v, Close err %v; want the output's error", werr, cerr)
	}
}
