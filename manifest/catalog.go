package manifest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// ErrNoBackup is returned (wrapped) when a job has no verified backup.
var ErrNoBackup = errors.New("no complete backup found")

// Catalog is what a job's destinations hold, as far as it can be checked:
// the only input to every decision about backups (which to restore, verify
// or drill, whether a slot is already backed up, the sequence and shrink
// floor, what to repair, what retention may delete, what the report
// counts).
//
// A backup is in Backups only where its manifest's signature verifies
// (as Trust says), it describes the backup its key names, and its payload
// is present at the size the manifest records. Nothing else is used, and
// nothing is silently dropped: a manifest key that fails is listed in
// Untrusted with its reason, and a verified manifest whose payload is
// missing or short is listed in Incomplete. A destination that cannot be
// listed, or one of whose manifests cannot be read (network, 5xx), is in
// Unreachable: nothing it holds is decided on until it can be read whole.
type Catalog struct {
	Job string `json:"job"`
	// Backups are the verified backups, oldest first.
	Backups []Backup `json:"backups"`
	// Untrusted are manifest keys that cannot be used, with the reason.
	Untrusted []Untrusted `json:"untrusted,omitempty"`
	// Incomplete are verified manifests whose payload is missing or not at
	// its recorded size on that destination.
	Incomplete []Incomplete `json:"incomplete,omitempty"`
	// Unreachable maps each destination that could not be listed to why.
	Unreachable map[string]error `json:"-"`
	// Fetched counts the manifest objects read from the destinations (GETs);
	// manifests served by the cache are not counted.
	Fetched int `json:"-"`
}

// Backup is one verified backup and the destinations that hold it whole.
type Backup struct {
	ID string `json:"id"`
	// Manifest is the verified manifest, as read from the first
	// destination (in the order given to ReadCatalog) that holds it.
	Manifest *Manifest `json:"-"`
	// Destinations hold a verified manifest and the payload at its
	// recorded size, in the order given to ReadCatalog.
	Destinations []string `json:"destinations"`
	// Stored is when each of Destinations stored the manifest, by the
	// storage's own clock (the listing's modification time).
	Stored map[string]time.Time `json:"-"`
}

// Time is the backup's start time, from its id: the backup host's clock.
func (b Backup) Time() time.Time {
	t, _ := IDTime(b.ID) // ids in a catalog are valid
	return t
}

// Dated is the backup's time by the reading that makes it oldest: the
// earlier of its id's time (the backup host's clock) and when a
// destination stored it (the storage's clock). "Has the job been backed
// up since its last slot?" asks Dated, so that a backup dated ahead by a
// host clock that ran fast does not make the job look backed up.
func (b Backup) Dated() time.Time {
	t := b.Time()
	for _, st := range b.Stored {
		if !st.IsZero() && st.Before(t) {
			t = st
		}
	}
	return t
}

// Missing returns the names in all whose destination does not hold b.
func (b Backup) Missing(all []string) []string {
	var out []string
	for _, n := range all {
		if !slices.Contains(b.Destinations, n) {
			out = append(out, n)
		}
	}
	return out
}

// Untrusted is a manifest key that is not used, and why.
type Untrusted struct {
	Destination string `json:"destination"`
	// Key is the object's key, e.g. "app/<id>/manifest.json".
	Key string `json:"key"`
	// ID is the backup id the key names; empty when it names none.
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason"`
	// Err is the error behind Reason, for errors.Is (e.g. a
	// *SignatureError wrapping sign.ErrUnknownKey).
	Err error `json:"-"`
}

// String describes u for logs and messages.
func (u Untrusted) String() string {
	return fmt.Sprintf("%s on %s: %s", u.Key, u.Destination, u.Reason)
}

// Incomplete is a verified manifest whose payload is not whole on its
// destination.
type Incomplete struct {
	Destination string    `json:"destination"`
	ID          string    `json:"id"`
	Manifest    *Manifest `json:"-"`
	Reason      string    `json:"reason"`
}

// Newest returns the newest verified backup.
func (c *Catalog) Newest() (Backup, bool) {
	if len(c.Backups) == 0 {
		return Backup{}, false
	}
	return c.Backups[len(c.Backups)-1], true
}

// Find returns the verified backup id.
func (c *Catalog) Find(id string) (Backup, bool) {
	i, ok := slices.BinarySearchFunc(c.Backups, id, func(b Backup, id string) int { return cmp.Compare(b.ID, id) })
	if !ok {
		return Backup{}, false
	}
	return c.Backups[i], true
}

