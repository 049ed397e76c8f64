package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/clock"
)

// FileName is the name of the local audit log inside the state directory.
const FileName = "audit.jsonl"

// shippedName is the file, next to the log, holding how many bytes of the
// log Ship has uploaded.
const shippedName = "audit.shipped"

// Log appends events to dir/audit.jsonl. It is safe for concurrent use,
// and several processes may open the same directory at once.
type Log struct {
	dir  string
	path string
	host string
	user string

	mu sync.Mutex // serialises writes and Close
	f  *os.File

	signer *sign.Signer // signs shipped chain heads; nil ships them unsigned

	shipMu sync.Mutex // one Ship at a time in this process
}

// Open creates dir (0700) if needed and opens dir/audit.jsonl (0600) for
// appending. If the file ends in a torn line (a crash during a write), a
// newline is appended so the next event starts on a line of its own; the
// torn line stays, and Read reports it.
func Open(dir string) (*Log, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// Read and write: Record reads the last line to chain the next one.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if err := prepare(f, path); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return &Log{dir: dir, path: path, host: host, user: currentUser(), f: f}, nil
}

// prepare makes an existing log private and ends it with a newline.
func prepare(f *os.File, path string) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			return err
		}
	}
	if st.Size() == 0 {
		return nil
	}
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, st.Size()-1); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if last[0] == '\n' {
		return nil
	}
	if _, err := f.Write([]byte{'\n'}); err != nil {
		return err
	}
	return f.Sync()
}

// currentUser names the operating-system user running this process.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

// Path returns the log file's path.
func (l *Log) Path() string { return l.path }

// SetSigner makes Ship sign the chain head of each object it uploads with
// s (the manifest signing key). Without it Ship uploads unsigned heads,
// which verify reports.
func (l *Log) SetSigner(s *sign.Signer) {
	l.shipMu.Lock()
	defer l.shipMu.Unlock()
	l.signer = s
}

// Record fills ev's empty ID, Time, Host and User (the current time, this
// host and this process's user), chains it to the log's last line (Seq and
// Prev, always overwritten), then appends it as one JSON line with one
// write and fsyncs the file. When Record returns nil the event is on disk.
// ev.Action must be set.
//
// The chain is read from the file under an exclusive flock, so processes
// sharing the log chain their events in the order they land, and a
// restarted daemon continues the chain where the file ends.
func (l *Log) Record(ev Event) error {
	if ev.Action == "" {
		return errors.New("audit: event without an action")
	}
	if ev.Time.IsZero() {
		ev.Time = clock.Now()
	}
	ev.Time = ev.Time.UTC()
	if ev.ID == "" {
		ev.ID = newID(ev.Time)
	}
	if ev.Host == "" {
		ev.Host = l.host
	}
	if ev.User == "" {
		ev.User = l.user
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return fmt.Errorf("audit log %s: %w", l.path, os.ErrClosed)
	}
	if err := lockFile(l.f); err != nil {
		return fmt.Errorf("audit log %s: lock: %w", l.path, err)
	}
	defer unlockFile(l.f)
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	whole, err := fileEndsInNewline(l.f, st.Size())
	if err != nil {
		return fmt.Errorf("audit log %s: %w", l.path, err)
	}
	link, err := lastLink(l.f, st.Size())
	if err != nil {
		return fmt.Errorf("audit log %s: read the chain's last link: %w", l.path, err)
	}
	ev.Seq, ev.Prev = link.seq+1, link.prev
	line, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encode %s event: %w", ev.Action, err)
	}
	line = append(line, '\n')
	if !whole {
		// Another process died mid-write: start on a line of our own.
		line = append([]byte{'\n'}, line...)
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("audit log %s: record %s event: %w", l.path, ev.Action, err)
	}
	if err := l.f.Sync(); err != nil {
		return fmt.Errorf("audit log %s: record %s event: %w", l.path, ev.Action, err)
	}
	return nil
}

// Close closes the log file. Record fails after Close; Ship still works.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
