package lease

import (
	"strings"
	"testing"
	"time"
)

// TestFree: when another daemon may take a lease over, given its record and
// the reader's clock.
func TestFree(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	held := Record{Holder: "a", Renewed: t0, Expires: t0.Add(time.Minute)}
	released := held
	released.Released = t0.Add(time.Second)
	for _, tc := range []struct {
		name string
		rec  Record
		now  time.Time
		want bool
	}{
		{"unexpired", held, t0.Add(30 * time.Second), false},
		{"just expired, within the skew allowance", held, t0.Add(time.Minute + time.Second), false},
		{"at the end of the skew allowance (ttl/4)", held, t0.Add(75 * time.Second), false},
		{"past the skew allowance", held, t0.Add(75*time.Second + time.Millisecond), true},
		{"released, before its expiry", released, t0.Add(2 * time.Second), true},
		{"reader's clock far behind, released", released, t0.Add(-time.Hour), true},
	} {
		if got := tc.rec.free(tc.now, 0, time.Minute); got != tc.want {
			t.Errorf("%s: free = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFreeCapsExpiry: a stored expiry later than the reader's ttl after it
// first saw that version of the lease is not believed: the lease is free
// ttl (plus the ttl/4 skew allowance) after the reader first saw it.
func TestFreeCapsExpiry(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	ttl := time.Minute
	planted := Record{Holder: "intruder", Renewed: t0, Expires: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}
	fast := Record{Holder: "fast clock", Renewed: t0.Add(24 * time.Hour), Expires: t0.Add(24*time.Hour + ttl)}
	honest := Record{Holder: "a", Renewed: t0, Expires: t0.Add(ttl)}
	for _, tc := range []struct {
		name    string
		rec     Record
		now     time.Time
		seenFor time.Duration
		want    bool
	}{
		{"planted, just seen", planted, t0, 0, false},
		{"planted, seen ttl ago: within the allowance", planted, t0.Add(ttl), ttl, false},
		{"planted, seen ttl + ttl/4 + 1ms ago", planted, t0.Add(75*time.Second + time.Millisecond), 75*time.Second + time.Millisecond, true},
		{"planted, seen an hour ago", planted, t0.Add(time.Hour), time.Hour, true},
		{"fast holder's renewal, just seen", fast, t0, 0, false},
		{"fast holder stopped renewing ttl + ttl/4 ago", fast, t0.Add(76 * time.Second), 76 * time.Second, true},
		{"honest lease seen long after it was written: stored expiry counts", honest, t0.Add(30 * time.Second), 0, false},
		{"honest lease past its own expiry and allowance", honest, t0.Add(76 * time.Second), 0, true},
	} {
		if got := tc.rec.free(tc.now, tc.seenFor, ttl); got != tc.want {
			t.Errorf("%s: free = %v, want %v", tc.name, got, tc.want)
		}
	}
	if err := honest.implausible(t0, ttl); err != nil {
		t.Errorf("honest lease called implausible: %v", err)
	}
	if err := planted.implausible(t0, ttl); err == nil || !strings.Contains(err.Error(), `"intruder"`) || !strings.Contains(err.Error(), "2999-01-01T00:00:00Z") {
		t.Errorf("planted lease: implausible = %v, want an error naming the holder and its expiry", err)
	}
}
