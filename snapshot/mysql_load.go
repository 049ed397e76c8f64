package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// myLoader restores an SQL dump into a MySQL or MariaDB database with the
// mariadb (or mysql) client.
type myLoader struct {
	p     myParams // p.database is the target
	force bool
}

func newMySQLLoader(info dumpinfo.Info, p myParams, target string, force bool) (*myLoader, error) {
	if info.Format != "sql" {
		return nil, fmt.Errorf("mysql loader: unknown dump format %q", info.Format)
	}
	if target == "" {
		return nil, fmt.Errorf("mysql loader: no target database")
	}
	tp, err := p.withTarget(target)
	if err != nil {
		return nil, err
	}
	return &myLoader{p: tp, force: force}, nil
}

// String names the target database and server.
func (l *myLoader) String() string { return l.p.String() }

// myIdent quotes a MySQL identifier.
func myIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Prepare creates the target database if missing. An existing database with
// any table, view, routine or event is refused unless forced; forced, it is
// dropped and created again. MySQL and MariaDB cannot rename a database, so
// unlike PostgreSQL's loader this one does not stage: restore.Run calls
// Prepare only after the copy's manifest signature, payload size, age
// header and identity have been checked, but damage found later in the
// payload (or a failing client) leaves the target empty or partly loaded.
func (l *myLoader) Prepare(ctx context.Context) error {
	db, err := l.p.open("")
	if err != nil {
		return err
	}
	defer db.Close()
	var exists int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", l.p.database).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", l, err)
	}
	if exists == 0 {
		return l.create(ctx, db)
	}
	var n int
	err = db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) +
		(SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) +
		(SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?)`,
		l.p.database, l.p.database, l.p.database).Scan(&n)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", l, err)
	}
	if n == 0 {
		return nil
	}
	if !l.force {
		return fmt.Errorf("%s is not empty (%d tables, routines and events): use --force to replace it", l, n)
	}
	return l.recreate(ctx, db)
}

func (l *myLoader) create(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+myIdent(l.p.database)+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("create %s: %w", l, err)
	}
	return nil
}

func (l *myLoader) recreate(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+myIdent(l.p.database)); err != nil {
		return fmt.Errorf("drop %s: %w", l, err)
	}
	return l.create(ctx, db)
}

// Reset drops and creates the target database again.
func (l *myLoader) Reset(ctx context.Context) error {
	db, err := l.p.open("")
	if err != nil {
		return err
	}
	defer db.Close()
	return l.recreate(ctx, db)
}

// Load streams r into the client, which stops at the first error.
func (l *myLoader) Load(ctx context.Context, r io.Reader) error {
	args := []string{"--batch", "--default-character-set=utf8mb4", "--database=" + l.p.database}
	return l.p.run(myClientTools, args, func(c child) error { return c.load(ctx, r) })
}
