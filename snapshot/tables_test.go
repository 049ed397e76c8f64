package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
)

// countsOf turns Tables into a map, failing the test on a nil Tables, a
// wrong method or inexact counts.
func countsOf(t *testing.T, tables *snapshot.Tables, method string) map[string]int64 {
	t.Helper()
	if tables == nil {
		t.Fatal("no Tables")
	}
	if !tables.Exact || tables.Method != method {
		t.Fatalf("Tables exact=%v method=%q, want exact %q", tables.Exact, tables.Method, method)
	}
	out := make(map[string]int64)
	for i, tr := range tables.Counts {
		if i > 0 && tables.Counts[i-1].Name >= tr.Name {
			t.Fatalf("counts not sorted by name: %+v", tables.Counts)
		}
		out[tr.Name] = tr.Rows
	}
	return out
}

// rowsFromHashes takes the row counts out of dbtest's table hashes
// ("rows=N sha256=...") for the keys keep accepts.
func rowsFromHashes(t *testing.T, hashes map[string]string, keep func(string) bool) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	for k, v := range hashes {
		if !keep(k) {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.Fields(v)[0], "rows="), 10, 64)
		if err != nil {
			t.Fatalf("%s: %q: %v", k, v, err)
		}
		out[k] = n
	}
	return out
}

func sameCounts(t *testing.T, want, got map[string]int64) {
	t.Helper()
	if !maps.Equal(want, got) {
		t.Fatalf("counts differ:\nwant %v\ngot  %v", want, got)
	}
}

// Partitions and a second schema: leaf partitions are counted, their
// partitioned parent (no rows of its own) is not; views, materialized
// views and sequences are not tables.
func seedPostgresExtras(t *testing.T, src config.Source) {
	t.Helper()
	conn := dbtest.PostgresConnect(t, src)
	for _, q := range []string{
		`CREATE SCHEMA "Sales"`,
		`CREATE TABLE "Sales".events (id int, at date) PARTITION BY RANGE (at)`,
		`CREATE TABLE "Sales".events_2024 PARTITION OF "Sales".events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`,
		`CREATE TABLE "Sales".events_2025 PARTITION OF "Sales".events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`,
		`INSERT INTO "Sales".events SELECT i, date '2024-01-01' + i FROM generate_series(0, 499) i`,
		`CREATE MATERIALIZED VIEW "Sales".summary AS SELECT count(*) FROM "Sales".events`,
		`CREATE TABLE "Sales"."empty one" (x int)`,
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestPostgresDumpCounts(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	seedPostgresExtras(t, src)
	want := map[string]int64{
		"public.customers":    2000,
		"public.orders":       20000,
		"public.Odd Values ü": 6,
		"Sales.events_2024":   366,
		"Sales.events_2025":   134,
		"Sales.empty one":     0,
	}
	// And the same as dbtest's independent count of every table but the
	// partitioned parent.
	sameCounts(t, want, rowsFromHashes(t, dbtest.PostgresTableHashes(t, src), func(k string) bool {
		return !strings.HasPrefix(k, "sequence:") && k != "Sales.events"
	}))
	for _, format := range []string{"custom", "plain"} {
		s := src
		s.Format = format
		_, _, tables := dumpCounted(t, s)
		sameCounts(t, want, countsOf(t, tables, snapshot.MethodExportedSnapshot))
	}
}

// The counts come from pg_dump's snapshot: rows committed after the
// snapshot was exported are neither in the dump nor in the counts, even
// though they were committed before either could read the table.
func TestPostgresDumpCountsFromSnapshot(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 5000)
	ctx := context.Background()

	// Hold orders exclusively: pg_dump and the counting both wait for it,
	// after the snapshot has been taken.
	locker := dbtest.PostgresConnect(t, src)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		tables *snapshot.Tables
		data   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var buf bytes.Buffer
		tables, err := s.Dump(ctx, &buf)
		done <- result{tables, buf.Bytes(), err}
	}()

	// Wait until two sessions (pg_dump and the counting) wait for the lock.
	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event_type = 'Lock'`, src.Database).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for the lock on orders, want 2 (pg_dump and the count)", waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM orders WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Dump did not finish after the lock was released")
	}
	if r.err != nil {
		t.Fatalf("Dump: %v", r.err)
	}
	counts := countsOf(t, r.tables, snapshot.MethodExportedSnapshot)
	if counts["public.orders"] != 5000 {
		t.Fatalf("orders counted %d rows, want the 5000 of the snapshot (2500 after the delete)", counts["public.orders"])
	}
	// The dump holds the snapshot's rows too.
	target := src.Database + "_s"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
	load(t, snapshot.Info{Kind: "postgres", Format: "pg-custom"}, src, target, r.data)
	got := rowsFromHashes(t, dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)), func(k string) bool { return !strings.HasPrefix(k, "sequence:") })
	sameCounts(t, counts, got)
}

// mariaDBExtras adds what could fool a counter: INSERT statements in a
// procedure, a trigger and an event body, names and strings full of
// quotes, parentheses and semicolons, a system-versioned table with
// history, a sequence and a partitioned table.
func seedMariaDBExtras(t *testing.T, src config.Source) {
	t.Helper()
	db := dbtest.MariaDBOpen(t, src)
	for _, q := range []string{
		"CREATE TABLE `we``ird;name (x)` (id INT PRIMARY KEY, s TEXT, b BLOB)",
		"INSERT INTO `we``ird;name (x)` VALUES (1, 'it''s ),( (a) \\\\ \\'; -- # /*', x'00275c28'), (2, NULL, NULL), (3, '\n);\nINSERT INTO `x` VALUES (1);\n', '')",
		"CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100))",
		"CREATE PROCEDURE add_audit()\nBEGIN\n" +
			"INSERT INTO `audit` VALUES (NULL, 'from a procedure; (one)');\n" +
			"INSERT INTO `audit` VALUES (NULL, 'two'), (NULL, 'three');\n" +
			"END",
		"CREATE TRIGGER orders_audit AFTER DELETE ON orders FOR EACH ROW BEGIN\n" +
			"INSERT INTO `audit` VALUES (NULL, 'deleted');\n" +
			"INSERT INTO `audit` VALUES (NULL, '*/ still in the trigger');\n" +
			"END",
		`CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO audit (note) VALUES ('event')`,
		"CALL add_audit()",
		"CREATE TABLE versioned (x INT) WITH SYSTEM VERSIONING",
		"INSERT INTO versioned VALUES (1), (2), (3)",
		"DELETE FROM versioned WHERE x = 2",
		"CREATE SEQUENCE invoice_no",
		"CREATE TABLE parts (id INT, y INT) PARTITION BY RANGE (y) (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
		"INSERT INTO parts SELECT seq, seq % 20 FROM seq_1_to_77",
		"CREATE TABLE `empty` (x INT)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// mariaDBCounts counts every base table's rows with SELECT COUNT(*).
func mariaDBCounts(t *testing.T, src config.Source) map[string]int64 {
	t.Helper()
	db := dbtest.MariaDBOpen(t, src)
	rows, err := db.Query(`SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'VIEW' AND TABLE_TYPE <> 'SEQUENCE'`, src.Database)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	out := make(map[string]int64)
	for _, n := range names {
		var c int64
		if err := db.QueryRow("SELECT COUNT(*) FROM `" + strings.ReplaceAll(n, "`", "``") + "`").Scan(&c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	return out
}

