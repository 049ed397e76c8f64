package backup

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// tellingStore is a local store that tells the time by the real clock.
type tellingStore struct{ storage.Store }

func (tellingStore) Now(context.Context) (time.Time, error) { return time.Now(), nil }

// TestDatingIgnoresAJumpAfterTheCheck: the host's clock agrees with the
// storage's at the check and jumps 7 minutes back right after it (as NTP
// stepping a clock, or the chaos soak, does). The backup is still dated by
// the time the check read: an id 7 minutes in the past would make
// retention delete the backup 7 minutes early. Before the fix the id was
// read from the host's clock again after the check, and the soak caught a
// backup pruned 9 seconds after it was taken.
func TestDatingIgnoresAJumpAfterTheCheck(t *testing.T) {
	var jumped bool
	orig := hostNow
	t.Cleanup(func() { hostNow = orig })
	hostNow = func() time.Time {
		if jumped {
			return time.Now().Add(-7 * time.Minute)
		}
		return time.Now()
	}
	var dests []storage.Destination
	for _, name := range []string{"primary", "offsite"} {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		dests = append(dests, storage.Destination{Name: name, Store: tellingStore{s}})
	}
	for _, tc := range []struct {
		name  string
		dests []storage.Destination
	}{
		{"clocks agree", dests},
		{"no storage can tell", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jumped = false
			d := checkDating(t.Context(), tc.dests, zaptest.NewLogger(t))
			jumped = true
			if d.warning != "" {
				t.Fatalf("warning %q, want none", d.warning)
			}
			if off := -time.Until(d.now()); off < -time.Second || off > time.Second {
				t.Fatalf("dated %s off the true time after the host's clock jumped back 7m; want the time the check read", off)
			}
		})
	}
}
