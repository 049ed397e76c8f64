package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// sqliteTablesQuery lists the tables of an SQLite database: every table
// but SQLite's own (sqlite_sequence, sqlite_stat1, ...) and virtual tables,
// whose rows live in shadow tables that are counted themselves (and whose
// module may not be linked in here).
const sqliteTablesQuery = `SELECT name FROM sqlite_master
	WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'
	  AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%'
	ORDER BY name`

// sqliteCountTables counts the rows of every table of the SQLite database
// opened by dsn, in one read transaction. The backup side runs it on the
// snapshot copy it streams, Scratch.Tables on the scratch file.
func sqliteCountTables(ctx context.Context, dsn string) ([]dumpinfo.TableRows, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	names, err := scanNames(tx.QueryContext(ctx, sqliteTablesQuery))
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	counts := make([]dumpinfo.TableRows, 0, len(names))
	for _, n := range names {
		var rows int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+sqliteIdent(n)).Scan(&rows); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		counts = append(counts, dumpinfo.TableRows{Name: n, Rows: rows})
	}
	return counts, nil
}

// sqliteIdent quotes an SQLite identifier.
func sqliteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
