package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver (pure Go)

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// sqliteSource dumps an SQLite file, possibly in use, by VACUUM INTO a
// private temporary copy: a consistent snapshot, never a raw copy of the
// live file.
type sqliteSource struct{ path string }

func newSQLiteSource(src config.Source) (*sqliteSource, error) {
	if src.Path == "" {
		return nil, fmt.Errorf("sqlite source: path is empty")
	}
	return &sqliteSource{path: src.Path}, nil
}

// sqliteDSN is a modernc.org/sqlite data source name for path; readOnly
// also refuses to create a missing file.
func sqliteDSN(path string, readOnly bool) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	dsn := "file:" + esc + "?_pragma=busy_timeout(10000)"
	if readOnly {
		dsn += "&mode=ro"
	}
	return dsn
}

// sqliteQuote quotes an SQL string literal.
func sqliteQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// sqliteLibrary names the SQLite library linked in, e.g.
// "modernc.org/sqlite v1.61.1".
func sqliteLibrary() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "modernc.org/sqlite" {
				return d.Path + " " + d.Version
			}
		}
	}
	return "modernc.org/sqlite"
}

// Describe opens the file read-only and returns the SQLite version.
func (s *sqliteSource) Describe(ctx context.Context) (dumpinfo.Info, error) {
	info := dumpinfo.Info{Kind: "sqlite", Database: s.path, Format: "sqlite", ToolVersion: sqliteLibrary()}
	if _, err := os.Stat(s.path); err != nil {
		return info, fmt.Errorf("sqlite source: %w", err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(s.path, true))
	if err != nil {
		return info, fmt.Errorf("open %s: %w", s.path, err)
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&info.ServerVersion); err != nil {
		return info, fmt.Errorf("sqlite version of %s: %w", s.path, err)
	}
	return info, nil
}

// Dump writes a consistent copy of the database to w: VACUUM INTO a file in
// a private (0700) temporary directory, streamed to w and then removed.
// The rows of every table are counted in that copy while it streams.
func (s *sqliteSource) Dump(ctx context.Context, w io.Writer) (*dumpinfo.Tables, error) {
	if _, err := os.Stat(s.path); err != nil {
		return nil, fmt.Errorf("sqlite source: %w", err)
	}
	dir, err := os.MkdirTemp("", "coffer-sqlite-*") // 0700
	if err != nil {
		return nil, fmt.Errorf("sqlite dump: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "snapshot.sqlite")

	db, err := sql.Open("sqlite", sqliteDSN(s.path, true))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", s.path, err)
	}
	_, err = db.ExecContext(ctx, "VACUUM INTO "+sqliteQuote(tmp))
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite snapshot of %s: %w", s.path, err)
	}

	f, err := os.Open(tmp)
	if err != nil {
		return nil, fmt.Errorf("sqlite dump: %w", err)
	}
	defer f.Close()
	counts, copyErr, countErr := countWhile(ctx,
		func(ctx context.Context) ([]dumpinfo.TableRows, error) {
			// immutable: the reader writes nothing (no -wal, -shm or
			// lock) beside the copy being streamed.
			return sqliteCountTables(ctx, sqliteDSN(tmp, true)+"&immutable=1")
		},
		func() error { return copyContext(ctx, w, f) })
	if copyErr != nil {
		return nil, fmt.Errorf("sqlite dump of %s: %w", s.path, copyErr)
	}
	if countErr != nil {
		return nil, fmt.Errorf("count rows in the snapshot of %s: %w", s.path, countErr)
	}
	return newTables(MethodSnapshotCopy, counts), nil
}

// copyContext copies r to w, stopping when ctx is done. Read and write
// errors are returned as they are.
func copyContext(ctx context.Context, w io.Writer, r io.Reader) error {
	buf := make([]byte, copyBuffer)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
