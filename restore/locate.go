package restore

import (
	"context"
	"slices"

	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// ErrNoBackup is returned (wrapped) when a job has no verified, whole
// backup anywhere. It is manifest.ErrNoBackup: errors.Is works with either.
var ErrNoBackup = manifest.ErrNoBackup

// Entry is one backup and the destinations whose manifest key lists it.
// It goes with Catalog; use manifest.Backup.
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

// Catalog lists the backups whose manifest key is present across dests,
// oldest first, without reading or verifying a manifest. Destinations that
// cannot be listed are reported in unreachable and skipped.
//
// A present key proves nothing (anyone who can write to a bucket can plant
// one): no decision may rest on Catalog. Decisions use
// manifest.ReadCatalog; Catalog stays only until its last callers (prune,
// repair) have moved onto it, and is then removed.
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
