package snapshot

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgTablesQuery lists the tables whose rows a PostgreSQL dump holds, as
// pg_dump does: ordinary tables and leaf partitions (relkind 'r') outside
// the system schemas, except members of an extension (CREATE EXTENSION
// makes those, with contents of its own). Partitioned parents (relkind
// 'p') hold no rows of their own: counting them too would count every
// partitioned row twice. Views, materialized views (refreshed, not copied,
// on restore), foreign tables and sequences are not tables here.
const pgTablesQuery = `
	SELECT n.nspname, c.relname
	FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relkind = 'r'
	  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
	  AND n.nspname NOT LIKE 'pg\_toast%'
	  AND n.nspname NOT LIKE 'pg\_temp%'
	  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
	    WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
	ORDER BY 1, 2`

// pgCountTables counts the rows of every table pgTablesQuery lists, in tx,
// each table's own rows only (FROM ONLY, as pg_dump copies them, not those
// of tables inheriting from it):
// the counts describe tx's snapshot. The backup side runs it in the
// transaction whose snapshot pg_dump imports, Scratch.Tables in a read-only
// transaction of the scratch database, so both count the same tables the
// same way.
func pgCountTables(ctx context.Context, tx pgx.Tx) ([]dumpinfo.TableRows, error) {
	names, err := pgListTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	counts := make([]dumpinfo.TableRows, 0, len(names))
	for _, id := range names {
		n, err := pgCountTable(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		counts = append(counts, dumpinfo.TableRows{Name: id[0] + "." + id[1], Rows: n})
	}
	return counts, nil
}

// pgCountSetup readies tx for counting rows.
func pgCountSetup(ctx context.Context, tx pgx.Tx) error {
	for _, q := range []string{
		// Like pg_dump: a table under row-level security fails rather
		// than counting only the rows a policy shows.
		"SET LOCAL row_security = off",
		// A server default must not cut a long count (pg_dump does the same).
		"SET LOCAL statement_timeout = 0",
	} {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// pgListTables readies tx for counting (pgCountSetup) and lists the
// tables pgTablesQuery finds, as schema and name.
func pgListTables(ctx context.Context, tx pgx.Tx) ([]pgx.Identifier, error) {
	if err := pgCountSetup(ctx, tx); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, pgTablesQuery)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgx.Identifier, error) {
		var schema, table string
		err := r.Scan(&schema, &table)
		return pgx.Identifier{schema, table}, err
	})
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

// pgCountTable counts the rows of table id (schema, name) in tx.
func pgCountTable(ctx context.Context, tx pgx.Tx, id pgx.Identifier) (int64, error) {
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM ONLY "+id.Sanitize(), pgx.QueryExecModeExec).Scan(&n); err != nil {
		return 0, fmt.Errorf("count rows of %s.%s: %w", id[0], id[1], err)
	}
	return n, nil
}
