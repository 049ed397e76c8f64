package restore_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/backup"
	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/signtest"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/restore"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
	"github.com/coffer-backup/coffer/storage"
)

// engine is one database server a forced restore is tested against.
type engine struct {
	name   string
	create func(t testing.TB) string
	source func(t testing.TB, db string) config.Source
	seed   func(t testing.TB, src config.Source, rows int)
	hashes func(t testing.TB, src config.Source) map[string]string
	// databases lists the databases on the server whose names start
	// with prefix.
	databases func(t testing.TB, prefix string) []string
	// staged is true when a forced restore loads beside the target and
	// swaps it in (PostgreSQL), so even a payload that fails mid-stream
	// leaves the target as it was.
	staged bool
}

var engines = []engine{
	{
		name: "sqlite", staged: true,
		// A name only: seeding or restoring creates the file.
		create: func(t testing.TB) string { return filepath.Join(t.TempDir(), "db.sqlite") },
		source: func(t testing.TB, path string) config.Source { return config.Source{Type: "sqlite", Path: path} },
		seed:   func(t testing.TB, src config.Source, rows int) { dbtest.SeedSQLite(t, src.Path, rows) },
		hashes: func(t testing.TB, src config.Source) map[string]string { return dbtest.SQLiteTableHashes(t, src.Path) },
		// The target and any temporary file the loader left beside it
		// (.<name>.coffer-*); the target's own -wal and -shm are not
		// counted.
		databases: func(t testing.TB, path string) []string {
			var out []string
			if _, err := os.Stat(path); err == nil {
				out = append(out, path)
			}
			m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".coffer-*"))
			return append(out, m...)
		},
	},
	{
		name: "postgres", create: dbtest.CreatePostgresDB, source: dbtest.PostgresSource,
		seed: dbtest.SeedPostgres, hashes: dbtest.PostgresTableHashes, staged: true,
		databases: func(t testing.TB, prefix string) []string {
			conn := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
			rows, err := conn.Query(context.Background(), "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		},
	},
	{
		name: "mariadb", create: dbtest.CreateMariaDB, source: dbtest.MariaDBSource,
		seed: dbtest.SeedMariaDB, hashes: dbtest.MariaDBTableHashes,
		databases: func(t testing.TB, prefix string) []string {
			db := dbtest.MariaDBOpen(t, dbtest.MariaDBSource(t, ""))
			rows, err := db.Query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, ?) = ?", len(prefix), prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []string
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				out = append(out, s)
			}
			return out
		},
	},
}

// dbBackup is one backup of a seeded database in two directory stores.
type dbBackup struct {
	id     *age.X25519Identity
	dests  []storage.Destination
	m      *manifest.Manifest
	signer *sign.Signer
	want   map[string]string // the backed-up rows
}

func newDBBackup(t *testing.T, e engine, rows int) *dbBackup {
	t.Helper()
	src := e.source(t, e.create(t))
	e.seed(t, src, rows)
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	id := backuptest.NewIdentity(t)
	dests := backuptest.LocalDestinations(t, "primary", "offsite")
	signer := signtest.NewSigner()
	m := backuptest.Take(t, backup.Job{Source: s, Destinations: dests, Recipients: []string{id.Recipient().String()}, Signer: signer})
	return &dbBackup{id: id, dests: dests, m: m, signer: signer, want: e.hashes(t, src)}
}

// forceRestore runs restore --force of b into database target.
func (b *dbBackup) forceRestore(t *testing.T, e engine, target string, ids []age.Identity) (*restore.Report, error) {
	t.Helper()
	conn := e.source(t, target)
	return restore.Run(context.Background(), restore.Request{Job: "app", Destinations: b.dests, Identities: ids, Trust: signtest.Trust(b.signer)},
		func(info dumpinfo.Info) (snapshot.Loader, error) { return snapshot.NewLoader(info, conn, target, true) }, zaptest.NewLogger(t))
}

// flip inverts one bit of the byte at offset (from the end when negative)
// of the payload on destination i.
func (b *dbBackup) flip(t *testing.T, i, offset int) {
	t.Helper()
	p := get(t, b.dests[i].Store, b.m.Payload.Key)
	if offset < 0 {
		offset += len(p)
	}
	p[offset] ^= 1
	put(t, b.dests[i].Store, b.m.Payload.Key, p)
}

