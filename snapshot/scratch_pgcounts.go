package snapshot

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"
)

// pgEarlyCounts counts the rows of a scratch database's tables while a
// parallel restore is still running: each table as soon as its data is
// loaded and committed (pgLoader.tableLoaded), on one connection of its
// own, beside the loads of other tables and the index builds. Counting
// after the restore then only counts the tables left, so a drill's
// validation costs little more than the restore itself (measured on 40
// tables and 1.3 GB: 0.65 s of counting after the restore otherwise).
//
// A table's count is final once its data is committed: nothing in the
// post-data section adds rows (triggers and rules are created there, after
// the data). Partitions are the exception, since rows loaded through a
// partitioned parent may land in any of its partitions: they are left to
// the count at the end. Any failure here (no connection, say) only leaves
// more to count at the end.
type pgEarlyCounts struct {
	p pgParams // of the scratch database

	mu      sync.Mutex
	queue   []pgCountItem
	counts  map[[2]string]int64
	started bool // the counter runs (or ran)
	closed  bool // finish was called: nothing more is counted
	wake    chan struct{}
	ctx     context.Context // of the counter; cancelled by finish
	cancel  context.CancelFunc
	done    chan struct{}
}

func newPGEarlyCounts(p pgParams) *pgEarlyCounts {
	e := &pgEarlyCounts{p: p}
	e.fresh()
	return e
}

// fresh readies e for a new restore: no counts, no counter.
func (e *pgEarlyCounts) fresh() {
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.counts, e.queue = map[[2]string]int64{}, nil
	e.wake, e.done = make(chan struct{}, 1), make(chan struct{})
	e.started, e.closed = false, false
}

// pgCountItem is a table to count: by schema and name, or by the two
// joined with a dot (as pg_restore names it), resolved in the catalog.
type pgCountItem struct {
	id        pgx.Identifier
	qualified string
}

// add queues table for counting.
func (e *pgEarlyCounts) add(table pgx.Identifier) { e.queueItem(pgCountItem{id: table}) }

// addQualified queues the table named schema.name for counting; a name
// that fits more than one table (a dot in a name) is left to the count at
// the end.
func (e *pgEarlyCounts) addQualified(name string) { e.queueItem(pgCountItem{qualified: name}) }

// queueItem queues it; it starts the counter on the first call.
func (e *pgEarlyCounts) queueItem(it pgCountItem) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.queue = append(e.queue, it)
	if !e.started {
		e.started = true
		go e.run()
	}
	wake := e.wake
	e.mu.Unlock()
	select {
	case wake <- struct{}{}:
	default:
	}
}

// finish stops the counter (an unfinished count is cancelled) and returns
// the tables counted, by schema and name; e is then fresh again, for the
// next restore. Safe on a nil e (nothing counted).
func (e *pgEarlyCounts) finish() map[[2]string]int64 {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	e.closed = true
	e.cancel()
	started, done := e.started, e.done
	e.mu.Unlock()
	if started {
		<-done
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	counts := e.counts
	e.fresh()
	return counts
}

func (e *pgEarlyCounts) run() {
	e.mu.Lock()
	ctx, done, wake, counts := e.ctx, e.done, e.wake, e.counts
	e.mu.Unlock()
	defer close(done)
	conn, err := e.p.connect(ctx, "")
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	// As pgCountSetup, for a session of single statements (each its own
	// snapshot: a table loaded later is seen whole).
	for _, q := range []string{"SET row_security = off", "SET statement_timeout = 0", "SET default_transaction_read_only = on"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return
		}
	}
	for {
		e.mu.Lock()
		var it pgCountItem
		queued := len(e.queue) > 0
		if queued {
			it, e.queue = e.queue[0], e.queue[1:]
		}
		e.mu.Unlock()
		if !queued {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		next, err := pgOneTable(ctx, conn, it)
		if err != nil || next == nil {
			if ctx.Err() != nil {
				return
			}
			continue // not one ordinary table (a partition, say): the count at the end decides
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM ONLY "+next.Sanitize(), pgx.QueryExecModeExec).Scan(&n); err != nil {
			return
		}
		e.mu.Lock()
		counts[[2]string{next[0], next[1]}] = n
		e.mu.Unlock()
	}
}

// pgOneTable finds the table it names, if it is one ordinary table and
// not a partition (rows loaded through a partitioned parent may still
// reach a partition); else nil.
func pgOneTable(ctx context.Context, conn *pgx.Conn, it pgCountItem) (pgx.Identifier, error) {
	where, args := "n.nspname || '.' || c.relname = $1", []any{it.qualified}
	if it.qualified == "" {
		where, args = "n.nspname = $1 AND c.relname = $2", []any{it.id[0], it.id[1]}
	}
	rows, err := conn.Query(ctx, `SELECT n.nspname, c.relname, c.relispartition
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND `+where, args...)
	if err != nil {
		return nil, err
	}
	type table struct {
		schema, name string
		partition    bool
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (table, error) {
		var t table
		err := r.Scan(&t.schema, &t.name, &t.partition)
		return t, err
	})
	if err != nil || len(found) != 1 || found[0].partition {
		return nil, err
	}
	return pgx.Identifier{found[0].schema, found[0].name}, nil
}
