package dbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coffer-backup/coffer/config"
)

// TerminatePgDump waits (up to timeout) for a pg_dump connected to src's
// database, lets it stream for a moment, and terminates its backend with
// pg_terminate_backend, as an administrator or a failover would. It is
// meant to run in a goroutine while a backup runs; it does not call
// t.Fatal.
func TerminatePgDump(t testing.TB, src config.Source, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	admin := src
	admin.Database = "postgres"
	conn, err := pgx.Connect(ctx, postgresDSN(t, admin))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for {
		var pid int
		err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity
			WHERE application_name = 'pg_dump' AND datname = $1 AND state = 'active' LIMIT 1`, src.Database).Scan(&pid)
		if err == nil {
			time.Sleep(300 * time.Millisecond) // let the dump stream some bytes first
			var ok bool
			if err := conn.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("pg_terminate_backend(%d) returned false", pid)
			}
			return nil
		}
		if err != pgx.ErrNoRows {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no active pg_dump on %s within %s", src.Database, timeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
