// Package rollback keeps a small local record of the highest backup
// sequence number seen per job, and says when the newest backup a bucket
// shows is older than one seen before: someone deleted or hid the newer
// backups (a rollback), or restored the bucket from an old snapshot.
//
// Guarantees:
//   - Only what callers observe is recorded; callers observe only
//     manifests whose signature verified, so a forged sequence number can
//     neither raise the mark nor hide a rollback.
//   - The state file is replaced atomically (temporary file, fsync,
//     rename) with mode 0600; a concurrent writer's higher mark is kept
//     (marks are merged with the file's current content before writing).
//
// It does not prevent anything: a rollback is reported, and the backups
// still visible are still restorable.
package rollback

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/coffer-backup/coffer/internal/atomicfile"
)

// FileName is the state file's name in the state directory.
const FileName = "seen.json"

// Mark is the highest sequence seen for a job, and when.
type Mark struct {
	Sequence int64     `json:"sequence"`
	ID       string    `json:"id"`
	Seen     time.Time `json:"seen"`
}

// Warning says that the newest visible backup of a job is older than one
// seen before.
type Warning struct {
	Job    string `json:"job"`
	Newest Mark   `json:"newest"`
	Seen   Mark   `json:"seen"`
}

func (w *Warning) String() string {
	return fmt.Sprintf("possible rollback of job %s: newest visible backup is seq %d (id %s), but seq %d (id %s) was seen on %s",
		w.Job, w.Newest.Sequence, w.Newest.ID, w.Seen.Sequence, w.Seen.ID, w.Seen.Seen.UTC().Format("2006-01-02"))
}

// file is the state file's content.
type file struct {
	Jobs map[string]Mark `json:"jobs"`
}

// State is the record of one state directory. Its methods are not safe
// for concurrent use.
type State struct {
	path string
	jobs map[string]Mark
}

// Load reads the state file in dir; a missing file is an empty record.
func Load(dir string) (*State, error) {
	s := &State{path: filepath.Join(dir, FileName)}
	jobs, err := read(s.path)
	if err != nil {
		return nil, err
	}
	s.jobs = jobs
	return s, nil
}

func read(path string) (map[string]Mark, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Mark{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rollback state: %w", err)
	}
	var f file
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("rollback state %s is damaged (%v); delete it to start over", path, err)
	}
	if f.Jobs == nil {
		f.Jobs = map[string]Mark{}
	}
	return f.Jobs, nil
}

// Key names a job in the record: the job and where its backups live
// (e.g. its first destination's store), so two configurations with a job
// of the same name in different buckets do not mix.
func Key(job, where string) string { return job + " " + where }

// Observe compares the newest visible backup of the job recorded under
// key with the highest seen. When newest is lower, it returns a Warning
// and keeps the mark; otherwise it raises the mark to newest (Seen set to
// now) and returns nil. Call Save to keep the change.
func (s *State) Observe(key, job string, newest Mark, now time.Time) *Warning {
	seen, ok := s.jobs[key]
	if ok && newest.Sequence < seen.Sequence {
		return &Warning{Job: job, Newest: newest, Seen: seen}
	}
	if !ok || newest.Sequence > seen.Sequence || newest.ID != seen.ID {
		newest.Seen = now.UTC()
		s.jobs[key] = newest
	}
	return nil
}

// Save writes the record: merged with the file's current content (the
// higher mark of each job wins), to a temporary file in the same
// directory, synced, then renamed over the state file. The directory is
// created (0700) if needed.
func (s *State) Save() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("rollback state: %w", err)
	}
	if current, err := read(s.path); err == nil {
		for k, m := range current {
			if mine, ok := s.jobs[k]; !ok || m.Sequence > mine.Sequence {
				s.jobs[k] = m
			}
		}
	}
	data, err := json.MarshalIndent(file{Jobs: s.jobs}, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path, append(data, '\n')); err != nil {
		return fmt.Errorf("rollback state: %w", err)
	}
	return nil
}
