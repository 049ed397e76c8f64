package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// sqliteScratch is a scratch SQLite file.
type sqliteScratch struct {
	l *sqliteLoader // l.path is the scratch file
}

func newSQLiteScratch(info dumpinfo.Info, path string) (*sqliteScratch, error) {
	l, err := newSQLiteLoader(info, path, false)
	if err != nil {
		return nil, err
	}
	return &sqliteScratch{l: l}, nil
}

// String names the scratch file.
func (s *sqliteScratch) String() string { return s.l.String() }

// Loader writes the snapshot to the scratch file; its Prepare claims the
// name with an empty file, which Load replaces.
func (s *sqliteScratch) Loader() Loader { return scratchLoader{Loader: s.l, create: s.create} }

// create makes an empty scratch file, failing if anything has the name.
func (s *sqliteScratch) create(ctx context.Context) error {
	f, err := os.OpenFile(s.l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return errScratchExists(s)
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", s, err)
	}
	return f.Close()
}

// Exists reports whether anything has the scratch file's name.
func (s *sqliteScratch) Exists(ctx context.Context) (bool, error) {
	_, err := os.Lstat(s.l.path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("look up %s: %w", s, err)
}

// Tables counts the rows of every table of the scratch file, opened
// read-only, with the code that counts them at backup time.
func (s *sqliteScratch) Tables(ctx context.Context) (*dumpinfo.Tables, error) {
	if _, err := os.Stat(s.l.path); err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", s, err)
	}
	counts, err := sqliteCountTables(ctx, sqliteDSN(s.l.path, true))
	if err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", s, err)
	}
	return newTables(MethodScratch, counts), nil
}

// Query runs a statement on the scratch file opened read-only and returns
// the first column of its first row as text.
func (s *sqliteScratch) Query(ctx context.Context, query string) (string, error) {
	out, err := s.query(ctx, query)
	if err != nil {
		return "", fmt.Errorf("query %s: %w", s, err)
	}
	return out, nil
}

func (s *sqliteScratch) query(ctx context.Context, query string) (string, error) {
	if _, err := os.Stat(s.l.path); err != nil {
		return "", err
	}
	db, err := sql.Open("sqlite", sqliteDSN(s.l.path, true))
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := firstRow(rows)
	if err != nil {
		return "", err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	return sqliteText(vals[0]), nil
}

// sqliteText formats a value the way SQLite's CAST(... AS TEXT) would, as
// near as the driver's types allow.
func sqliteText(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		return v
	case []byte:
		return string(v)
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// Drop removes the scratch file and its journals.
func (s *sqliteScratch) Drop(ctx context.Context) error {
	if err := removeSQLiteFiles(s.l.path); err != nil {
		return fmt.Errorf("drop %s: %w", s, err)
	}
	return nil
}
