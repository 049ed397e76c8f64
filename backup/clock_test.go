package backup_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// skewedClock is a real local store whose own clock reads ahead of this
// host's by ahead (a host clock that is behind, seen from the storage),
// or cannot be read (err).
type skewedClock struct {
	storage.Store
	ahead time.Duration
	err   error
}

func (s skewedClock) Now(context.Context) (time.Time, error) {
	if s.err != nil {
		return time.Time{}, s.err
	}
	return time.Now().Add(s.ahead), nil
}

// TestBackupDatedByAgreeingStorageClocks: a backup's id is its age for
// retention, so a host whose clock is days off must not date backups by
// it (a backup dated in the past by a slow clock would be deleted as
// expired once the clock is fixed; one dated ahead by a fast clock makes
// the job look backed up). When the destinations' clocks agree with each
// other and not with the host's, the backup is dated by theirs and says
// so; when they disagree with each other, or cannot be read, the host's
// clock is kept (one lying storage cannot move the dates).
func TestBackupDatedByAgreeingStorageClocks(t *testing.T) {
	const day = 24 * time.Hour
	errNoClock := errors.New("connection refused")
	for _, tc := range []struct {
		name            string
		primary, offsit skewedClock
		wantOffset      time.Duration
		wantWarning     string
	}{
		{"host 3 days behind both", skewedClock{ahead: 3 * day}, skewedClock{ahead: 3*day + time.Minute}, 3 * day, "behind the storage's"},
		{"host 2 days ahead of both", skewedClock{ahead: -2 * day}, skewedClock{ahead: -2 * day}, -2 * day, "ahead of the storage's"},
		{"in time", skewedClock{ahead: 2 * time.Minute}, skewedClock{ahead: -time.Minute}, 0, ""},
		{"destinations disagree", skewedClock{ahead: 3 * day}, skewedClock{}, 0, "disagree with each other"},
		{"one cannot tell, one agrees with the host", skewedClock{err: errNoClock}, skewedClock{}, 0, ""},
		{"none can tell", skewedClock{err: errNoClock}, skewedClock{err: errNoClock}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, rcpt := newIdentity(t)
			tc.primary.Store, tc.offsit.Store = newStore(t), newStore(t)
			job := backup.Job{
				Name: "app", Signer: testSigner, Source: execSource(t, "echo pupils"), Recipients: []string{rcpt}, Level: 3, Threads: 1,
				Destinations: []storage.Destination{{Name: "primary", Store: tc.primary}, {Name: "offsite", Store: tc.offsit}},
			}
			before := time.Now()
			res, err := backup.Run(context.Background(), job, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			dated, _ := manifest.IDTime(res.ID)
			if want := before.Add(tc.wantOffset); dated.Sub(want).Abs() > 90*time.Second {
				t.Errorf("backup dated %v, want about %v (host %+v)", dated, want, tc.wantOffset)
			}
			if res.Manifest.Started.Sub(dated).Abs() > time.Millisecond || res.Manifest.Finished.Before(res.Manifest.Started) {
				t.Errorf("manifest started %v finished %v, want them on the id's clock %v", res.Manifest.Started, res.Manifest.Finished, dated)
			}
			if tc.wantWarning == "" && res.ClockWarning != "" || !strings.Contains(res.ClockWarning, tc.wantWarning) {
				t.Errorf("clock warning %q, want it to say %q", res.ClockWarning, tc.wantWarning)
			}
		})
	}
}
