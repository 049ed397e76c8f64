package restore_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// newSQLiteBackup backs up a seeded SQLite database to a primary and an
// offsite directory.
func newSQLiteBackup(t *testing.T) *dbBackup {
	t.Helper()
	i := slices.IndexFunc(engines, func(e engine) bool { return e.name == "sqlite" })
	return newDBBackup(t, engines[i], 3_000)
}

// restoreTo restores the newest backup into a new SQLite file at target.
func (b *dbBackup) restoreTo(t *testing.T, target string) (*restore.Report, error) {
	t.Helper()
	conn := config.Source{Type: "sqlite", Path: target}
	return restore.Run(t.Context(), restore.Request{Job: "app", Destinations: b.dests, Identities: []age.Identity{b.id}, Trust: signtest.Trust(b.signer)},
		func(info dumpinfo.Info) (snapshot.Loader, error) {
			return snapshot.NewLoader(info, conn, target, false)
		}, zaptest.NewLogger(t))
}

// leftovers lists the files in target's directory other than target.
func leftovers(t *testing.T, target string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(target))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Name() != filepath.Base(target) {
			out = append(out, e.Name())
		}
	}
	return out
}

// Where a flipped byte sits in a payload: in the age header (caught
// before the target is prepared), and in the last chunk (caught after
// most of the database was written, so the loader must start again).
var flips = []struct {
	name   string
	offset int
}{
	{"age header", 30},
	{"last chunk", -100},
}

// TestRestoreFallsBackAfterIntegrityFailure: one flipped byte in
// primary's payload fails its checks; the restore falls back to offsite,
// says why primary was not used, and the restored database equals the
// original, with nothing else left beside it.
func TestRestoreFallsBackAfterIntegrityFailure(t *testing.T) {
	for _, f := range flips {
		t.Run(f.name, func(t *testing.T) {
			b := newSQLiteBackup(t)
			b.flip(t, 0, f.offset)
			target := filepath.Join(t.TempDir(), "restored.db")

			rep, err := b.restoreTo(t, target)
			if err != nil {
				t.Fatalf("restore with primary's copy damaged: %v", err)
			}
			if rep.ServedBy != "offsite" || len(rep.Attempts) != 2 || rep.Attempts[0].Destination != "primary" || rep.Attempts[0].Error == "" ||
				rep.Attempts[1].Destination != "offsite" || rep.Attempts[1].Error != "" {
				t.Fatalf("report %+v: want primary failed, then offsite served", rep)
			}
			if got := dbtest.SQLiteTableHashes(t, target); !maps.Equal(got, b.want) {
				t.Fatalf("restored database differs from the original:\n got %v\nwant %v", got, b.want)
			}
			if got := leftovers(t, target); len(got) != 0 {
				t.Errorf("beside the restored database: %v, want nothing", got)
			}
		})
	}
}

// TestRestoreFailsWhenEveryCopyIsBad: with a byte flipped in both copies
// the restore fails, its error names each destination with its own
// failure, and no database (nor a temporary file) is left where the
// target was to be.
func TestRestoreFailsWhenEveryCopyIsBad(t *testing.T) {
	for _, f := range flips {
		t.Run(f.name, func(t *testing.T) {
			b := newSQLiteBackup(t)
			b.flip(t, 0, f.offset)
			b.flip(t, 1, f.offset)
			target := filepath.Join(t.TempDir(), "restored.db")

			rep, err := b.restoreTo(t, target)
			if err == nil {
				t.Fatal("restore from two damaged copies succeeded")
			}
			if rep == nil || len(rep.Attempts) != 2 {
				t.Fatalf("report %+v, want both destinations tried", rep)
			}
			for _, a := range rep.Attempts {
				if a.Error == "" || !strings.Contains(err.Error(), a.Destination+": "+a.Error) {
					t.Errorf("error %q does not name %s's failure %q", err, a.Destination, a.Error)
				}
			}
			if !strings.Contains(err.Error(), "could not be restored from any destination") {
				t.Errorf("error %q, want it to say no destination could serve", err)
			}
			if _, serr := os.Stat(target); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("target after a failed restore: %v, want it not to exist", serr)
			}
			if got := leftovers(t, target); len(got) != 0 {
				t.Errorf("left where the target was to be: %v, want nothing", got)
			}
		})
	}
}
