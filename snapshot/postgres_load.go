package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgLoader restores a pg_dump into a database: pg_restore for the custom
// format, psql for plain SQL.
//
// Forced over a non-empty database, it never drops the target before the
// restore succeeded: Prepare creates a staging database
// (<target>__coffer_restore_<random>), Load and Reset work on it, Commit
// renames the target away and the staging database into its place in one
// transaction and then drops the old one, and Abort drops the staging
// database, leaving the target as it was.
type pgLoader struct {
	p      pgParams // p.database is the target
	format string
	force  bool
	// stage is the staging database loaded into instead of the target,
	// set by a forced Prepare over a non-empty target.
	stage string
	// counts, when set (a drill's scratch database), counts each table
	// as soon as a restore (parallel or one stream) has loaded its data
	// (pgEarlyCounts).
	counts *pgEarlyCounts
	// created says Prepare created the target (it was missing); loaded
	// says a Load has begun on it. Abort goes back to before Prepare.
	created, loaded bool
	// par asks for a parallel restore of a dump of size plain bytes.
	par    Parallel
	size   int64
	tables int
	rep    LoadReport // of the last Load
}

// SetParallel asks the following Loads of a custom-format dump to spool it
// and restore it with p.Jobs pg_restore workers (see ParallelLoader).
func (l *pgLoader) SetParallel(p Parallel, size int64, tables int) {
	l.par, l.size, l.tables = p, size, tables
}

// LoadReport says how the last Load ran (see Reporter).
func (l *pgLoader) LoadReport() LoadReport { return l.rep }

func newPostgresLoader(info dumpinfo.Info, p pgParams, target string, force bool) (*pgLoader, error) {
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
// any user relation is refused unless forced; forced, a staging database
// is created to load into, and the target is left alone until Commit.
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
		if err := l.create(ctx, conn); err != nil {
			return err
		}
		l.created = true
		return nil
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
	stage, err := pgSideName(l.p.database, "restore")
	if err != nil {
		return err
	}
	if err := pgCreateDatabase(ctx, conn, stage); err != nil {
		return fmt.Errorf("create staging database %s for %s: %w", stage, l, err)
	}
	l.stage = stage
	return nil
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
	if err := pgCreateDatabase(ctx, conn, l.p.database); err != nil {
		return fmt.Errorf("create %s: %w", l, err)
	}
	return nil
}

// pgCreateDatabase creates an empty database name.
func pgCreateDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE template0")
	return err
}

// recreate drops the database loaded into (the staging database, else the
// target, disconnecting its sessions) and creates it again.
func (l *pgLoader) recreate(ctx context.Context, conn *pgx.Conn) error {
	if l.stage != "" {
		if err := pgDropDatabase(ctx, conn, l.stage); err != nil {
			return fmt.Errorf("drop staging database %s of %s: %w", l.stage, l, err)
		}
		if err := pgCreateDatabase(ctx, conn, l.stage); err != nil {
			return fmt.Errorf("create staging database %s of %s: %w", l.stage, l, err)
		}
		return nil
	}
	if err := pgDropDatabase(ctx, conn, l.p.database); err != nil {
		return fmt.Errorf("drop %s: %w", l, err)
	}
	return l.create(ctx, conn)
}

// pgMaxName is PostgreSQL's limit on a database name, in bytes.
const pgMaxName = 63

// pgSideName is a fresh name for a database beside target:
// <target>__coffer_<kind>_<8 random hex digits>, the target's name cut (at
// a character boundary) so the whole fits PostgreSQL's 63 bytes.
func pgSideName(target, kind string) (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	suffix := "__coffer_" + kind + "_" + hex.EncodeToString(b[:])
	prefix := target
	for len(prefix)+len(suffix) > pgMaxName {
		_, size := utf8.DecodeLastRuneInString(prefix)
		prefix = prefix[:len(prefix)-size]
	}
	return prefix + suffix, nil
}

