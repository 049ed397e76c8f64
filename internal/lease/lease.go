package lease

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/coffer-backup/coffer/internal/clock"
	"github.com/coffer-backup/coffer/internal/layout"
	"github.com/coffer-backup/coffer/storage"
)

// MinTTL is the shortest lease Acquire accepts.
const MinTTL = time.Second

const (
	// maxRecord bounds what is read from a lease object.
	maxRecord = 64 << 10
	// attempts bounds Acquire's retries when the object changes under it.
	attempts = 3
)

// ErrHeld is returned (wrapped) by Acquire when another holder's lease is in
// force; the message names the holder and when its lease expires.
var ErrHeld = errors.New("lease is held by another holder")

// ErrLost is returned (wrapped) by Renew and Release, and passed to Keep's
// onLost, when the lease is no longer ours: another holder took it over, it
// was removed, or it could not be renewed before it expired.
var ErrLost = errors.New("lease lost")

// ErrUnsupported is returned (wrapped) by Acquire when the store lacks the
// conditional writes leases are built on.
var ErrUnsupported = errors.New("store does not support conditional writes (create-only and replace-if-unchanged), which leases need")

// ErrImplausibleExpiry is wrapped by Acquire's ErrHeld error, and returned
// (wrapped) by Lease.Implausible after a takeover, when the stored lease
// expires later than the reader's now + ttl (plus the ttl/4 allowance for
// clock skew): its holder's clock runs fast, or someone with write access
// to the bucket planted it. Such an expiry is not believed: the lease is
// treated as expiring ttl after this process first saw that version of it.
// The message names the holder and the stored expiry.
var ErrImplausibleExpiry = errors.New("lease expiry is implausibly far in the future")

// errReleased is returned by Renew after Release.
var errReleased = errors.New("lease was released")

// Record is the JSON content of a lease object.
type Record struct {
	Holder   string    `json:"holder"`
	Token    string    `json:"token"` // random per acquisition
	Job      string    `json:"job"`
	Acquired time.Time `json:"acquired"`
	Renewed  time.Time `json:"renewed"`
	Expires  time.Time `json:"expires"`
	// Released is set when the holder gave the lease up; a released
	// lease is free at once, whatever the clocks say.
	Released time.Time `json:"released,omitzero"`
}

// expiry is when the reader believes the lease expires, at now on its
// clock, having first seen this version of the record seenFor ago, with
// its own lease ttl: the stored Expires, but never later than ttl after
// the reader first saw it. Capping at now + ttl would never expire; a
// holder that renews writes a new version, which is seen anew.
func (r Record) expiry(now time.Time, seenFor, ttl time.Duration) time.Time {
	if limit := now.Add(ttl - seenFor); limit.Before(r.Expires) {
		return limit
	}
	return r.Expires
}

// free reports whether a lease in this state may be taken at now (on the
// reader's clock; see expiry for seenFor and ttl): released, or expired by
// more than a quarter of its ttl (the smaller of the holder's and the
// reader's), the allowance for clock skew between holders.
func (r Record) free(now time.Time, seenFor, ttl time.Duration) bool {
	if !r.Released.IsZero() {
		return true
	}
	grace := min(max(r.Expires.Sub(r.Renewed), 0), ttl) / 4
	return now.After(r.expiry(now, seenFor, ttl).Add(grace))
}

// implausible returns an error wrapping ErrImplausibleExpiry when the
// (unreleased) record expires later than now + ttl + ttl/4 on the reader's
// clock, naming its holder and stored expiry; nil otherwise.
func (r Record) implausible(now time.Time, ttl time.Duration) error {
	if !r.Released.IsZero() || !r.Expires.After(now.Add(ttl+ttl/4)) {
		return nil
	}
	return fmt.Errorf("%w: holder %q wrote expires %s, later than this daemon's now + lease_ttl %s = %s (a fast clock, or a planted lease); it is believed only until %s after it was first seen",
		ErrImplausibleExpiry, r.Holder, r.Expires.UTC().Format(time.RFC3339),
		ttl, now.Add(ttl).UTC().Format(time.RFC3339), ttl)
}

