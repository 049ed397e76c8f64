package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// sqliteLoader restores an SQLite snapshot to a file. The target is only
// replaced, atomically, once the whole snapshot is written, synced and has
// passed PRAGMA integrity_check.
type sqliteLoader struct {
	path  string
	force bool
}

func newSQLiteLoader(info dumpinfo.Info, target string, force bool) (*sqliteLoader, error) {
	if info.Format != "sqlite" {
		return nil, fmt.Errorf("sqlite loader: unknown dump format %q", info.Format)
	}
	if target == "" {
		return nil, fmt.Errorf("sqlite loader: no target file")
	}
	return &sqliteLoader{path: target, force: force}, nil
}

// String names the target file.
func (l *sqliteLoader) String() string { return "sqlite file " + l.path }

// Prepare refuses an existing non-empty file unless forced, and checks that
// the target's directory exists.
func (l *sqliteLoader) Prepare(ctx context.Context) error {
	if fi, err := os.Stat(filepath.Dir(l.path)); err != nil {
		return fmt.Errorf("%s: %w", l, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", l, filepath.Dir(l.path))
	}
	fi, err := os.Stat(l.path)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return fmt.Errorf("%s: %w", l, err)
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", l)
	case fi.Size() > 0 && !l.force:
		return fmt.Errorf("%s exists and is not empty: use --force to replace it", l)
	}
	return nil
}

// Load writes r to a temporary file beside the target, syncs and checks
// it, and renames it over the target. On any failure the temporary file is
// removed and the target is left as it was.
func (l *sqliteLoader) Load(ctx context.Context, r io.Reader) (err error) {
	dir := filepath.Dir(l.path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(l.path)+".coffer-*")
	if err != nil {
		return fmt.Errorf("%s: %w", l, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			_ = removeSQLiteFiles(tmp)
		}
	}()
	if err := copyContext(ctx, f, r); err != nil {
		return fmt.Errorf("load %s: %w", l, err)
	}
	progress.FromContext(ctx).Start(progress.Phase{Name: "sync and check the SQLite file (integrity_check)"})
	if err := f.Sync(); err != nil {
		return fmt.Errorf("load %s: %w", l, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("load %s: %w", l, err)
	}
	if err := checkSQLite(ctx, tmp); err != nil {
		return fmt.Errorf("load %s: %w", l, err)
	}
	os.Remove(tmp + "-wal") // left by the check, empty after it
	os.Remove(tmp + "-shm")
	// Journal files of a replaced database would be applied to the new one.
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if err := os.Remove(l.path + suffix); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("load %s: %w", l, err)
		}
	}
	if err := os.Rename(tmp, l.path); err != nil {
		return fmt.Errorf("load %s: %w", l, err)
	}
	return syncDir(dir)
}

// Reset does nothing: a failed Load never touches the target.
func (l *sqliteLoader) Reset(ctx context.Context) error { return nil }

// checkSQLite opens path as SQLite and runs PRAGMA integrity_check.
func checkSQLite(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("integrity check: %w", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], "...")
		}
		return fmt.Errorf("integrity check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// removeSQLiteFiles removes a database file and its journals.
func removeSQLiteFiles(path string) error {
	var errs []error
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncDir fsyncs a directory so that a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
