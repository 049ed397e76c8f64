package snapshot

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// pgLoader restores a pg_dump into a database: pg_restore for the custom
// format, psql for plain SQL.
type pgLoader struct {
	p      pgParams // p.database is the target
	format string
	force  bool
}

func newPostgresLoader(info Info, p pgParams, target string, force bool) (*pgLoader, error) {
	if info.Format != "pg-custom" && info.Format != "pg-plain" {
		return nil, fmt.Errorf("postgres loader: unknown dump format %q", info.Format)
	}
	if target == "" {
		return nil, fmt.Errorf("postgres loader: no target database")
	}
	tp, err := p.withTarget(target)
	if err != nil {
		return nil, err
	}
	return &pgLoader{p: tp, format: info.Format, force: force}, nil
}

// String names the target database and server.
func (l *pgLoader) String() string { return l.p.String() }

// admin connects to a maintenance database of the target's server.
func (l *pgLoader) admin(ctx context.Context) (*pgx.Conn, error) {
	conn, err := l.p.connect(ctx, "postgres")
	if err != nil {
		if c2, err2 := l.p.connect(ctx, "template1"); err2 == nil {
			return c2, nil
		}
		return nil, err
	}
	return conn, nil
}

// Prepare creates the target database if missing. An existing database with
// any user relation is refused unless forced; forced, it is dropped and
// created again.
func (l *pgLoader) Prepare(ctx context.Context) error {
	conn, err := l.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", l.p.database).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", l, err)
	}
	if !exists {
		return l.create(ctx, conn)
	}
	n, err := l.relations(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if !l.force {
		return fmt.Errorf("%s is not empty (%d relations): use --force to replace it", l, n)
	}
	return l.recreate(ctx, conn)
}

// relations counts tables, views, sequences and the like outside the system
// schemas of the target database.
func (l *pgLoader) relations(ctx context.Context) (int, error) {
	conn, err := l.p.connect(ctx, "")
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var n int
	err = conn.QueryRow(ctx, `
		SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
		  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("inspect %s: %w", l, err)
	}
	return n, nil
}

func (l *pgLoader) create(ctx context.Context, conn *pgx.Conn) error {
	q := "CREATE DATABASE " + pgx.Identifier{l.p.database}.Sanitize() + " TEMPLATE template0"
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("create %s: %w", l, err)
	}
	return nil
}

// recreate drops the target (disconnecting its sessions) and creates it.
func (l *pgLoader) recreate(ctx context.Context, conn *pgx.Conn) error {
	if err := pgDropDatabase(ctx, conn, l.p.database); err != nil {
		return fmt.Errorf("drop %s: %w", l, err)
	}
	return l.create(ctx, conn)
}

// pgDropDatabase drops database name if it exists, on the server of conn
// (a connection to another database), terminating its sessions first.
func pgDropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("server version: %w", err)
	}
	// Best effort: without the right to signal them, DROP says which
	// sessions are in the way.
	_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
	q := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	if version >= 130000 {
		q += " WITH (FORCE)" // sessions that connected since are ended too
	}
	_, err := conn.Exec(ctx, q)
	return err
}

// Reset drops and creates the target database again.
func (l *pgLoader) Reset(ctx context.Context) error {
	conn, err := l.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return l.recreate(ctx, conn)
}

// Load streams r into pg_restore (custom format) or psql (plain SQL); both
// stop at the first error.
func (l *pgLoader) Load(ctx context.Context, r io.Reader) error {
	dbname := "--dbname=dbname=" + conninfoQuote(l.p.database)
	var c child
	var err error
	if l.format == "pg-custom" {
		c.name = "pg_restore"
		c.path, err = lookTool("pg_restore")
		c.args = []string{"--no-owner", "--exit-on-error", "--no-password", dbname}
	} else {
		c.name = "psql"
		c.path, err = lookTool("psql")
		c.args = []string{"--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", dbname, "--file=-"}
	}
	if err != nil {
		return err
	}
	c.env, c.secrets = l.p.env(), []string{l.p.password}
	return c.load(ctx, r)
}
