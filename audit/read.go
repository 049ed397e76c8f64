package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// maxLine bounds one event's JSON line.
const maxLine = 1 << 20

// Destinations names where hosts ship the audit trail, so where readers
// find it: the first destination of every job in cfg, each once, in job
// order.
func Destinations(cfg *config.Config) []string {
	var names []string
	for _, name := range cfg.JobOrder {
		j := cfg.Jobs[name]
		if j == nil || len(j.Destinations) == 0 || slices.Contains(names, j.Destinations[0]) {
			continue
		}
		names = append(names, j.Destinations[0])
	}
	return names
}

// Read returns the events recorded since since (all of them when since is
// zero), from the local log at localPath (skipped when empty or missing)
// and from every object under _coffer/audit/ in stores, each event once
// (by ID), ordered by time and then ID.
//
// A line that is not an event, an unreadable object or an unreachable
// store is an error; a malformed line's error names the file or object and
// the line number. Two copies of one event ID that differ (the local log
// and a shipped object, or two objects) are not resolved silently: Read
// returns every event it read, the first copy of each, and an error
// wrapping a *DisagreementError per such event. Whether a copy was changed
// is for Verify to say.
func Read(ctx context.Context, localPath string, stores []storage.Store, since time.Time) ([]Event, error) {
	seen := map[string]seenEvent{}
	var out []Event
	var disagree []error
	err := walk(ctx, localPath, stores, func(ev Event, where string, line int) {
		if !since.IsZero() && ev.Time.Before(since) {
			return
		}
		if s, ok := seen[ev.ID]; ok {
			if !sameEvent(s.ev, ev) {
				disagree = append(disagree, &DisagreementError{ID: ev.ID, First: s.where, Second: fmt.Sprintf("%s line %d", where, line)})
			}
			return
		}
		seen[ev.ID] = seenEvent{ev, fmt.Sprintf("%s line %d", where, line)}
		out = append(out, ev)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
	})
	return out, errors.Join(disagree...)
}

// FirstByJob returns the time of each job's earliest event in the audit
// trail: the local log at localPath (skipped when empty or missing) and
// every object under _coffer/audit/ in stores, however old. It reads the
// whole trail but keeps one time per job, not the events; events naming
// no job are left out. Its errors are Read's, without the disagreements
// (an event's time is the same in every copy that matters here: the
// earliest).
func FirstByJob(ctx context.Context, localPath string, stores []storage.Store) (map[string]time.Time, error) {
	first := map[string]time.Time{}
	err := walk(ctx, localPath, stores, func(ev Event, _ string, _ int) {
		if t, ok := first[ev.Job]; ev.Job != "" && (!ok || ev.Time.Before(t)) {
			first[ev.Job] = ev.Time
		}
	})
	if err != nil {
		return nil, err
	}
	return first, nil
}

// walk calls fn with every event of the local log at localPath (skipped
// when empty or missing) and of every audit object in stores, in the
// order they are stored, with the file or object it is in and its line.
func walk(ctx context.Context, localPath string, stores []storage.Store, fn func(ev Event, where string, line int)) error {
	if localPath != "" {
		f, err := os.Open(localPath)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("read audit log: %w", err)
		default:
			err = scanEvents(f, func(ev Event, line int) error {
				fn(ev, localPath, line)
				return nil
			})
			f.Close()
			if err != nil {
				return fmt.Errorf("audit log %s: %w", localPath, err)
			}
		}
	}
	for _, s := range stores {
		for obj, err := range s.List(ctx, Prefix) {
			if err != nil {
				return fmt.Errorf("read audit trail: %w", err)
			}
			if !strings.HasSuffix(obj.Key, layout.AuditObjectSuffix) {
				continue
			}
			where := obj.Key + " in " + s.String()
			if err := readObject(ctx, s, obj.Key, func(ev Event, line int) error {
				fn(ev, where, line)
				return nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// seenEvent is the first copy Read met of an event.
type seenEvent struct {
	ev    Event
	where string
}

// sameEvent reports whether a and b are the same event, field by field.
func sameEvent(a, b Event) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// DisagreementError says two copies of one event differ.
type DisagreementError struct {
	ID string
	// First and Second name the copies: file or object and line.
	First, Second string
}

func (e *DisagreementError) Error() string {
	return fmt.Sprintf("audit event %s: the copy at %s differs from the one at %s (run coffer audit verify)", e.ID, e.Second, e.First)
}

func readObject(ctx context.Context, s storage.Store, key string, fn func(Event, int) error) error {
	rc, err := s.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("read audit trail: %w", err)
	}
	defer rc.Close()
	if err := scanEvents(rc, fn); err != nil {
		return fmt.Errorf("audit object %s in %s: %w", key, s, err)
	}
	return nil
}

// lineError is a problem with one line of a log or object.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// scanEvents decodes r one JSON line at a time and calls fn with each event
// and its line number (from 1). Blank lines are skipped; a line that is not
// an event with an ID, a time and an action is a *lineError, except a torn
// line (a write cut short by a crash or a full disk) that the next event
// chains to: its Prev is the torn line's hash, so the chain proves those
// bytes were written there and nothing else, and the line is skipped (coffer
// audit verify reports it as a note). Without the exception one full disk
// would stop the trail from being shipped or read for good.
func scanEvents(r io.Reader, fn func(Event, int) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	line := 0
	var torn *lineError // the line before, when it did not decode
	var tornHash string
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			if torn != nil {
				return torn
			}
			torn, tornHash = &lineError{line, fmt.Errorf("malformed event: %w", err)}, LineHash(sc.Bytes())
			continue
		}
		if torn != nil {
			if ev.Prev != tornHash {
				return torn
			}
			torn = nil
		}
		switch {
		case ev.ID == "":
			return &lineError{line, errors.New("malformed event: no id")}
		case ev.Time.IsZero():
			return &lineError{line, errors.New("malformed event: no time")}
		case ev.Action == "":
			return &lineError{line, errors.New("malformed event: no action")}
		}
		if err := fn(ev, line); err != nil {
			return err
		}
	}
	if torn != nil {
		return torn
	}
	if err := sc.Err(); err != nil {
		return &lineError{line + 1, err}
	}
	return nil
}
