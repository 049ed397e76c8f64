package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// ErrNoBackup is returned when a job has no complete backup anywhere.
var ErrNoBackup = errors.New("no complete backup found")

// Entry is one backup and the destinations whose manifest lists it.
type Entry struct {
	Job          string   `json:"job"`
	ID           string   `json:"id"`
	Destinations []string `json:"destinations"`
}

// Missing returns the names in all whose destination does not list e.
func (e Entry) Missing(all []string) []string {
	var out []string
	for _, n := range all {
		if !slices.Contains(e.Destinations, n) {
			out = append(out, n)
		}
	}
	return out
}

// ReadManifest reads e's manifest from the first of dests that lists e and
// serves a manifest trust accepts; when none does, the error joins each
// destination's.
func ReadManifest(ctx context.Context, e Entry, dests []storage.Destination, trust manifest.Trust) (*manifest.Manifest, error) {
	var errs []error
	for _, d := range dests {
		if !slices.Contains(e.Destinations, d.Name) {
			continue
		}
		m, err := manifest.Read(ctx, d.Store, d.Name, e.Job, e.ID, trust)
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("backup %s of job %s: none of the destinations lists it", e.ID, e.Job)
	}
	return nil, errors.Join(errs...)
}

// Catalog lists job's complete backups (those with a manifest) across
// dests, oldest first. Destinations that cannot be listed are reported in
// unreachable and skipped.
func Catalog(ctx context.Context, job string, dests []storage.Destination) (entries []Entry, unreachable map[string]error) {
	byID := map[string]*Entry{}
	unreachable = map[string]error{}
	for _, d := range dests {
		ids, err := manifest.IDs(ctx, d.Store, job)
		if err != nil {
			unreachable[d.Name] = err
			continue
		}
		for _, id := range ids {
			e := byID[id]
			if e == nil {
				e = &Entry{Job: job, ID: id}
				byID[id] = e
			}
			e.Destinations = append(e.Destinations, d.Name)
		}
	}
	for _, e := range byID {
		entries = append(entries, *e)
	}
	slices.SortFunc(entries, func(a, b Entry) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return entries, unreachable
}

// Locate resolves id ("" for the newest) to a catalog entry.
func Locate(ctx context.Context, job, id string, dests []storage.Destination) (Entry, error) {
	entries, unreachable := Catalog(ctx, job, dests)
	if id == "" {
		if len(entries) == 0 {
			return Entry{}, fmt.Errorf("job %s: %w%s", job, ErrNoBackup, describeUnreachable(unreachable))
		}
		return entries[len(entries)-1], nil
	}
	if !manifest.ValidID(id) {
		return Entry{}, fmt.Errorf("%q is not a backup id (want e.g. 20261123T020000.000Z-7f3a)", id)
	}
	for _, e := range entries {
		if e.ID == id {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("job %s: backup %s not found%s", job, id, describeUnreachable(unreachable))
}

func describeUnreachable(u map[string]error) string {
	if len(u) == 0 {
		return ""
	}
	names := make([]string, 0, len(u))
	for n := range u {
		names = append(names, n)
	}
	slices.Sort(names)
	s := " (unreachable:"
	for _, n := range names {
		s += fmt.Sprintf(" %s: %v;", n, u[n])
	}
	return s + ")"
}