// Commit puts what Load loaded in place. After a forced Prepare over a
// non-empty target it swaps names: it ends the other sessions on the
// target, renames the target to <target>__coffer_old_<random> and the
// staging database to the target's name in one transaction (so that a
// failure leaves the target as it was, under its name), then drops the
// old database. Without a staging database there is nothing to do.
func (l *pgLoader) Commit(ctx context.Context) error {
	if l.stage == "" {
		l.created, l.loaded = false, false // what was loaded is kept
		return nil
	}
	conn, err := l.admin(ctx)
	if err != nil {
		return fmt.Errorf("swap restored %s into place: %w", l, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	old, err := pgSideName(l.p.database, "old")
	if err != nil {
		return err
	}
	target, stage := pgx.Identifier{l.p.database}.Sanitize(), pgx.Identifier{l.stage}.Sanitize()
	swap := func() error {
		// Best effort, as in pgDropDatabase: RENAME names any session
		// still in the way (after waiting a few seconds for it to end).
		_, _ = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", l.p.database)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if _, err := tx.Exec(ctx, "ALTER DATABASE "+target+" RENAME TO "+pgx.Identifier{old}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "ALTER DATABASE "+stage+" RENAME TO "+target); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	// A client reconnecting between the terminate and the rename makes the
	// rename fail; try a few times.
	for attempt := 1; ; attempt++ {
		err = swap()
		if err == nil || attempt == 3 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("swap restored database %s in as %s (the target is unchanged): %w", l.stage, l, err)
	}
	l.stage, l.loaded = "", false // the target holds what was loaded: Abort leaves it
	if err := pgDropDatabase(ctx, conn, old); err != nil {
		return fmt.Errorf("%s is restored, but dropping its previous contents, renamed %s, failed (drop it by hand): %w", l, old, err)
	}
	return nil
}

// Abort puts the target back as Prepare found it, after a restore that
// gave up: it drops the staging database, if any (the target stays as it
// was); else it drops the target if Prepare created it, or makes it empty
// again if a Load began on it (Prepare found it empty). A failed restore
// thus leaves no partly loaded database to be taken for a good one.
func (l *pgLoader) Abort(ctx context.Context) error {
	if l.stage == "" && !l.created && !l.loaded {
		return nil
	}
	conn, err := l.admin(ctx)
	if err != nil {
		return fmt.Errorf("clean up after the failed restore into %s: %w", l, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	switch {
	case l.stage != "":
		if err := pgDropDatabase(ctx, conn, l.stage); err != nil {
			return errors.Join(fmt.Errorf("drop staging database %s of %s (drop it by hand)", l.stage, l), err)
		}
		l.stage = ""
	case l.created:
		if err := pgDropDatabase(ctx, conn, l.p.database); err != nil {
			return errors.Join(fmt.Errorf("drop %s, created for the failed restore (drop it by hand)", l), err)
		}
		l.created = false
	default:
		if err := l.recreate(ctx, conn); err != nil {
			return errors.Join(fmt.Errorf("empty %s after the failed restore (drop it by hand)", l), err)
		}
	}
	l.loaded = false
	return nil
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

// Reset drops and creates the database loaded into again: the staging
// database after a forced Prepare over a non-empty target, else the
// target (which Prepare found missing or empty).
func (l *pgLoader) Reset(ctx context.Context) error {
	conn, err := l.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return l.recreate(ctx, conn)
}

// Load streams r into pg_restore (custom format) or psql (plain SQL); both
// stop at the first error. A custom-format dump with a parallel restore
// asked for (SetParallel) is spooled to a file first and restored from it
// by pg_restore --jobs (see loadParallel), unless the spool does not fit.
func (l *pgLoader) Load(ctx context.Context, r io.Reader) error {
	l.rep = LoadReport{Jobs: 1}
	l.loaded = true
	l.counts.finish() // counts of an earlier Load are void
	if l.par.Jobs > 1 {
		if l.format != "pg-custom" {
			l.rep.Fallback = "a plain-format (SQL) dump loads through one psql stream; only custom-format dumps restore in parallel"
		} else if l.tables > 0 && l.tables < TablesPerWorker*l.par.Jobs {
			l.rep.Fallback = fmt.Sprintf("the dump holds %d tables, fewer than %d per each of %d pg_restore workers: one stream is faster than spooling for so few", l.tables, TablesPerWorker, l.par.Jobs)
		} else if why := spoolRoom(l.par.spoolDir(), l.size); why != "" {
			l.rep.Fallback = why
		} else {
			return l.loadParallel(ctx, r)
		}
	}
	step := "download and psql"
	if l.format == "pg-custom" {
		step = "download and pg_restore (one stream)"
	}
	progress.FromContext(ctx).Retitle(step)
	t := stepTimer{rep: &l.rep}
	t.begin()
	err := l.loadStream(ctx, r)
	t.end(step)
	return err
}

// into is the database a Load writes: the staging database of a forced
// restore, else the target.
func (l *pgLoader) into() string {
	if l.stage != "" {
		return l.stage
	}
	return l.p.database
}

// loadParallel writes r to a spool file (r checks sizes and hashes as it
// is read, and fails instead of ending when a check fails), fills in the
// data offsets that pg_dump could not write to a pipe (see pgDataOffsets),
// and restores from the file with l.par.Jobs pg_restore workers. The
// spool file is removed when Load returns, whatever happened (a cancelled
// context, as on SIGTERM, included).
//
// The restore does not wait for the whole spool: as soon as the table of
// contents is in the file and matches the digest in the signed manifest
// (l.par.Head), pg_restore restores the schema (the pre-data section) from
// it, and then workers load each table whose data is in the file whole
// (pgEarlyLoads). When the spool is complete, one pg_restore
// --jobs run restores the other tables with the post-data section (the
// indexes and constraints), so that one table's indexes are built while
// other tables still load. A stream that fails its checks stops the
// workers and fails the Load, as a streamed restore does; the restore then
// resets the target (see restore.Run). An archive the parser cannot read
// is restored after the spool, in the same two pg_restore runs.
//
// The steps reported are the spool (with the schema and the tables loaded
// meanwhile), the schema if it was still restoring when the spool ended,
// the data (until the last table finished loading) and the post-data (the
// indexes and constraints still to build after that), told apart by
// pg_restore --verbose's "finished item" messages against the archive's
// table of contents (pg_restore --list). With a progress.Meter in ctx, the
// spool renames the restore's download phase, and the data and post-data
// phases count the tables, and then the indexes and constraints, finished
// of the totals in the table of contents.
func (l *pgLoader) loadParallel(ctx context.Context, r io.Reader) error {
	path, err := lookTool("pg_restore")
	if err != nil {
		return err
	}
	f, err := spoolFile(l.par.spoolDir())
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	meter := progress.FromContext(ctx)
	meter.Retitle("download and spool")
	t := stepTimer{rep: &l.rep}
	t.begin()
	l.rep.Jobs = l.par.Jobs
	// wctx ends the pg_restores beside the spool when one of them or the
	// spool fails; its cause is the first failure.
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	run := func(ctx context.Context, args []string, lines func([]byte) bool) error {
		c := child{name: "pg_restore", path: path, env: append(l.p.env(), "LC_ALL=C"), secrets: []string{l.p.password}, lines: lines,
			args: append([]string{"--no-owner", "--exit-on-error", "--no-password", "--dbname=dbname=" + conninfoQuote(l.into())}, args...)}
		_, err := c.output(ctx)
		return err
	}

	offsets := &pgDataOffsets{}
	early := newPGEarlyLoads(f, offsets)
	rec := newPGOffsetRecorder(f, offsets, early)
	spooled := make(chan struct{})
	ahead := make(chan pgAhead, 1)
	var workers sync.WaitGroup
	go func() { ahead <- l.restoreAhead(wctx, cancel, early, spooled, &workers, path, f.Name(), run) }()

	_, err = io.Copy(ctxWriter{wctx, rec}, r)
	// An archive the parser cannot read keeps its unset offsets:
	// pg_restore finds the data by reading, only more slowly.
	if _, perr := rec.finish(); err == nil && perr == nil {
		l.rep.DataOffsets, err = offsets.patch(f)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spool %s: %w", f.Name(), cerr)
	}
	close(spooled)
	claimed := early.stop()
	if err != nil {
		// The spool's own failure (a check of the stream) comes first,
		// unless a pg_restore beside it failed and stopped it.
		if cause := context.Cause(wctx); cause != nil && ctx.Err() == nil {
			err = cause
		}
		cancel(err)
		<-ahead
		workers.Wait()
		return err
	}
	t.end("download and spool")
	l.rep.TablesDuringSpool = len(claimed)

	var a pgAhead
	select {
	case a = <-ahead:
	default:
		meter.Start(progress.Phase{Name: "pg_restore pre-data (schema)"})
		a = <-ahead
		if a.ran {
			t.end("pg_restore pre-data (schema)")
		}
	}
	fail := func(err error) error {
		cancel(err)
		workers.Wait()
		return context.Cause(wctx)
	}
	if a.err != nil {
		return fail(a.err)
	}
	if !a.ran { // the table of contents was never read: restore the schema now
		meter.Start(progress.Phase{Name: "pg_restore pre-data (schema)"})
		if err := run(wctx, []string{"--section=pre-data", f.Name()}, nil); err != nil {
			return fail(fmt.Errorf("pg_restore pre-data (schema): %w", err))
		}
		t.end("pg_restore pre-data (schema)")
		a.toc, a.tocErr = readPGTOC(wctx, path, f.Name())
	}

	sections := []string{"--section=data", "--section=post-data", "--jobs=" + strconv.Itoa(l.par.Jobs), "--verbose"}
	if a.tocErr != nil {
		// Without the table of contents the two sections are one step
		// (and no table was loaded beside the spool).
		const step = "pg_restore data and post-data"
		meter.Start(progress.Phase{Name: step})
		if err := run(wctx, append(sections, f.Name()), pgRestoreQuiet); err != nil {
			return fail(fmt.Errorf("%s: %w", step, err))
		}
		t.end(step)
		return nil
	}
	pr := newPGRestoreRun(meter, a.toc,
		progress.Phase{Name: "pg_restore data", Unit: "tables"},
		progress.Phase{Name: "pg_restore post-data", Unit: "indexes and constraints"})
	if l.counts != nil {
		pr.onData = func(id int) {
			if t := rec.p.tables[int64(id)]; t != nil {
				l.counts.add(pgx.Identifier{t.schema, t.tag})
			}
		}
	}
	early.follow(func(id int64) { pr.finished(int(id)) })
	rest := make([]int64, 0, len(a.toc.ids))
	for _, id := range a.toc.ids {
		if !claimed[int64(id)] {
			rest = append(rest, int64(id))
		}
	}
	err = withListFile(f.Name(), rest, func(list string) error {
		return run(wctx, append(sections, "--use-list="+list, f.Name()), pr.lines)
	})
	if err != nil {
		return fail(fmt.Errorf("pg_restore data and post-data: %w", err))
	}
	workers.Wait()
	if err := context.Cause(wctx); err != nil {
		return err
	}
	end := time.Now()
	if pr.dataEnd.IsZero() {
		pr.dataEnd = end // no "finished" line for the last table: count it all as data
	}
	data := max(pr.dataEnd.Sub(t.start), 0)
	l.rep.Steps = append(l.rep.Steps,
		LoadStep{Name: "pg_restore data", Seconds: data.Seconds()},
		LoadStep{Name: "pg_restore post-data (indexes, constraints)", Seconds: end.Sub(t.start.Add(data)).Seconds()})
	return nil
}

// pgAhead is what restoreAhead did beside the spool.
type pgAhead struct {
	ran    bool  // the schema was restored
	err    error // restoring it failed
	toc    pgTOC
	tocErr error // the table of contents could not be listed: no table loaded early
}

// restoreAhead waits for the spool's table of contents (or the end of the
// spool), then restores the schema from the spool and starts the workers
// that load tables beside it (pgEarlyLoads), which fail wctx through
// cancel. It returns once the schema is restored.
func (l *pgLoader) restoreAhead(wctx context.Context, cancel context.CancelCauseFunc, early *pgEarlyLoads, spooled <-chan struct{},
	workers *sync.WaitGroup, pgRestore, spool string, run func(context.Context, []string, func([]byte) bool) error) pgAhead {
	select {
	case <-early.toc:
	case <-spooled:
		return pgAhead{}
	case <-wctx.Done():
		return pgAhead{}
	}
	if want := l.par.Head; want == nil || early.head == nil || *want != *early.head {
		// No digest from the backup (made before Coffer recorded it), or
		// a head that is not the backup's: nothing runs until the whole
		// dump is checked (which then fails, for a head not the backup's).
		return pgAhead{}
	}
	toc, tocErr := readPGTOC(wctx, pgRestore, spool)
	if err := run(wctx, []string{"--section=pre-data", spool}, nil); err != nil {
		return pgAhead{ran: true, err: fmt.Errorf("pg_restore pre-data (schema): %w", err)}
	}
	if tocErr == nil {
		early.start(toc.data)
		for range l.par.Jobs {
			workers.Go(func() {
				err := early.work(wctx, l.par.Jobs, func(ctx context.Context, list string) error {
					return run(ctx, []string{"--use-list=" + list, spool}, nil)
				})
				if err != nil {
					cancel(err)
				}
			})
		}
	}
	return pgAhead{ran: true, toc: toc, tocErr: tocErr}
}

// ctxWriter fails its writes once ctx is done, with ctx's cause.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.w.Write(p)
}

// pgStreamTables is a child.lines function for one pg_restore --verbose
// (no workers): it hands each table to counts once its data is loaded. One
// pg_restore restores one entry at a time, each COPY in a transaction of
// its own, so a table's data is committed when the message after its
// "processing data for table" comes. The message names the table as
// schema.name, unquoted; counts resolves it in the catalog.
func pgStreamTables(counts *pgEarlyCounts) func([]byte) bool {
	var loading string
	return func(line []byte) bool {
		msg, ok := bytes.CutPrefix(line, []byte("pg_restore: "))
		if ok {
			if loading != "" {
				counts.addQualified(loading)
				loading = ""
			}
			if rest, ok := bytes.CutPrefix(msg, []byte(`processing data for table "`)); ok {
				loading = strings.TrimSuffix(strings.TrimRight(string(rest), "\r\n"), `"`)
			}
		}
		return pgRestoreQuiet(line)
	}
}

// loadStream pipes r into one pg_restore or psql.
func (l *pgLoader) loadStream(ctx context.Context, r io.Reader) error {
	dbname := "--dbname=dbname=" + conninfoQuote(l.into())
	var c child
	var err error
	if l.format == "pg-custom" {
		c.name = "pg_restore"
		c.path, err = lookTool("pg_restore")
		c.args = []string{"--no-owner", "--exit-on-error", "--no-password", dbname}
		if l.counts != nil {
			c.args = append(c.args, "--verbose")
			c.lines = pgStreamTables(l.counts)
		}
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
