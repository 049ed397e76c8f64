package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
)

// Genesis is the Prev of the first event of a log: 64 zeros, the hex
// form of a SHA-256 no line has.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// LineHash returns the hex SHA-256 of one stored line, given without its
// newline: what the next event's Prev records.
func LineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// chainLink is what the next event of a log chains to.
type chainLink struct {
	prev string // LineHash of the last line, or Genesis
	seq  int64  // Seq of the last chained event, 0 when none
}

// tailChunk is how much of the end of a log is read at a time.
const tailChunk = 64 << 10

// seqSearchLimit bounds how far back lastLink looks for the last event
// with a seq, past torn lines.
const seqSearchLimit = 8 << 20

// lastLink reads the end of the log f (size bytes) and returns what the
// next event chains to: the hash of the last line, whatever it holds (a
// torn line included: the next event then proves the torn bytes were
// there), and the Seq of the last line that parses as an event (0 for
// events written before the chain existed, or when none is found within
// seqSearchLimit).
func lastLink(f io.ReaderAt, size int64) (chainLink, error) {
	if size == 0 {
		return chainLink{prev: Genesis}, nil
	}
	end := size
	if ok, err := endsInNewline(f, size); err != nil {
		return chainLink{}, err
	} else if ok {
		end--
	}
	start, err := lineStart(f, end)
	if err != nil {
		return chainLink{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, start, end-start)); err != nil {
		return chainLink{}, err
	}
	link := chainLink{prev: hex.EncodeToString(h.Sum(nil))}
	// The seq: from the last line that parses, looking back past torn ones.
	for start >= 0 && size-start <= seqSearchLimit {
		if end-start <= maxLine {
			line := make([]byte, end-start)
			if _, err := f.ReadAt(line, start); err != nil && !errors.Is(err, io.EOF) {
				return chainLink{}, err
			}
			var ev struct {
				Seq int64 `json:"seq"`
			}
			if len(bytes.TrimSpace(line)) > 0 && json.Unmarshal(line, &ev) == nil {
				link.seq = ev.Seq
				return link, nil
			}
		}
		if start == 0 {
			break
		}
		end = start - 1 // the newline before this line
		if start, err = lineStart(f, end); err != nil {
			return chainLink{}, err
		}
	}
	return link, nil
}

// lineStart returns the offset of the first byte after the last newline
// before end (0 when there is none).
func lineStart(f io.ReaderAt, end int64) (int64, error) {
	buf := make([]byte, tailChunk)
	for pos := end; pos > 0; {
		n := min(int64(len(buf)), pos)
		chunk := buf[:n]
		if _, err := f.ReadAt(chunk, pos-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return pos - n + int64(i) + 1, nil
		}
		pos -= n
	}
	return 0, nil
}

// endsInNewline reports whether the file f of size bytes (not empty) ends
// in a newline.
func endsInNewline(f io.ReaderAt, size int64) (bool, error) {
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return b[0] == '\n', nil
}

// fileEndsInNewline reports whether the file f of size bytes is empty or
// ends in a newline.
func fileEndsInNewline(f *os.File, size int64) (bool, error) {
	if size == 0 {
		return true, nil
	}
	return endsInNewline(f, size)
}
