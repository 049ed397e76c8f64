package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
)

// The dump of a live database is a consistent snapshot: a write
// transaction open during the dump is not in it.
func TestSQLiteRoundTripLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	dbtest.SeedSQLite(t, path, 20000)
	want := dbtest.SQLiteTableHashes(t, path)

	db := dbtest.SQLiteOpen(t, path)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM orders WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}

	info, data := dump(t, config.Source{Type: "sqlite", Path: path})
	if info.Format != "sqlite" || info.Kind != "sqlite" || info.Database != path {
		t.Fatalf("Info = %+v", info)
	}
	target := filepath.Join(dir, "restored.db")
	load(t, info, config.Source{}, target, data)
	sameHashes(t, want, dbtest.SQLiteTableHashes(t, target))
}

func TestSQLiteLoaderRefusesNonEmpty(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	dbtest.SeedSQLite(t, src, 100)
	info, data := dump(t, config.Source{Type: "sqlite", Path: src})
	target := filepath.Join(dir, "target.db")
	dbtest.SeedSQLite(t, target, 10)
	ctx := context.Background()

	l, err := snapshot.NewLoader(info, config.Source{}, target, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Prepare(ctx); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("Prepare on a non-empty file: %v, want an error saying --force", err)
	}
	l, _ = snapshot.NewLoader(info, config.Source{}, target, true)
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("forced Prepare: %v", err)
	}
	if err := l.Load(ctx, bytes.NewReader(data)); err != nil {
		t.Fatalf("forced Load: %v", err)
	}
	sameHashes(t, dbtest.SQLiteTableHashes(t, src), dbtest.SQLiteTableHashes(t, target))
}

// A failed load leaves no target file and no temporary file behind.
func TestSQLiteLoadFailures(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	dbtest.SeedSQLite(t, src, 5000)
	info, data := dump(t, config.Source{Type: "sqlite", Path: src})
	ctx := context.Background()

	out := t.TempDir()
	target := filepath.Join(out, "target.db")
	l, err := snapshot.NewLoader(info, config.Source{}, target, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx, failAfter(data, len(data)/2)); !errors.Is(err, errBoom) {
		t.Fatalf("Load from a failing reader: %v, want errBoom", err)
	}
	// A cut-off file that reads cleanly to its end fails the integrity check.
	if err := l.Load(ctx, bytes.NewReader(data[:len(data)/2])); err == nil {
		t.Fatal("Load of half a database succeeded")
	}
	if err := l.Load(ctx, strings.NewReader("not a database at all, just text")); err == nil {
		t.Fatal("Load of text succeeded")
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("failed loads left %v", entries)
	}
}

func TestSQLiteMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	s, err := snapshot.NewSource(config.Source{Type: "sqlite", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dump(context.Background(), &bytes.Buffer{}); err == nil {
		t.Fatal("Dump of a missing file succeeded")
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("Dump created the missing file")
	}
}
