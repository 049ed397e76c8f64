package e2e

import (
	"bytes"
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
	"github.com/coffer-backup/coffer/manifest"
)

// TestTamperedPrimaryIsRefused changes the newest backup's primary copy in
// the ways a careless or hostile provider could: truncated, trailing
// garbage, swapped for the older backup's payload, manifest deleted. Each
// time `verify` fails naming the primary (or the backup shows as missing
// there), and `restore` still brings back the right rows from the offsite.
func TestTamperedPrimaryIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, b *bucket, newKey, oldKey string, newID string)
	}{
		{"truncated", func(t *testing.T, b *bucket, newKey, _, _ string) {
			data := b.get(t, newKey)
			b.put(t, newKey, data[:len(data)-100])
		}},
		{"trailing garbage", func(t *testing.T, b *bucket, newKey, _, _ string) {
			b.put(t, newKey, append(b.get(t, newKey), []byte("extra")...))
		}},
		{"swapped with an older backup", func(t *testing.T, b *bucket, newKey, oldKey, _ string) {
			b.put(t, newKey, b.get(t, oldKey))
		}},
		{"manifest deleted", func(t *testing.T, b *bucket, _, _, newID string) {
			if err := b.store.Delete(context.Background(), manifest.Key("lite", newID)); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
			path, _ := e.sqliteJob("lite", 2_000)
			e.backup("lite")
			db := dbtest.SQLiteOpen(t, path) // the newest backup differs from the older one
			if _, err := db.Exec(`UPDATE customers SET name = name || ' (renamed)'`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			want := dbtest.SQLiteTableHashes(t, path)
			e.backup("lite")
			backups := listJSON(t, e)
			if len(backups) != 2 {
				t.Fatalf("%d backups, want 2", len(backups))
			}
			oldID, newID := backups[0].ID, backups[1].ID
			var oldKey, newKey string
			for _, k := range e.primary.keys(t) {
				switch {
				case strings.HasPrefix(k, "lite/"+oldID+"/payload."):
					oldKey = k
				case strings.HasPrefix(k, "lite/"+newID+"/payload."):
					newKey = k
				}
			}
			if oldKey == "" || newKey == "" || bytes.Equal(e.primary.get(t, oldKey), e.primary.get(t, newKey)) {
				t.Fatalf("payload keys %q %q, or equal payloads", oldKey, newKey)
			}
			tc.tamper(t, e.primary, newKey, oldKey, newID)

			out, _, code := e.run("verify", "--job", "lite", "--id", newID, "--identity", e.identity)
			if tc.name == "manifest deleted" {
				// The primary no longer holds the backup: list says so.
				b := listJSON(t, e)
				if len(b) != 2 || strings.Join(b[1].Missing, ",") != "primary" {
					t.Errorf("list after deleting the primary manifest: %+v, want the newest missing from primary", b)
				}
			} else if code != 1 || !strings.Contains(out, "primary") {
				t.Errorf("verify of a %s payload: exit %d, want 1 naming primary:\n%s", tc.name, code, out)
			}

			restored := filepath.Join(t.TempDir(), "r.db")
			stdout, _, code := e.run("restore", "--job", "lite", "--id", newID, "--identity", e.identity, "--target", restored)
			if code != 0 || !strings.Contains(stdout, "from offsite") {
				t.Fatalf("restore after a %s primary: exit %d, %q; want it served from offsite", tc.name, code, stdout)
			}
			if got := dbtest.SQLiteTableHashes(t, restored); !maps.Equal(got, want) {
				t.Error("restored tables differ from the newest backup's source")
			}
		})
	}
}
