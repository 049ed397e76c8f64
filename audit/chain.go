package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Genesis is the Prev of the first event of a log: 64 zeros, the hex
// form of a SHA-256 no line has.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// LineHash returns the hex SHA-256 of one stored line, without its
// newline: what the next event's Prev records.
func LineHash(line []byte) string {
	sum := sha256.Sum256(bytes.TrimRight(line, "\r\n"))
	return hex.EncodeToString(sum[:])
}

// chainLink is what the next event of a log chains to.
type chainLink struct {
	prev string // LineHash of the last line, or Genesis
	seq  int64  // Seq of the last chained event, 0 when none
}

// tailChunk is how much of the end of a log lastLink reads at a time.
const tailChunk = 64 << 10

// lastLink reads the end of the log f (size bytes, ending in a newline or
// empty) and returns what the next event chains to: the hash of the last
// line, whatever it holds (a torn line included: the next event then
// proves the torn bytes were there), and the Seq of the last line that is
// a chained event plus one. Lines written before events were chained
// (no seq) count as seq 0.
func lastLink(f io.ReaderAt, size int64) (chainLink, error) {
	if size == 0 {
		return chainLink{prev: Genesis}, nil
	}
	var link chainLink
	end := size // exclusive end of the unread part
	var buf []byte
	first := true
	for {
		// Read backwards until buf holds a whole line before its end.
		for end > 0 && bytes.LastIndexByte(trimNL(buf), '\n') < 0 {
			n := min(int64(tailChunk), end)
			chunk := make([]byte, n)
			if _, err := f.ReadAt(chunk, end-n); err != nil && !errors.Is(err, io.EOF) {
				return chainLink{}, err
			}
			buf = append(chunk, buf...)
			end -= n
			if int64(len(buf)) > 2*maxLine+2 {
				return chainLink{}, fmt.Errorf("last line is longer than %d bytes", maxLine)
			}
		}
		body := trimNL(buf)
		i := bytes.LastIndexByte(body, '\n')
		line := body[i+1:]
		if first {
			link.prev = LineHash(line)
			first = false
		}
		var ev struct {
			Seq int64 `json:"seq"`
		}
		if len(bytes.TrimSpace(line)) > 0 && json.Unmarshal(line, &ev) == nil {
			link.seq = ev.Seq
			return link, nil
		}
		// A torn or blank line: the seq comes from the line before. (The
		// loop above read until body held a newline or the file's start.)
		if i < 0 {
			return link, nil
		}
		buf = body[:i+1]
	}
}

// trimNL drops one trailing newline.
func trimNL(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return b[:len(b)-1]
	}
	return b
}

// fileEndsInNewline reports whether the file f of size bytes is empty or
// ends in a newline.
func fileEndsInNewline(f *os.File, size int64) (bool, error) {
	if size == 0 {
		return true, nil
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, size-1); err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return b[0] == '\n', nil
}