// TestForceRestoreKeepsTargetWhenEveryCopyFails: restore --force into an
// existing database with rows of its own, from a backup whose every copy
// is bad, fails and leaves the target's rows as they were (the old code
// dropped the target first); no staging database is left behind. A copy
// whose payload breaks mid-stream is caught only by staging (PostgreSQL,
// and SQLite's temporary file renamed over the target at the end);
// MariaDB, which cannot rename a database, checks the manifest and the
// payload's size, age header and identity before dropping, and keeps the
// documented window for damage inside the payload.
func TestForceRestoreKeepsTargetWhenEveryCopyFails(t *testing.T) {
	cases := []struct {
		name string
		// spoil damages every copy; it returns the identities to restore
		// with.
		spoil     func(t *testing.T, b *dbBackup) []age.Identity
		want      string // in the error
		stageOnly bool   // only a staging loader keeps the target
	}{
		{
			name: "manifests signed by another key",
			spoil: func(t *testing.T, b *dbBackup) []age.Identity {
				forged, err := b.m.Sign(signtest.NewSigner())
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range b.dests {
					put(t, d.Store, manifest.Key(b.m.Job, b.m.ID), forged)
				}
				return []age.Identity{b.id}
			},
			want: "signature",
		},
		{
			name: "payloads truncated",
			spoil: func(t *testing.T, b *dbBackup) []age.Identity {
				for _, d := range b.dests {
					p := get(t, d.Store, b.m.Payload.Key)
					put(t, d.Store, b.m.Payload.Key, p[:len(p)-100])
				}
				return []age.Identity{b.id}
			},
			want: "the manifest says", // the catalog finds the copies short before any is tried
		},
		{
			name: "age header edited",
			spoil: func(t *testing.T, b *dbBackup) []age.Identity {
				for i := range b.dests {
					b.flip(t, i, 30) // inside the recipient stanza
				}
				return []age.Identity{b.id}
			},
			want: "header",
		},
		{
			name: "identity for other keys",
			spoil: func(t *testing.T, b *dbBackup) []age.Identity {
				other, err := age.GenerateX25519Identity()
				if err != nil {
					t.Fatal(err)
				}
				return []age.Identity{other}
			},
			want: "identit",
		},
		{
			name: "payloads damaged mid-stream",
			spoil: func(t *testing.T, b *dbBackup) []age.Identity {
				for i := range b.dests {
					b.flip(t, i, -200)
				}
				return []age.Identity{b.id}
			},
			want:      "could not be restored from any destination",
			stageOnly: true,
		},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, tc := range cases {
				if tc.stageOnly && !e.staged {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					b := newDBBackup(t, e, 2_000)
					ids := tc.spoil(t, b)
					target := e.create(t)
					tsrc := e.source(t, target)
					e.seed(t, tsrc, 300)
					before := e.hashes(t, tsrc)

					_, err := b.forceRestore(t, e, target, ids)
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("restore --force: %v, want a failure naming %q", err, tc.want)
					}
					if got := e.databases(t, target); len(got) != 1 || got[0] != target {
						t.Errorf("databases named %s*: %v, want only the target (no staging database left)", target, got)
					}
					if got := e.hashes(t, tsrc); !maps.Equal(got, before) {
						t.Errorf("target %s after a failed restore --force: %d tables %v, want its own %d tables unchanged", target, len(got), got, len(before))
					}
				})
			}
		})
	}
}

// TestForceRestoreReplacesTarget: restore --force into a database with
// rows of its own leaves exactly the backup's rows there and no staging
// or old database beside it; with the first copy damaged mid-stream the
// loader is reset and the second copy serves.
func TestForceRestoreReplacesTarget(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, firstBad := range []bool{false, true} {
				b := newDBBackup(t, e, 2_000)
				if firstBad {
					b.flip(t, 0, -200)
				}
				target := e.create(t)
				tsrc := e.source(t, target)
				e.seed(t, tsrc, 300)
				// A session left open on the target must not block the swap.
				if e.staged {
					_ = dbtest.PostgresConnect(t, tsrc)
				}
				rep, err := b.forceRestore(t, e, target, []age.Identity{b.id})
				if err != nil {
					t.Fatalf("restore --force (first copy bad: %v): %v", firstBad, err)
				}
				if firstBad && rep.ServedBy != b.dests[1].Name {
					t.Errorf("served by %s, want %s", rep.ServedBy, b.dests[1].Name)
				}
				if got := e.hashes(t, tsrc); !maps.Equal(got, b.want) {
					t.Errorf("target after restore --force (first copy bad: %v) does not hold the backup's rows", firstBad)
				}
				if got := e.databases(t, target); len(got) != 1 || got[0] != target {
					t.Errorf("databases named %s*: %v, want only the target", target, got)
				}
			}
		})
	}
}
