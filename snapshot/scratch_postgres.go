package snapshot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// pgScratch is a scratch database on a PostgreSQL server.
type pgScratch struct {
	l *pgLoader // l.p.database is the scratch database; l.counts counts its tables as a restore loads them
}

func newPostgresScratch(info dumpinfo.Info, server config.Source, name string) (*pgScratch, error) {
	l, err := newPostgresLoader(info, pgParamsFrom(server), name, false)
	if err != nil {
		return nil, err
	}
	l.counts = newPGEarlyCounts(l.p)
	return &pgScratch{l: l}, nil
}

// String names the scratch database and its server, without the password.
func (s *pgScratch) String() string { return s.l.String() }

// Loader restores into the scratch database with pg_restore or psql; its
// Prepare creates the database.
func (s *pgScratch) Loader() Loader { return scratchLoader{Loader: s.l, create: s.create} }

// create runs CREATE DATABASE, which fails by itself if the name is taken.
func (s *pgScratch) create(ctx context.Context) error {
	conn, err := s.l.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = s.l.create(ctx, conn)
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return errScratchExists(s)
	}
	return err
}

// Exists looks the scratch database up in pg_database.
func (s *pgScratch) Exists(ctx context.Context) (bool, error) {
	conn, err := s.l.admin(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", s.l.p.database).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up %s: %w", s, err)
	}
	return exists, nil
}

// readOnly runs fn in a read-only transaction (repeatable read: one
// snapshot for all of fn) on the scratch database, and rolls it back.
func (s *pgScratch) readOnly(ctx context.Context, fn func(tx pgx.Tx) error) error {
	conn, err := s.l.p.connect(ctx, "")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin read-only transaction on %s: %w", s, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(tx)
}

// Tables counts the rows of every table of the scratch database with the
// code that counts them at backup time. After a restore, the tables
// counted while it ran (pgEarlyCounts) keep those counts, and as
// many connections as it had workers count the others side by side, all
// in the first one's snapshot (pg_export_snapshot), so the counts are
// those of one moment as with one connection.
func (s *pgScratch) Tables(ctx context.Context) (*dumpinfo.Tables, error) {
	early := s.l.counts.finish()
	var counts []dumpinfo.TableRows
	err := s.readOnly(ctx, func(tx pgx.Tx) (err error) {
		if s.l.par.Jobs <= 1 && len(early) == 0 {
			counts, err = pgCountTables(ctx, tx)
			return err
		}
		counts, err = s.countParallel(ctx, tx, max(s.l.par.Jobs, 1), early)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", s, err)
	}
	return newTables(MethodScratch, counts), nil
}

// countParallel counts the tables listed in tx, but for those counted
// already (early), with tx and workers-1 more connections that share its
// snapshot.
func (s *pgScratch) countParallel(ctx context.Context, tx pgx.Tx, workers int, early map[[2]string]int64) ([]dumpinfo.TableRows, error) {
	names, err := pgListTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	counts := make([]dumpinfo.TableRows, len(names))
	var todo []int
	for i, id := range names {
		if n, ok := early[[2]string{id[0], id[1]}]; ok {
			counts[i] = dumpinfo.TableRows{Name: id[0] + "." + id[1], Rows: n}
		} else {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return counts, nil
	}
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return nil, fmt.Errorf("export snapshot: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int, len(todo))
	for _, i := range todo {
		next <- i
	}
	close(next)
	count := func(tx pgx.Tx) error {
		for i := range next {
			n, err := pgCountTable(ctx, tx, names[i])
			if err != nil {
				return err
			}
			counts[i] = dumpinfo.TableRows{Name: names[i][0] + "." + names[i][1], Rows: n}
		}
		return nil
	}
	// The first failure cancels the others, whose errors then only say so.
	var mu sync.Mutex
	var first error
	fail := func(err error) {
		if err == nil {
			return
		}
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	// A helper that cannot connect or share the snapshot (a connection
	// limit, say) leaves its share to the others: the first connection
	// counts until no table is left.
	var wg sync.WaitGroup
	for range min(workers, len(todo)) - 1 {
		wg.Go(func() {
			_ = s.readOnly(ctx, func(tx pgx.Tx) error {
				// Must come first in the transaction; the id is the
				// server's own (digits, hex and dashes).
				if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(snapshot, "'", "''")+"'"); err != nil {
					return err
				}
				if err := pgCountSetup(ctx, tx); err != nil {
					return err
				}
				fail(count(tx))
				return nil
			})
		})
	}
	fail(count(tx))
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return counts, nil
}

// Query runs one statement in a read-only transaction that is rolled back,
// and returns the first column of its first row as PostgreSQL prints it.
// The extended protocol refuses more than one statement.
func (s *pgScratch) Query(ctx context.Context, query string) (string, error) {
	var out string
	err := s.readOnly(ctx, func(tx pgx.Tx) error {
		// nil result formats: every column comes back as text.
		rr := tx.Conn().PgConn().ExecParams(ctx, query, nil, nil, nil, nil)
		got := false
		if len(rr.FieldDescriptions()) > 0 && rr.NextRow() {
			got = true
			if v := rr.Values()[0]; v == nil {
				out = "NULL"
			} else {
				out = string(v)
			}
		}
		tag, err := rr.Close()
		switch {
		case err != nil:
			return err
		case !got && len(rr.FieldDescriptions()) == 0:
			return fmt.Errorf("the query returns no columns (%s)", tag)
		case !got:
			return errors.New("the query returned no rows")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("query %s: %w", s, err)
	}
	return out, nil
}

// Drop disconnects every session of the scratch database and drops it.
func (s *pgScratch) Drop(ctx context.Context) error {
	s.l.counts.finish()
	conn, err := s.l.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := pgDropDatabase(ctx, conn, s.l.p.database); err != nil {
		return fmt.Errorf("drop %s: %w", s, err)
	}
	return nil
}