// sighting is when this process first saw one version (ETag) of a lease.
type sighting struct {
	etag  string
	first time.Time // monotonic: immune to wall-clock jumps
}

// sightings holds, per store and lease key, the version of the lease this
// process last read and when it first saw it. Only the latest version per
// key is kept, so it stays as small as the number of leases.
var sightings struct {
	mu sync.Mutex
	m  map[string]sighting
}

// seenFor returns how long ago this process first saw version etag of the
// lease under key in store (0 the first time).
func seenFor(store storage.Store, key, etag string) time.Duration {
	id := store.String() + "\x00" + key
	sightings.mu.Lock()
	defer sightings.mu.Unlock()
	if sightings.m == nil {
		sightings.m = map[string]sighting{}
	}
	s, ok := sightings.m[id]
	if !ok || s.etag != etag {
		s = sighting{etag: etag, first: time.Now()}
		sightings.m[id] = s
	}
	return time.Since(s.first)
}

// Key returns the key of job's lease object: "_coffer/leases/<job>.json"
// (layout.Lease).
func Key(job string) string { return layout.Lease(job) }

// DrillKey returns the key of the lease a job's scheduled drills take in
// HA mode: "_coffer/leases/drills/<job>.json", apart from the backup lease
// so that a drill never holds up a backup (layout.DrillLease).
func DrillKey(job string) string { return layout.DrillLease(job) }

// jobOf returns the job a lease key names, or the key itself when it is not
// of Key's or DrillKey's form.
func jobOf(key string) string {
	if j, ok := layout.LeaseJob(key); ok {
		return j
	}
	return key
}

// A Lease is held by this process until it expires, is released, or is
// taken over after expiring. Its methods are safe for concurrent use.
type Lease struct {
	store storage.Store
	swap  storage.Swapper
	key   string
	ttl   time.Duration

	mu       sync.Mutex
	rec      Record // as last written by us
	etag     string // of our last write
	released bool
	stopKeep func()

	implausible error // of the lease Acquire took over, if its expiry was not believed
}

// Acquire takes the lease under key in store for holder, valid for ttl. It
// creates the object when absent; when present and free (released, or
// expired by more than ttl/4 on the local clock; see the package doc on
// clock skew) it replaces it, conditional on the ETag it read. When another
// holder's lease is in force it returns ErrHeld. An expiry later than ttl
// after this process first saw that version of the lease is not believed
// (see ErrImplausibleExpiry): the ErrHeld error then also wraps
// ErrImplausibleExpiry, and a lease taken over from it says so through
// Lease.Implausible. Of concurrent acquirers at most one succeeds. The
// store must implement storage.Creator and storage.Swapper, or Acquire
// returns ErrUnsupported.
func Acquire(ctx context.Context, store storage.Store, key string, holder string, ttl time.Duration) (*Lease, error) {
	creator, ok := store.(storage.Creator)
	swap, ok2 := store.(storage.Swapper)
	if !ok || !ok2 {
		return nil, fmt.Errorf("acquire lease %s in %s: %w", key, store, ErrUnsupported)
	}
	if ttl < MinTTL {
		return nil, fmt.Errorf("acquire lease %s: ttl %s is shorter than %s", key, ttl, MinTTL)
	}
	if holder == "" {
		return nil, fmt.Errorf("acquire lease %s: empty holder", key)
	}
	var b [16]byte
	rand.Read(b[:])
	l := &Lease{store: store, swap: swap, key: key, ttl: ttl}
	rec := Record{Holder: holder, Token: hex.EncodeToString(b[:]), Job: jobOf(key)}

	var last error
	for range attempts {
		now := clock.Now()
		rec.Acquired, rec.Renewed, rec.Expires = now, now, now.Add(ttl)
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		info, err := creator.Create(ctx, key, bytes.NewReader(data))
		if err == nil {
			return l.took(rec, info)
		}
		if !errors.Is(err, storage.ErrExist) {
			return nil, fmt.Errorf("acquire lease: %w", err)
		}

		cur, etag, err := read(ctx, store, key)
		if errors.Is(err, storage.ErrNotExist) {
			last = err // removed since Create saw it: create again
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("acquire lease: %w", err)
		}
		now = clock.Now()
		seen := seenFor(store, key, etag)
		implausible := cur.implausible(now, ttl)
		if !cur.free(now, seen, ttl) {
			if implausible != nil {
				return nil, fmt.Errorf("acquire lease %s in %s: %w: %q holds it until %s: %w",
					key, store, ErrHeld, cur.Holder, cur.expiry(now, seen, ttl).UTC().Format(time.RFC3339), implausible)
			}
			return nil, fmt.Errorf("acquire lease %s in %s: %w: %q holds it until %s",
				key, store, ErrHeld, cur.Holder, cur.Expires.UTC().Format(time.RFC3339))
		}
		if implausible != nil {
			l.implausible = fmt.Errorf("lease %s in %s taken over: %w", key, store, implausible)
		}
		rec.Acquired, rec.Renewed, rec.Expires = now, now, now.Add(ttl)
		if data, err = json.Marshal(rec); err != nil {
			return nil, err
		}
		info, err = swap.Replace(ctx, key, data, etag)
		if err == nil {
			return l.took(rec, info)
		}
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return nil, fmt.Errorf("acquire lease: %w", err)
		}
		last = err // another acquirer changed it first: look again
	}
	return nil, fmt.Errorf("acquire lease %s in %s: it kept changing under us: %w", key, store, last)
}

