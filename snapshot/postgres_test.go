package snapshot_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

func TestPostgresRoundTrip(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	want := dbtest.PostgresTableHashes(t, src)

	for _, format := range []string{"custom", "plain"} {
		t.Run(format, func(t *testing.T) {
			s := src
			s.Format = format
			info, data := dump(t, s)
			if info.Format != "pg-"+format || info.Kind != "postgres" || info.Database != src.Database {
				t.Fatalf("Info = %+v", info)
			}
			// A fresh name: Prepare creates it.
			target := src.Database + "_r"
			t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
			load(t, info, src, target, data)
			sameHashes(t, want, dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)))
		})
	}
}

func TestPostgresLoaderRefusesNonEmpty(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 10)
	info := dumpinfo.Info{Kind: "postgres", Format: "pg-custom"}
	ctx := context.Background()

	l, err := snapshot.NewLoader(info, src, src.Database, false)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Prepare(ctx)
	if err == nil || !strings.Contains(err.Error(), "--force") || !strings.Contains(err.Error(), src.Database) {
		t.Fatalf("Prepare on a non-empty database: %v, want an error naming it and --force", err)
	}

	l, err = snapshot.NewLoader(info, src, src.Database, true)
	if err != nil {
		t.Fatal(err)
	}
	before := dbtest.PostgresTableHashes(t, src)
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("forced Prepare: %v", err)
	}
	// Forced, the target is kept until Commit swaps in the staging
	// database loaded into (here: loaded with nothing).
	if h := dbtest.PostgresTableHashes(t, src); !maps.Equal(h, before) {
		t.Fatalf("forced Prepare changed the target: %v", h)
	}
	if err := l.(snapshot.Staged).Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if h := dbtest.PostgresTableHashes(t, src); len(h) != 0 {
		t.Fatalf("forced Prepare and Commit left %v", h)
	}
	// Empty now: an unforced Prepare accepts it.
	l, _ = snapshot.NewLoader(info, src, src.Database, false)
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("Prepare on an empty database: %v", err)
	}
}

func TestPostgresLoadReadErrorFails(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	want := dbtest.PostgresTableHashes(t, src)
	for _, format := range []string{"custom", "plain"} {
		t.Run(format, func(t *testing.T) {
			s := src
			s.Format = format
			info, data := dump(t, s)
			target := src.Database + "_f"
			t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
			l, err := snapshot.NewLoader(info, src, target, false)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := l.Prepare(ctx); err != nil {
				t.Fatal(err)
			}
			err = l.Load(ctx, failAfter(data, len(data)*2/3))
			if !errors.Is(err, errBoom) {
				t.Fatalf("Load from a failing reader: %v, want errBoom", err)
			}
			noChild(t, "pg_restore")
			noChild(t, "psql")
			got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target))
			if got["public.orders"] == want["public.orders"] && got["public.customers"] == want["public.customers"] {
				t.Fatal("a failed load left the target looking complete")
			}
			if err := l.Reset(ctx); err != nil {
				t.Fatalf("Reset: %v", err)
			}
			if h := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); len(h) != 0 {
				t.Fatalf("Reset left %v", h)
			}
		})
	}
}

// A pg_dump whose server connection is terminated halfway fails the dump,
// even though bytes were already written.
func TestPostgresDumpBackendTerminated(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 200000)
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	pr, done := blockedDump(t, s)
	if _, err := io.ReadFull(pr, make([]byte, 4096)); err != nil {
		t.Fatalf("first bytes of the dump: %v", err)
	}

	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	ctx := context.Background()
	var killed int
	for deadline := time.Now().Add(10 * time.Second); killed == 0 && time.Now().Before(deadline); {
		err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'pg_dump' AND datname = $1`, src.Database).Scan(&killed)
		if err != nil {
			t.Fatal(err)
		}
	}
	if killed == 0 {
		t.Fatal("no pg_dump session found to terminate")
	}
	n, _ := io.Copy(io.Discard, pr)
	err = <-done
	if err == nil {
		t.Fatalf("Dump succeeded after its backend was terminated (%d more bytes)", n)
	}
	t.Logf("Dump: %v", err)
}

// The password reaches pg_dump through PGPASSWORD, never argv.
func TestPostgresPasswordNotInArgv(t *testing.T) {
	db := dbtest.CreatePostgresDB(t)
	src := dbtest.PostgresSource(t, db)
	dbtest.SeedPostgres(t, src, 20000)

	const password = "pg-Secret'pw\\42"
	role := db + "_role"
	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	ctx := context.Background()
	for _, q := range []string{
		`CREATE ROLE ` + role + ` LOGIN PASSWORD 'pg-Secret''pw\42'`,
		`GRANT pg_read_all_data TO ` + role,
	} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		dbtest.DropPostgresDB(t, db) // before the role it granted to
		admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+role)
	})

	src.User, src.Password = role, config.NewSecret(password)
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	pr, done := blockedDump(t, s)
	c := findChild(t, "pg_dump", "PGDATABASE="+db)
	for _, a := range c.cmdline {
		if strings.Contains(a, password) {
			t.Errorf("pg_dump argv holds the password: %q", c.cmdline)
		}
	}
	if !slices.Contains(c.environ, "PGPASSWORD="+password) {
		t.Errorf("pg_dump environment lacks PGPASSWORD")
	}
	if !slices.Contains(c.environ, "PGUSER="+role) {
		t.Errorf("pg_dump environment lacks PGUSER")
	}
	io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatalf("Dump as %s: %v", role, err)
	}
}

func TestPostgresBadFormat(t *testing.T) {
	_, err := snapshot.NewSource(config.Source{Type: "postgres", Database: "x", Format: "tar"})
	if err == nil {
		t.Fatal("NewSource accepted format tar")
	}
}
