package daemon

import (
	"testing"

	"github.com/coffer-backup/coffer/backup"
)

// TestRunOutcome: a backup run's outcome reaches notifications, pings and
// coffer_backup_runs_total in the same words as before they were typed
// (receivers and alerts match on them).
func TestRunOutcome(t *testing.T) {
	for o, want := range map[backup.Outcome]string{backup.OK: "ok", backup.Partial: "partial", backup.Failed: "failed"} {
		n, m := runOutcome(o)
		if string(o) != want || string(n) != want || string(m) != want {
			t.Errorf("run outcome %q: notified %q, counted %q; want %q everywhere", o, n, m, want)
		}
	}
}
