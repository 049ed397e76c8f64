package lease

import (
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
		if got := tc.rec.free(tc.now); got != tc.want {
			t.Errorf("%s: free = %v, want %v", tc.name, got, tc.want)
		}
	}
}
