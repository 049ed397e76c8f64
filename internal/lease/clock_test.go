package lease_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/lease"
	"github.com/coffer-backup/coffer/storage"
)

// plant writes a lease record under key as someone other than a Coffer
// daemon would: a bucket writer, or a daemon whose clock runs fast.
func plant(t *testing.T, s storage.Store, key string, rec lease.Record) {
	t.Helper()
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), key, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

var year2999 = time.Date(2999, 12, 31, 23, 59, 59, 0, time.UTC)

// TestFarFutureLeaseIsTakenOverAfterTTL: a lease planted in a real bucket
// with Expires in the year 2999 holds another daemon off for lease_ttl (plus
// the ttl/4 skew allowance) after it first saw it, not until 2999. Both the
// refusal and the takeover report the implausible expiry, naming the
// holder and the stored value, so the daemon can warn and alert.
func TestFarFutureLeaseIsTakenOverAfterTTL(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	now := time.Now()
	plant(t, s, key, lease.Record{Holder: "intruder", Token: "t", Job: "orders", Acquired: now, Renewed: now, Expires: year2999})

	const ttl = 2 * time.Second
	first := time.Now()
	_, err := lease.Acquire(ctx, s, key, "daemon-b", ttl)
	if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, lease.ErrImplausibleExpiry) {
		t.Fatalf("first acquire: %v, want ErrHeld and ErrImplausibleExpiry", err)
	}
	for _, want := range []string{`"intruder"`, "2999-12-31T23:59:59Z"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("first acquire's error %q does not name %s", err, want)
		}
	}

	// Still held within ttl of the first sighting.
	time.Sleep(ttl / 2)
	if _, err := lease.Acquire(ctx, s, key, "daemon-b", ttl); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("acquire ttl/2 after the first sighting: %v, want ErrHeld", err)
	}

	// Free ttl + ttl/4 after the first sighting.
	time.Sleep(time.Until(first.Add(ttl + ttl/4 + 200*time.Millisecond)))
	b, err := lease.Acquire(ctx, s, key, "daemon-b", ttl)
	if err != nil {
		t.Fatalf("acquire ttl + ttl/4 after the first sighting of a year-2999 lease: %v, want it taken over", err)
	}
	warn := b.Implausible()
	if !errors.Is(warn, lease.ErrImplausibleExpiry) || !strings.Contains(warn.Error(), `"intruder"`) || !strings.Contains(warn.Error(), "2999-12-31T23:59:59Z") {
		t.Errorf("Implausible() after the takeover = %v, want ErrImplausibleExpiry naming the intruder and its expiry", warn)
	}
	if rec := stored(t, s, key); rec.Holder != "daemon-b" || rec.Expires.After(time.Now().Add(ttl+time.Second)) {
		t.Errorf("stored lease after the takeover = %+v, want daemon-b's, expiring within ttl", rec)
	}
	if err := b.Release(ctx); err != nil {
		t.Errorf("release: %v", err)
	}
}

// TestFastClockHolderKeepsLeaseWhileRenewing: a holder whose clock runs a
// day fast writes expiries a day ahead. While it renews (each renewal is a
// new version of the object) the other daemon leaves it alone, reporting
// the implausible expiry; once it stops, the other takes over after ttl.
func TestFastClockHolderKeepsLeaseWhileRenewing(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	key := lease.Key("orders")
	const ttl = 2 * time.Second
	renew := func() {
		fast := time.Now().Add(24 * time.Hour)
		plant(t, s, key, lease.Record{Holder: "fast", Token: "t", Job: "orders", Acquired: fast, Renewed: fast, Expires: fast.Add(ttl)})
	}
	renew()
	for range 5 { // 5 x ttl/2: longer than ttl + ttl/4, renewed every ttl/2
		_, err := lease.Acquire(ctx, s, key, "daemon-b", ttl)
		if !errors.Is(err, lease.ErrHeld) || !errors.Is(err, lease.ErrImplausibleExpiry) {
			t.Fatalf("acquire while the fast holder renews: %v, want ErrHeld and ErrImplausibleExpiry", err)
		}
		time.Sleep(ttl / 2)
		renew()
	}
	_, err := lease.Acquire(ctx, s, key, "daemon-b", ttl) // first sighting of the last renewal
	if !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("acquire just after the last renewal: %v, want ErrHeld", err)
	}
	stopped := time.Now()
	time.Sleep(time.Until(stopped.Add(ttl + ttl/4 + 200*time.Millisecond)))
	b, err := lease.Acquire(ctx, s, key, "daemon-b", ttl)
	if err != nil {
		t.Fatalf("acquire ttl + ttl/4 after the fast holder stopped renewing: %v", err)
	}
	if !errors.Is(b.Implausible(), lease.ErrImplausibleExpiry) {
		t.Errorf("Implausible() after taking over from the fast holder = %v, want ErrImplausibleExpiry", b.Implausible())
	}
}

// TestHonestLeaseIsNotImplausible: a lease written by a daemon with the
// same ttl and an agreeing clock is neither capped nor reported.
func TestHonestLeaseIsNotImplausible(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	key := lease.Key("orders")
	acquire(t, s, key, "daemon-a", time.Minute)
	_, err := lease.Acquire(t.Context(), s, key, "daemon-b", time.Minute)
	if !errors.Is(err, lease.ErrHeld) || errors.Is(err, lease.ErrImplausibleExpiry) {
		t.Errorf("acquire of an honest held lease: %v, want ErrHeld without ErrImplausibleExpiry", err)
	}
}
