package clock

import (
	"testing"
	"time"
)

func TestNowFollowsTheSystemClock(t *testing.T) {
	before := time.Now()
	got := Now()
	after := time.Now()
	if got.Before(before) || got.After(after) {
		t.Fatalf("Now() = %v, want between %v and %v (no offset outside the soak build)", got, before, after)
	}
}
