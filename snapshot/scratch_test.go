package snapshot_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// scratchName returns a fresh scratch database name.
func scratchName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "coffer_scratch_" + hex.EncodeToString(b)
}

// engine is what the scratch drill test needs of one database engine.
type engine struct {
	source  config.Source // seeded, to dump
	server  config.Source // for NewScratch
	name    string        // the scratch name (a path for sqlite)
	query   string        // counts the rows of orders (5000)
	table   string        // a table name as Tables spells it
	change  string        // deletes 10 rows of table
	exec    func(t *testing.T, target, statement string)
	cleanup func(t testing.TB, target string)
	// empty creates an empty database (or file) called target.
	empty func(t *testing.T, target string)
}

func postgresEngine(t *testing.T) engine {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 5000)
	seedPostgresExtras(t, src)
	return engine{
		source: src,
		server: dbtest.PostgresSource(t, "ignored"),
		name:   scratchName(),
		query:  "SELECT count(*) FROM orders",
		table:  "public.orders",
		change: "DELETE FROM orders WHERE id <= 10",
		exec: func(t *testing.T, target, q string) {
			if _, err := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, target)).Exec(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		cleanup: dbtest.DropPostgresDB,
		empty: func(t *testing.T, target string) {
			if _, err := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres")).Exec(context.Background(), "CREATE DATABASE "+target); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func mariaDBEngine(t *testing.T) engine {
	src := dbtest.MariaDBSource(t, dbtest.CreateMariaDB(t))
	dbtest.SeedMariaDB(t, src, 5000)
	seedMariaDBExtras(t, src)
	return engine{
		source: src,
		server: dbtest.MariaDBSource(t, "ignored"),
		name:   scratchName(),
		query:  "SELECT COUNT(*) FROM orders",
		// orders has a trigger that writes to audit on delete.
		table:  "parts",
		change: "DELETE FROM parts WHERE id <= 10",
		exec: func(t *testing.T, target, q string) {
			if _, err := dbtest.MariaDBOpen(t, dbtest.MariaDBSource(t, target)).Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		cleanup: dbtest.DropMariaDB,
		empty: func(t *testing.T, target string) {
			if _, err := dbtest.MariaDBOpen(t, dbtest.MariaDBSource(t, "")).Exec("CREATE DATABASE " + target); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func sqliteEngine(t *testing.T) engine {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	dbtest.SeedSQLite(t, path, 5000)
	return engine{
		source: config.Source{Type: "sqlite", Path: path},
		name:   filepath.Join(dir, "coffer_scratch.db"),
		query:  "SELECT count(*) FROM orders",
		table:  "orders",
		change: "DELETE FROM orders WHERE id <= 10",
		exec: func(t *testing.T, target, q string) {
			if _, err := dbtest.SQLiteOpen(t, target).Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		},
		cleanup: func(t testing.TB, target string) {},
		empty: func(t *testing.T, target string) {
			if err := os.WriteFile(target, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

var engines = []struct {
	name string
	new  func(t *testing.T) engine
	// jobs asks the scratch for a parallel restore (SetParallel), which
	// also counts the tables on that many connections.
	jobs int
}{
	{"postgres", postgresEngine, 0},
	{"postgres-jobs-3", postgresEngine, 3},
	{"mysql", mariaDBEngine, 0},
	{"sqlite", sqliteEngine, 0},
}

// A drill's life: dump, load into a fresh scratch database, the scratch's
// counts equal the dump's, queries run, a changed table shows, drop.
func TestScratchDrill(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			en := e.new(t)
			t.Cleanup(func() { en.cleanup(t, en.name) })
			info, data, dumped := dumpCounted(t, en.source)
			ctx := context.Background()

			s, err := snapshot.NewScratch(info, en.server, en.name)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.String(), en.name) {
				t.Errorf("String() = %q does not name %s", s, en.name)
			}
			if ok, err := s.Exists(ctx); err != nil || ok {
				t.Fatalf("Exists before Prepare = %v, %v", ok, err)
			}
			l := s.Loader()
			if e.jobs > 0 {
				l.(snapshot.ParallelLoader).SetParallel(snapshot.Parallel{Jobs: e.jobs, SpoolDir: t.TempDir()}, int64(len(data)), 0)
			}
			if err := l.Prepare(ctx); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if ok, err := s.Exists(ctx); err != nil || !ok {
				t.Fatalf("Exists after Prepare = %v, %v", ok, err)
			}
			if err := l.Load(ctx, bytes.NewReader(data)); err != nil {
				t.Fatalf("Load: %v", err)
			}
			if rep := l.(snapshot.Reporter).LoadReport(); e.jobs > 0 && rep.Jobs != e.jobs {
				t.Fatalf("load report %+v, want %d workers", rep, e.jobs)
			}

			got, err := s.Tables(ctx)
			if err != nil {
				t.Fatalf("Tables: %v", err)
			}
			if !got.Exact || got.Method != snapshot.MethodScratch {
				t.Errorf("scratch Tables exact=%v method=%q", got.Exact, got.Method)
			}
			if len(dumped.Counts) < 3 || !slices.Equal(dumped.Counts, got.Counts) {
				t.Fatalf("scratch counts differ from the dump's:\ndump    %+v\nscratch %+v", dumped.Counts, got.Counts)
			}

			if v, err := s.Query(ctx, en.query); err != nil || v != "5000" {
				t.Errorf("Query(%q) = %q, %v; want 5000", en.query, v, err)
			}
			if v, err := s.Query(ctx, "SELECT NULL, 1"); err != nil || v != "NULL" {
				t.Errorf("Query(NULL) = %q, %v; want NULL", v, err)
			}
			if v, err := s.Query(ctx, "SELECT 1 WHERE 1 = 0"); err == nil {
				t.Errorf("Query with no rows = %q, want an error", v)
			}
			for _, q := range []string{"DELETE FROM orders RETURNING id", "DROP TABLE orders", "CREATE TABLE sneaky (x int)", "SELECT 1; DELETE FROM orders"} {
				if _, err := s.Query(ctx, q); err == nil {
					t.Errorf("Query(%q) succeeded, want it refused as a write", q)
				}
			}
			if v, err := s.Query(ctx, en.query); err != nil || v != "5000" {
				t.Errorf("after refused writes, Query(%q) = %q, %v; want 5000", en.query, v, err)
			}
			if again, err := s.Tables(ctx); err != nil || !slices.Equal(again.Counts, dumped.Counts) {
				t.Fatalf("refused writes changed the scratch: %+v, %v", again, err)
			}

			// A table changed after the dump no longer matches.
			en.exec(t, en.name, en.change)
			changed, err := s.Tables(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(changed.Counts, dumped.Counts) {
				t.Fatal("deleting 10 rows left the counts equal")
			}
			for i, c := range changed.Counts {
				want := dumped.Counts[i]
				if c.Name == en.table {
					want.Rows -= 10
				}
				if c != want {
					t.Errorf("after the delete: %+v, want %+v", c, want)
				}
			}

			if err := s.Drop(ctx); err != nil {
				t.Fatalf("Drop: %v", err)
			}
			if ok, err := s.Exists(ctx); err != nil || ok {
				t.Fatalf("Exists after Drop = %v, %v", ok, err)
			}
			if err := s.Drop(ctx); err != nil {
				t.Fatalf("Drop of a dropped scratch: %v", err)
			}
			if _, err := s.Tables(ctx); err == nil {
				t.Error("Tables of a dropped scratch succeeded")
			}
		})
	}
}

// Prepare refuses a database (or file) that already exists, empty or not,
// and leaves it as it was.
func TestScratchRefusesExisting(t *testing.T) {
	for _, e := range engines {
		if e.jobs > 0 {
			continue // Prepare does not depend on the workers
		}
		t.Run(e.name, func(t *testing.T) {
			en := e.new(t)
			info, _, dumped := dumpCounted(t, en.source)
			ctx := context.Background()

			// An empty one.
			t.Cleanup(func() { en.cleanup(t, en.name) })
			en.empty(t, en.name)
			s, err := snapshot.NewScratch(info, en.server, en.name)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Loader().Prepare(ctx)
			if err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("Prepare on an existing empty database: %v, want an error saying it exists", err)
			}
			if ok, err := s.Exists(ctx); err != nil || !ok {
				t.Fatalf("the existing database is gone after a refused Prepare (%v, %v)", ok, err)
			}

			// The source itself, with its data.
			target := en.source.Database
			if e.name == "sqlite" {
				target = en.source.Path
			}
			s, err = snapshot.NewScratch(info, en.server, target)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Loader().Prepare(ctx); err == nil || !strings.Contains(err.Error(), "already exists") {
				t.Fatalf("Prepare on the source database: %v, want an error saying it exists", err)
			}
			after, err := s.Tables(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(after.Counts, dumped.Counts) {
				t.Fatalf("a refused Prepare changed the database: %+v, was %+v", after.Counts, dumped.Counts)
			}
		})
	}
}

func TestNewScratchRefuses(t *testing.T) {
	pg := dumpinfo.Info{Kind: "postgres", Format: "pg-custom"}
	for _, name := range []string{"", "Upper", "with-dash", "semi;colon", "a b", strings.Repeat("a", 64), "../x"} {
		if _, err := snapshot.NewScratch(pg, config.Source{}, name); err == nil {
			t.Errorf("NewScratch accepted the name %q", name)
		}
		if _, err := snapshot.NewScratch(dumpinfo.Info{Kind: "mysql", Format: "sql"}, config.Source{}, name); err == nil {
			t.Errorf("NewScratch (mysql) accepted the name %q", name)
		}
	}
	if _, err := snapshot.NewScratch(pg, config.Source{}, strings.Repeat("a", 63)); err != nil {
		t.Errorf("NewScratch refused a 63-character name: %v", err)
	}
	if _, err := snapshot.NewScratch(dumpinfo.Info{Kind: "exec", Format: "dump"}, config.Source{}, "x"); err == nil || !strings.Contains(err.Error(), "exec") {
		t.Errorf("NewScratch for an exec dump: %v, want an error naming exec", err)
	}
	if _, err := snapshot.NewScratch(dumpinfo.Info{Kind: "postgres", Format: "sql"}, config.Source{}, "x"); err == nil {
		t.Error("NewScratch accepted a postgres dump in format sql")
	}

	// No password in String or in a connection error.
	const password = "hunter2-Scratch-pw"
	for _, info := range []dumpinfo.Info{pg, {Kind: "mysql", Format: "sql"}} {
		s, err := snapshot.NewScratch(info, config.Source{Host: "127.0.0.1", Port: 1, User: "u", Password: config.NewSecret(password)}, "coffer_x")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.String(), password) {
			t.Errorf("String() = %q holds the password", s)
		}
		_, err = s.Exists(context.Background())
		if err == nil {
			t.Fatalf("%s: Exists on a closed port succeeded", s)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("error holds the password: %v", err)
		}
	}
}
