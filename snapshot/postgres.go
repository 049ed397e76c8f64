package snapshot

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgParams are the connection parameters of a PostgreSQL server. Empty
// fields fall back to libpq's defaults (and PG* environment variables).
type pgParams struct {
	conn
	sslmode string
}

func pgParamsFrom(src config.Source) pgParams {
	return pgParams{conn: connFrom(src)}
}

// withTarget returns p aimed at target: a database name, or a postgres:// URL
// whose parts replace those of p.
func (p pgParams) withTarget(target string) (pgParams, error) {
	u, err := p.retarget(target, "postgres", "postgresql")
	if err != nil || u == nil {
		return p, err
	}
	q := u.Query()
	if h := q.Get("host"); h != "" {
		p.host = h // e.g. a socket directory
	}
	if m := q.Get("sslmode"); m != "" {
		p.sslmode = m
	}
	return p, nil
}

// env is the libpq environment for a child process (PGPASSWORD included:
// passwords never go in argv).
func (p pgParams) env() []string {
	var env []string
	env = envVar(env, "PGHOST", p.host)
	if p.port != 0 {
		env = envVar(env, "PGPORT", strconv.Itoa(p.port))
	}
	env = envVar(env, "PGUSER", p.user)
	env = envVar(env, "PGPASSWORD", p.password)
	env = envVar(env, "PGDATABASE", p.database)
	env = envVar(env, "PGSSLMODE", p.sslmode)
	return env
}

// connect opens a pgx connection to database db (p.database when empty).
func (p pgParams) connect(ctx context.Context, db string) (*pgx.Conn, error) {
	if db == "" {
		db = p.database
	}
	var kv []string
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"="+conninfoQuote(v))
		}
	}
	add("host", p.host)
	if p.port != 0 {
		add("port", strconv.Itoa(p.port))
	}
	add("user", p.user)
	add("password", p.password)
	add("dbname", db)
	add("sslmode", p.sslmode)
	cfg, err := pgx.ParseConfig(strings.Join(kv, " "))
	if err != nil {
		return nil, fmt.Errorf("postgres connection settings: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres database %q: %w", db, err)
	}
	return conn, nil
}

// String names the server and database, without the password.
func (p pgParams) String() string { return p.describe("postgres") }

// conninfoQuote quotes a libpq keyword/value connection string value.
func conninfoQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// pgSource dumps a PostgreSQL database with pg_dump.
type pgSource struct {
	p      pgParams
	format string // pg-custom or pg-plain
}

func newPostgresSource(src config.Source) (*pgSource, error) {
	if src.Database == "" {
		return nil, fmt.Errorf("postgres source: database is empty")
	}
	s := &pgSource{p: pgParamsFrom(src)}
	switch src.Format {
	case "", "custom":
		s.format = "pg-custom"
	case "plain":
		s.format = "pg-plain"
	default:
		return nil, fmt.Errorf("postgres source: unknown format %q (want custom or plain)", src.Format)
	}
	return s, nil
}

func (s *pgSource) tool(args ...string) (child, error) {
	path, err := lookTool("pg_dump")
	if err != nil {
		return child{}, err
	}
	return child{name: "pg_dump", path: path, args: args, env: s.p.env(), secrets: []string{s.p.password}}, nil
}

// Describe asks the server and pg_dump for their versions.
func (s *pgSource) Describe(ctx context.Context) (dumpinfo.Info, error) {
	info := dumpinfo.Info{Kind: "postgres", Database: s.p.database, Format: s.format}
	conn, err := s.p.connect(ctx, "")
	if err != nil {
		return info, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&info.ServerVersion); err != nil {
		return info, fmt.Errorf("postgres server version: %w", err)
	}
	c, err := s.tool("--version")
	if err != nil {
		return info, err
	}
	if info.ToolVersion, err = c.output(ctx); err != nil {
		return info, err
	}
	return info, nil
}

// Dump runs pg_dump and streams its output to w. pg_dump reads the
// snapshot exported by a repeatable-read, read-only transaction of our own,
// which ends only after pg_dump has exited.
//
// The row counts come from the dump itself: a custom-format archive is
// parsed as it streams past (newPGArchiveCounter), so the database is read
// once. When that is not possible (the plain format, or an archive format
// the parser does not know), the rows are counted with count(*) in the
// exported snapshot instead: in parallel with a plain dump, after a custom
// one.
func (s *pgSource) Dump(ctx context.Context, w io.Writer) (*dumpinfo.Tables, error) {
	args := []string{"--no-password"}
	if s.format == "pg-custom" {
		args = append(args, "--format=custom", "--compress=0")
	} else {
		args = append(args, "--format=plain")
	}
	c, err := s.tool(args...)
	if err != nil {
		return nil, err
	}
	conn, err := s.p.connect(ctx, "")
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin snapshot transaction on %s: %w", s.p, err)
	}
	// pg_dump has exited when Dump returns: the exported snapshot may go
	// then. The transaction only read, so how it ends changes nothing.
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// It idles while pg_dump runs and must live on for a count(*) after.
	if _, err := tx.Exec(ctx, "SET LOCAL idle_in_transaction_session_timeout = 0"); err != nil {
		return nil, fmt.Errorf("snapshot transaction on %s: %w", s.p, err)
	}
	var snapshotID string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshotID); err != nil {
		return nil, fmt.Errorf("export snapshot of %s: %w", s.p, err)
	}
	c.args = append(c.args, "--snapshot="+snapshotID)
	count := func(ctx context.Context) ([]dumpinfo.TableRows, error) { return pgCountTables(ctx, tx) }

	if s.format == "pg-custom" {
		counter := newPGArchiveCounter(w)
		dumpErr := c.dump(ctx, counter)
		counts, parseErr := counter.finish()
		if dumpErr != nil {
			return nil, dumpErr
		}
		if parseErr == nil {
			t := newTables(MethodDumpStream, counts)
			t.Head = counter.p.head
			return t, nil
		}
		counts, err := count(ctx)
		if err != nil {
			return nil, fmt.Errorf("count rows in the snapshot of %s (the archive could not be read: %v): %w", s.p, parseErr, err)
		}
		return newTables(MethodExportedSnapshot, counts), nil
	}
	counts, dumpErr, countErr := countWhile(ctx, count, func() error { return c.dump(ctx, w) })
	if dumpErr != nil {
		return nil, dumpErr
	}
	if countErr != nil {
		return nil, fmt.Errorf("count rows in the snapshot of %s: %w", s.p, countErr)
	}
	return newTables(MethodExportedSnapshot, counts), nil
}

// redactURLError drops the URL (which may hold a password) from a parse error.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