// The counts of a real mariadb-dump, taken from the stream, equal SELECT
// COUNT(*) of every table.
func TestMySQLDumpCounts(t *testing.T) {
	src := dbtest.MariaDBSource(t, dbtest.CreateMariaDB(t))
	dbtest.SeedMariaDB(t, src, 20000)
	seedMariaDBExtras(t, src)
	want := mariaDBCounts(t, src)
	for name, n := range map[string]int64{"orders": 20000, "customers": 2000, "audit": 3, "versioned": 2, "parts": 77, "we`ird;name (x)": 3, "empty": 0} {
		if want[name] != n {
			t.Fatalf("seed: %s has %d rows, want %d", name, want[name], n)
		}
	}
	_, data, tables := dumpCounted(t, src)
	got := countsOf(t, tables, snapshot.MethodDumpStream)
	sameCounts(t, want, got)
	if n := strings.Count(string(data), "INSERT INTO `orders` VALUES"); n < 2 {
		t.Errorf("orders was dumped in %d INSERT statement(s); the test wants it split in several", n)
	}
}

// The counts come from the copy the dump streamed: a write transaction
// open during the dump is in neither.
func TestSQLiteDumpCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.db")
	dbtest.SeedSQLite(t, path, 20000)
	want := rowsFromHashes(t, dbtest.SQLiteTableHashes(t, path), func(k string) bool { return k != "sqlite_sequence" })
	sameCounts(t, map[string]int64{"customers": 2000, "orders": 20000, "Odd Values ü": 6}, want)

	db := dbtest.SQLiteOpen(t, path)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM orders WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	_, _, tables := dumpCounted(t, config.Source{Type: "sqlite", Path: path})
	sameCounts(t, want, countsOf(t, tables, snapshot.MethodSnapshotCopy))
}

// A failed dump returns no Tables.
func TestDumpFailureNoTables(t *testing.T) {
	s, err := snapshot.NewSource(config.Source{Type: "sqlite", Path: filepath.Join(t.TempDir(), "missing.db")})
	if err != nil {
		t.Fatal(err)
	}
	tables, err := s.Dump(context.Background(), io.Discard)
	if err == nil || tables != nil {
		t.Fatalf("Dump of a missing file = %+v, %v; want no Tables and an error", tables, err)
	}
}