// Locate returns backup id, or the newest when id is "". The error names
// what could not be read, so that "not found" is never mistaken for "not
// there".
func (c *Catalog) Locate(id string) (Backup, error) {
	if id == "" {
		if b, ok := c.Newest(); ok {
			return b, nil
		}
		return Backup{}, fmt.Errorf("job %s: %w%s", c.Job, ErrNoBackup, c.describeProblems(""))
	}
	if !ValidID(id) {
		return Backup{}, fmt.Errorf("%q is not a backup id (want e.g. 20261123T020000.000Z-7f3a)", id)
	}
	if b, ok := c.Find(id); ok {
		return b, nil
	}
	return Backup{}, fmt.Errorf("job %s: backup %s not found%s", c.Job, id, c.describeProblems(id))
}

// On returns the verified backups destination holds whole, oldest first.
func (c *Catalog) On(destination string) []Backup {
	var out []Backup
	for _, b := range c.Backups {
		if slices.Contains(b.Destinations, destination) {
			out = append(out, b)
		}
	}
	return out
}

// describeProblems says, for an error message, which destinations could
// not be listed and which keys (of backup id, or all when id is "") were
// not trusted or not whole.
func (c *Catalog) describeProblems(id string) string {
	var parts []string
	for _, n := range slices.Sorted(mapKeys(c.Unreachable)) {
		parts = append(parts, fmt.Sprintf("%s unreachable: %v", n, c.Unreachable[n]))
	}
	for _, u := range c.Untrusted {
		if id == "" || u.ID == id {
			parts = append(parts, "untrusted "+u.String())
		}
	}
	for _, in := range c.Incomplete {
		if id == "" || in.ID == id {
			parts = append(parts, fmt.Sprintf("incomplete %s on %s: %s", in.ID, in.Destination, in.Reason))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// catalogReads is how many manifests of one destination are read at once.
const catalogReads = 4

// ReadCatalog lists job's objects on every destination (each on its own
// goroutine), reads and verifies every manifest as trust says, and checks
// each verified manifest's payload against the listing's size. cache, if
// not nil, serves manifests already read under the same key and ETag (and
// they are verified again from its bytes: the cache is not trusted
// either).
func ReadCatalog(ctx context.Context, job string, dests []storage.Destination, trust Trust, cache *Cache) *Catalog {
	c := &Catalog{Job: job, Unreachable: map[string]error{}}
	scans := make([]destScan, len(dests))
	var wg sync.WaitGroup
	for i, d := range dests {
		wg.Go(func() { scans[i] = scanDestination(ctx, job, d, trust, cache) })
	}
	wg.Wait()
	byID := map[string]*Backup{}
	for i, d := range dests {
		s := scans[i]
		c.Fetched += s.fetched
		if s.err != nil {
			c.Unreachable[d.Name] = s.err
			continue
		}
		c.Untrusted = append(c.Untrusted, s.untrusted...)
		c.Incomplete = append(c.Incomplete, s.incomplete...)
		for _, w := range s.whole {
			b := byID[w.m.ID]
			if b == nil {
				b = &Backup{ID: w.m.ID, Manifest: w.m, Stored: map[string]time.Time{}}
				byID[w.m.ID] = b
			}
			b.Destinations = append(b.Destinations, d.Name)
			b.Stored[d.Name] = w.at
		}
	}
	for _, b := range byID {
		c.Backups = append(c.Backups, *b)
	}
	slices.SortFunc(c.Backups, func(a, b Backup) int { return cmp.Compare(a.ID, b.ID) })
	return c
}

// destScan is what one destination holds of a job.
type destScan struct {
	whole      []stored
	untrusted  []Untrusted
	incomplete []Incomplete
	fetched    int
	err        error
}

// stored is a verified manifest and when the destination stored it.
type stored struct {
	m  *Manifest
	at time.Time
}

// scanDestination lists job's objects on d once and checks every manifest
// key in the listing.
func scanDestination(ctx context.Context, job string, d storage.Destination, trust Trust, cache *Cache) destScan {
	var s destScan
	sizes := map[string]int64{}
	var keys []storage.ObjectInfo
	for obj, err := range d.Store.List(ctx, layout.Job(job)) {
		if err != nil {
			s.err = fmt.Errorf("list %s on %s: %w", job, d.Store, err)
			return s
		}
		sizes[obj.Key] = obj.Size
		if obj.Key == FileName || strings.HasSuffix(obj.Key, "/"+FileName) {
			keys = append(keys, obj)
		}
	}
	type result struct {
		m       *Manifest
		fetched bool
		err     error
	}
	results := make([]result, len(keys))
	sem := make(chan struct{}, catalogReads)
	var wg sync.WaitGroup
	for i, obj := range keys {
		j, id, ok := ParseKey(obj.Key)
		if !ok || j != job {
			results[i].err = errors.New("not a backup manifest key (want <job>/<backup-id>/manifest.json)")
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			m, fetched, err := readVerified(ctx, d, obj, job, id, trust, cache)
			results[i] = result{m, fetched, err}
		})
	}
	wg.Wait()
	for i, obj := range keys {
		r := results[i]
		if r.fetched {
			s.fetched++
		}
		_, id, _ := ParseKey(obj.Key)
		var fe *fetchError
		switch {
		case r.err == nil:
		case ctx.Err() != nil:
			s.err = fmt.Errorf("read manifests of %s on %s: %w", job, d.Name, ctx.Err())
			return s
		case errors.Is(r.err, storage.ErrNotExist):
			continue // deleted since the listing (a prune elsewhere): gone, not untrusted
		case errors.As(r.err, &fe):
			// Listed but not readable (network, 5xx, permissions): what
			// the destination holds cannot be known, so none of it is
			// decided on this time, as for a destination that cannot be
			// listed.
			s.err = fe.err
			return s
		}
		if r.err != nil {
			s.untrusted = append(s.untrusted, Untrusted{Destination: d.Name, Key: obj.Key, ID: id, Reason: untrustedReason(r.err, obj.Key, d.Name), Err: r.err})
			continue
		}
		size, present := sizes[r.m.Payload.Key]
		switch {
		case !present:
			s.incomplete = append(s.incomplete, Incomplete{Destination: d.Name, ID: id, Manifest: r.m,
				Reason: fmt.Sprintf("payload %s is missing", r.m.Payload.Key)})
		case size != r.m.Payload.Bytes:
			s.incomplete = append(s.incomplete, Incomplete{Destination: d.Name, ID: id, Manifest: r.m,
				Reason: fmt.Sprintf("payload %s is %d bytes, the manifest says %d", r.m.Payload.Key, size, r.m.Payload.Bytes)})
		default:
			s.whole = append(s.whole, stored{r.m, obj.ModTime})
		}
	}
	return s
}

// readVerified returns the verified manifest stored as obj on d, from the
// cache when it holds obj's key and ETag, and whether it was fetched from
// the store.
func readVerified(ctx context.Context, d storage.Destination, obj storage.ObjectInfo, job, id string, trust Trust, cache *Cache) (*Manifest, bool, error) {
	object := obj.Key + " on " + d.Name
	if data, ok := cache.get(d.Store.String(), obj); ok {
		if m, err := decodeFor(data, trust, object, job, id); err == nil {
			return m, false, nil
		}
		// A cache entry that no longer verifies (keys rotated, file
		// damaged) is read again from the store.
	}
	data, err := fetch(ctx, d, obj.Key)
	if err != nil {
		return nil, true, &fetchError{err}
	}
	m, err := decodeFor(data, trust, object, job, id)
	if err != nil {
		return nil, true, err
	}
	cache.put(d.Store.String(), obj, data)
	return m, true, nil
}

// fetchError is a manifest object that was listed but could not be read.
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// fetch reads a manifest object, at most maxSize+1 bytes of it.
func fetch(ctx context.Context, d storage.Destination, key string) ([]byte, error) {
	rc, err := d.Store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read manifest %s from %s: %w", key, d.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s from %s: %w", key, d.Name, err)
	}
	return data, nil
}

// decodeFor decodes and verifies data, stored as object, and checks that
// it describes backup id of job.
func decodeFor(data []byte, trust Trust, object, job, id string) (*Manifest, error) {
	m, err := decode(data, trust, object)
	var se *SignatureError
	if errors.As(err, &se) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", object, err)
	}
	if m.Job != job || m.ID != id {
		return nil, fmt.Errorf("%s: describes backup %s/%s, not %s/%s", object, m.Job, m.ID, job, id)
	}
	return m, nil
}

// untrustedReason is err without the object name the catalog entry
// already carries.
func untrustedReason(err error, key, destination string) string {
	s := err.Error()
	s = strings.TrimPrefix(s, key+" on "+destination+": ")
	return s
}
