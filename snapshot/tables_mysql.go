package snapshot

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// myTablesQuery lists the tables whose rows a MySQL or MariaDB dump holds:
// base tables and system-versioned tables (their current rows, which is
// what the dump tool writes), not views or sequences. These are the tables
// the dump tool writes a CREATE TABLE for, which is what sqlCounter counts
// at backup time.
const myTablesQuery = `SELECT TABLE_NAME FROM information_schema.TABLES
	WHERE TABLE_SCHEMA = ? AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED')`

// myCountTables counts the rows of every table of database in one
// consistent, read-only transaction on db. Scratch.Tables uses it; at
// backup time the rows are counted in the dump itself (sqlCounter), since
// the dump tool's transaction cannot be shared.
func myCountTables(ctx context.Context, db *sql.DB, database string) (_ []dumpinfo.TableRows, err error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"); err != nil {
		return nil, err
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err == nil && rerr != nil {
			err = rerr
		}
	}()
	var exists int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", database).Scan(&exists); err != nil {
		return nil, fmt.Errorf("look up database %q: %w", database, err)
	}
	if exists == 0 {
		return nil, fmt.Errorf("database %q does not exist", database)
	}
	names, err := scanNames(conn.QueryContext(ctx, myTablesQuery, database))
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	counts := make([]dumpinfo.TableRows, 0, len(names))
	for _, n := range names {
		var rows int64
		q := "SELECT COUNT(*) FROM " + myIdent(database) + "." + myIdent(n)
		if err := conn.QueryRowContext(ctx, q).Scan(&rows); err != nil {
			return nil, fmt.Errorf("count rows of %s: %w", n, err)
		}
		counts = append(counts, dumpinfo.TableRows{Name: n, Rows: rows})
	}
	return counts, nil
}
