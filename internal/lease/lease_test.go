package lease_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/lease"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
	"github.com/coffer-backup/coffer/storage/s3"
)

func newStore(t *testing.T) *s3.Store {
	t.Helper()
	return s3test.NewBucket(t, "primary", func(o *s3.Options) { o.Prefix = "coffer" })
}

// stored returns the lease record as it is in the store.
func stored(t *testing.T, s storage.Store, key string) lease.Record {
	t.Helper()
	rc, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var rec lease.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatalf("lease object %q: %v", data, err)
	}
	return rec
}

// acquire takes the lease under key in s for holder, or fails the test.
func acquire(t *testing.T, s storage.Store, key, holder string, ttl time.Duration) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(t.Context(), s, key, holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestKey(t *testing.T) {
	if got := lease.Key("orders-db"); got != "_coffer/leases/orders-db.json" {
		t.Errorf("Key = %q", got)
	}
}

func TestAcquireRace(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	key := lease.Key("orders")
	const racers = 10
	leases := make([]*lease.Lease, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			leases[i], errs[i] = lease.Acquire(t.Context(), s, key, fmt.Sprintf("daemon-%d", i), time.Minute)
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("daemon-%d and daemon-%d both acquired the lease", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, lease.ErrHeld):
			t.Errorf("daemon-%d: %v, want ErrHeld", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("nobody acquired the lease")
	}
	holder := fmt.Sprintf("daemon-%d", winner)
	for i, err := range errs {
		if i != winner && err != nil && !strings.Contains(err.Error(), `"`+holder+`"`) {
			t.Errorf("daemon-%d's error does not name the holder %s: %v", i, holder, err)
		}
	}
	rec := stored(t, s, key)
	if rec.Holder != holder || rec.Token != leases[winner].Record().Token || rec.Job != "orders" {
		t.Errorf("stored lease = %+v, want holder %s with its token, job orders", rec, holder)
	}
}

func TestExpiredLeaseIsTakenOver(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	a := acquire(t, s, key, "daemon-a", 2*time.Second)
	if _, err := lease.Acquire(ctx, s, key, "daemon-b", 2*time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("acquire of an unexpired lease: %v, want ErrHeld", err)
	}

	// Free once expired by more than ttl/4 (the clock-skew allowance).
	time.Sleep(time.Until(a.Record().Expires.Add(500*time.Millisecond + 100*time.Millisecond)))
	b, err := lease.Acquire(ctx, s, key, "daemon-b", 2*time.Second)
	if err != nil {
		t.Fatalf("acquire of an expired lease: %v", err)
	}

	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Errorf("old holder's Renew: %v, want ErrLost", err)
	}
	if err := a.Release(ctx); !errors.Is(err, lease.ErrLost) {
		t.Errorf("old holder's Release: %v, want ErrLost", err)
	}
	rec := stored(t, s, key)
	if rec.Holder != "daemon-b" || rec.Token != b.Record().Token || !rec.Released.IsZero() {
		t.Errorf("after the old holder's Renew and Release, stored lease = %+v, want daemon-b's, not released", rec)
	}
	if err := b.Renew(ctx); err != nil {
		t.Errorf("new holder's Renew: %v", err)
	}
	if _, err := lease.Acquire(ctx, s, key, "daemon-a", 2*time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Errorf("old holder re-acquiring: %v, want ErrHeld", err)
	}
}

func TestReleaseFreesAtOnce(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	a := acquire(t, s, key, "daemon-a", time.Hour)
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx); err != nil {
		t.Errorf("second Release: %v", err)
	}
	b, err := lease.Acquire(ctx, s, key, "daemon-b", time.Hour)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if err := a.Renew(ctx); err == nil {
		t.Error("Renew after Release succeeded")
	}
	if rec := stored(t, s, key); rec.Holder != "daemon-b" || rec.Token != b.Record().Token {
		t.Errorf("stored lease = %+v, want daemon-b's", rec)
	}
}

func TestKeepHoldsLease(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	const ttl = 3 * time.Second
	a := acquire(t, s, key, "daemon-a", ttl)
	var lost atomic.Value
	stop := a.Keep(ctx, func(err error) { lost.Store(err) })
	defer stop()

	end := time.Now().Add(8 * time.Second)
	for time.Now().Before(end) {
		if _, err := lease.Acquire(ctx, s, key, "daemon-b", ttl); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("after %s, daemon-b's Acquire: %v, want ErrHeld", time.Until(end), err)
		}
		time.Sleep(time.Second)
	}
	if err := lost.Load(); err != nil {
		t.Fatalf("onLost called: %v", err)
	}
	if err := a.Release(ctx); err != nil { // stops Keep too
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, s, key, "daemon-b", ttl); err != nil {
		t.Errorf("acquire after release: %v", err)
	}
}

func TestKeepReportsTakeover(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	a := acquire(t, s, key, "daemon-a", 3*time.Second)
	lost := make(chan error, 2)
	stop := a.Keep(ctx, func(err error) { lost <- err })
	defer stop()
	// Another writer overwrites the lease (an operator, or a daemon that
	// believed it had expired).
	if _, err := s.Put(ctx, key, strings.NewReader(`{"holder":"intruder","token":"x"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-lost:
		if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "intruder") {
			t.Errorf("onLost(%v), want ErrLost naming the intruder", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("onLost not called within the ttl after a takeover")
	}
	if rec := stored(t, s, key); rec.Holder != "intruder" {
		t.Errorf("Keep overwrote the new holder: %+v", rec)
	}
}

// flaky fails every Replace while broken is set, like an unreachable server.
type flaky struct {
	*s3.Store
	broken atomic.Bool
}

func (f *flaky) Replace(ctx context.Context, key string, data []byte, etag string) (storage.ObjectInfo, error) {
	if f.broken.Load() {
		return storage.ObjectInfo{}, errors.New("injected: connection refused")
	}
	return f.Store.Replace(ctx, key, data, etag)
}

func TestKeepReportsLossBeforeOthersCanTakeOver(t *testing.T) {
	t.Parallel()
	s := &flaky{Store: newStore(t)}
	ctx := t.Context()
	key := lease.Key("orders")
	a := acquire(t, s, key, "daemon-a", time.Second)
	lost := make(chan error, 2)
	stop := a.Keep(ctx, func(err error) { lost <- err })
	defer stop()
	time.Sleep(500 * time.Millisecond) // let a renewal or two succeed
	s.broken.Store(true)
	select {
	case err := <-lost:
		expires := a.Record().Expires
		if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), "injected") {
			t.Errorf("onLost(%v), want ErrLost with the renewal error", err)
		}
		if _, err := lease.Acquire(ctx, s.Store, key, "daemon-b", time.Second); !errors.Is(err, lease.ErrHeld) {
			t.Errorf("another daemon could take the lease by the time onLost ran (expiry %s): %v", expires, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("onLost not called though renewals kept failing")
	}
	select {
	case err := <-lost:
		t.Errorf("onLost called twice; second: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestAcquireNeedsConditionalWrites(t *testing.T) {
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = lease.Acquire(t.Context(), s, lease.Key("orders"), "daemon-a", time.Minute)
	if !errors.Is(err, lease.ErrUnsupported) || !strings.Contains(err.Error(), "file://") {
		t.Errorf("Acquire on a directory store: %v, want ErrUnsupported naming the store", err)
	}
	for info, err := range s.List(t.Context(), "") {
		t.Errorf("Acquire wrote %s (%v) though it failed", info.Key, err)
	}
}