func (l *Lease) took(rec Record, info storage.ObjectInfo) (*Lease, error) {
	if info.ETag == "" {
		return nil, fmt.Errorf("acquire lease %s in %s: the store returned no ETag: %w", l.key, l.store, ErrUnsupported)
	}
	l.rec, l.etag = rec, info.ETag
	return l, nil
}

// Implausible returns an error wrapping ErrImplausibleExpiry, naming the
// previous holder and its stored expiry, when Acquire took this lease over
// from a record whose expiry it did not believe; nil otherwise. The caller
// should warn: another daemon's clock runs fast, or the bucket was written
// by someone else.
func (l *Lease) Implausible() error { return l.implausible }

// Record returns the lease as this holder last wrote it.
func (l *Lease) Record() Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec
}

// Renew extends the lease to ttl from now, conditional on the object still
// being the version this Lease last wrote. When another holder took it over
// (or it was removed) it returns ErrLost and changes nothing. Other errors
// (network, server) leave the lease as it was; a later Renew may succeed as
// long as nobody took it over.
func (l *Lease) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return fmt.Errorf("renew lease %s in %s: %w", l.key, l.store, errReleased)
	}
	now := clock.Now()
	next := l.rec
	next.Renewed, next.Expires = now, now.Add(l.ttl)
	if err := l.write(ctx, next); err != nil {
		return fmt.Errorf("renew lease %s in %s: %w", l.key, l.store, err)
	}
	return nil
}

// Keep renews the lease every ttl/3 on a goroutine until stop is called or
// ctx is done. It calls onLost once, with an error wrapping ErrLost, when
// another holder took the lease over, or when no renewal succeeded before
// the lease expired on the local clock (other holders wait a further ttl/4),
// and then stops renewing. onLost runs on Keep's goroutine and may call
// stop. stop waits for a renewal in flight to end; calling it again does
// nothing. Release stops Keep itself; a second Keep stops the first.
func (l *Lease) Keep(ctx context.Context, onLost func(error)) (stop func()) {
	l.mu.Lock()
	prev := l.stopKeep
	l.stopKeep = nil
	l.mu.Unlock()
	if prev != nil {
		prev()
	}

	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		err := l.keep(ctx)
		close(done)
		if err != nil && onLost != nil {
			onLost(err)
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	l.mu.Lock()
	l.stopKeep = stop
	l.mu.Unlock()
	return stop
}

// keep renews until ctx is done (nil) or the lease is lost (ErrLost).
func (l *Lease) keep(ctx context.Context) error {
	period := l.ttl / 3
	t := time.NewTimer(period)
	defer t.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		expires := l.Record().Expires
		if !clock.Now().Before(expires) {
			if lastErr == nil {
				return fmt.Errorf("lease %s in %s: %w: not renewed before it expired at %s",
					l.key, l.store, ErrLost, expires.UTC().Format(time.RFC3339))
			}
			return fmt.Errorf("lease %s in %s: %w: not renewed before it expired at %s; last error: %w",
				l.key, l.store, ErrLost, expires.UTC().Format(time.RFC3339), lastErr)
		}
		// A renewal that would land after expiry is pointless: bound it.
		// (A timeout, not a deadline: contexts run on the system clock.)
		actx, cancel := context.WithTimeout(ctx, min(period, expires.Sub(clock.Now())))
		err := l.Renew(actx)
		cancel()
		switch {
		case err == nil:
			lastErr = nil
			t.Reset(period)
		case ctx.Err() != nil, errors.Is(err, errReleased):
			return nil
		case errors.Is(err, ErrLost):
			return err
		default:
			lastErr = err
			t.Reset(min(period/3, expires.Sub(clock.Now())))
		}
	}
}

