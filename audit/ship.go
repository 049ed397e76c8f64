package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/internal/atomicfile"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// Prefix is the key prefix, in a destination, of shipped audit objects
// (layout.AuditPrefix).
const Prefix = layout.AuditPrefix

// objectTimeLayout is the time of an object's first event in its name.
const objectTimeLayout = "20060102T150405.000Z"

// Ship uploads the complete lines of the log that no earlier Ship uploaded
// as one object, _coffer/audit/<host>/<first-event-time>-<random>.jsonl,
// created only if the key is new, then its Head (the chain's link before
// the object, its last line's hash, the object's SHA-256; signed when
// SetSigner gave a key) as <same name>.head.json, and then records how far
// the log has been shipped in audit.shipped (0600) next to it. It returns
// how many events the object holds; 0 and no object when there is nothing
// new. On an S3 destination with Object Lock both objects carry the
// store's retention date (storage/s3 locks _coffer/audit/ keys).
//
// A failed upload ships nothing and leaves the offset where it was, so the
// next call retries the same events. A malformed line stops Ship with an
// error naming the file and line. If the log was truncated or replaced
// since the last Ship, the whole file is shipped again (Read removes the
// duplicates).
func (l *Log) Ship(ctx context.Context, store storage.Store) (shipped int, err error) {
	l.shipMu.Lock()
	defer l.shipMu.Unlock()

	offset, err := l.shippedOffset()
	if err != nil {
		return 0, err
	}
	data, offset, err := readFrom(l.path, offset)
	if err != nil {
		return 0, fmt.Errorf("audit log %s: %w", l.path, err)
	}
	if len(data) == 0 {
		return 0, nil
	}
	var first Event
	n := 0
	err = scanEvents(bytes.NewReader(data), func(ev Event, _ int) error {
		if n == 0 {
			first = ev
		}
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit log %s: %w", l.path, fileLine(err, l.path, offset))
	}
	if n == 0 {
		return 0, nil
	}
	key := layout.AuditObject(keySegment(l.host), first.Time.UTC().Format(objectTimeLayout)+"-"+randomHex(4))
	head, err := newHead(key, l.host, data)
	if err != nil {
		return 0, err
	}
	if l.signer != nil {
		sig := l.signer.Sign(head.SignedBytes())
		head.Signature = &sig
	}
	hb, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return 0, fmt.Errorf("audit: encode the head of %s: %w", key, err)
	}
	if _, err := storage.Create(ctx, store, key, bytes.NewReader(data)); err != nil {
		return 0, fmt.Errorf("ship audit events to %s: %w", store, err)
	}
	// The head goes second: an object without one (an interrupted Ship)
	// is shipped again, head and all, by the next call.
	if _, err := storage.Create(ctx, store, headKey(key), bytes.NewReader(append(hb, '\n'))); err != nil {
		return 0, fmt.Errorf("ship audit events to %s: the head of %s: %w", store, key, err)
	}
	if err := l.saveOffset(offset + int64(len(data))); err != nil {
		return n, fmt.Errorf("ship audit events: uploaded %s to %s but could not record it (the events will be shipped again): %w", key, store, err)
	}
	return n, nil
}

// shippedOffset reads audit.shipped; a missing file means nothing shipped.
func (l *Log) shippedOffset() (int64, error) {
	p := filepath.Join(l.dir, shippedName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("audit: %s: not a byte offset: %q", p, b)
	}
	return off, nil
}

// saveOffset replaces audit.shipped atomically (temp file, fsync, rename).
func (l *Log) saveOffset(off int64) error {
	return atomicfile.WriteFile(filepath.Join(l.dir, shippedName), []byte(strconv.FormatInt(off, 10)+"\n"))
}

// readFrom returns the complete lines of path from offset on, and the
// offset they start at: offset itself, or 0 when the file no longer fits
// it (truncated or replaced).
func readFrom(path string, offset int64) ([]byte, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if offset > st.Size() {
		offset = 0
	}
	if offset > 0 {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, offset-1); err != nil {
			return nil, 0, err
		}
		if b[0] != '\n' {
			offset = 0
		}
	}
	data, err := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	if err != nil {
		return nil, 0, err
	}
	// Only whole lines: another process may be in the middle of a write.
	return data[:bytes.LastIndexByte(data, '\n')+1], offset, nil
}

// fileLine turns a line number counted from offset into one counted from
// the start of the file.
func fileLine(err error, path string, offset int64) error {
	var le *lineError
	if offset == 0 || !errors.As(err, &le) {
		return err
	}
	f, ferr := os.Open(path)
	if ferr != nil {
		return err
	}
	defer f.Close()
	before := 0
	sc := bufio.NewScanner(io.LimitReader(f, offset))
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	for sc.Scan() {
		before++
	}
	if sc.Err() != nil {
		return err
	}
	return &lineError{le.line + before, le.err}
}

// keySegment makes a host name safe as one key segment.
func keySegment(host string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, host)
	if strings.Trim(s, ".") == "" {
		return "unknown"
	}
	return s
}