// Release gives the lease up (after stopping Keep): it marks the object
// released, conditional on it still being the version this Lease last
// wrote, so that another holder may take it at once. A holder whose lease
// was taken over gets ErrLost and changes nothing. Releasing twice does
// nothing.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	stop := l.stopKeep
	l.stopKeep = nil
	l.mu.Unlock()
	if stop != nil {
		stop()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	now := clock.Now()
	next := l.rec
	next.Released, next.Expires = now, now
	if err := l.write(ctx, next); err != nil {
		return fmt.Errorf("release lease %s in %s: %w", l.key, l.store, err)
	}
	l.released = true
	return nil
}

// write replaces the object with rec, conditional on the ETag of our last
// write. When the condition fails because our own previous write landed
// but its answer was lost (the object still carries our token), it adopts
// that version's ETag and tries once more. l.mu must be held.
func (l *Lease) write(ctx context.Context, rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	for range 2 {
		var info storage.ObjectInfo
		info, err = l.swap.Replace(ctx, l.key, data, l.etag)
		if err == nil {
			l.rec, l.etag = rec, info.ETag
			return nil
		}
		if !errors.Is(err, storage.ErrPreconditionFailed) {
			return err
		}
		cur, etag, rerr := read(ctx, l.store, l.key)
		switch {
		case errors.Is(rerr, storage.ErrNotExist):
			return fmt.Errorf("%w: the lease object was removed", ErrLost)
		case rerr != nil:
			return fmt.Errorf("the lease changed, and reading it back failed: %w", rerr)
		case cur.Token != l.rec.Token:
			return fmt.Errorf("%w: %q took it over at %s", ErrLost, cur.Holder, cur.Acquired.UTC().Format(time.RFC3339))
		}
		l.etag = etag
	}
	return err
}

// infoGetter is implemented by stores that return a small object's bytes
// and the ETag of that same version in one call (storage/s3).
type infoGetter interface {
	GetWithInfo(ctx context.Context, key string) ([]byte, storage.ObjectInfo, error)
}

// read returns the lease record under key and the ETag of the version read.
func read(ctx context.Context, store storage.Store, key string) (Record, string, error) {
	var (
		data []byte
		info storage.ObjectInfo
		err  error
	)
	if g, ok := store.(infoGetter); ok {
		data, info, err = g.GetWithInfo(ctx, key)
		if err != nil {
			return Record{}, "", err
		}
	} else {
		// Stat before Get: if the object changes in between, the ETag is
		// older than the bytes, and a Replace on it fails safely.
		if info, err = store.Stat(ctx, key); err != nil {
			return Record{}, "", err
		}
		rc, err := store.Get(ctx, key)
		if err != nil {
			return Record{}, "", err
		}
		data, err = io.ReadAll(io.LimitReader(rc, maxRecord))
		rc.Close()
		if err != nil {
			return Record{}, "", fmt.Errorf("read lease %s in %s: %w", key, store, err)
		}
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, "", fmt.Errorf("lease %s in %s is not a lease record (remove it if no daemon uses it): %w", key, store, err)
	}
	if info.ETag == "" {
		return Record{}, "", fmt.Errorf("read lease %s in %s: the store returned no ETag: %w", key, store, ErrUnsupported)
	}
	return rec, info.ETag, nil
}
