package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// countsOf turns Tables into a map, failing the test on a nil Tables, a
// wrong method or inexact counts.
func countsOf(t *testing.T, tables *dumpinfo.Tables, method string) map[string]int64 {
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
// views and sequences are not tables. An inheritance parent counts its own
// rows, not its child's; a table made a member of an extension is not
// dumped and not counted; a large object and an unlogged table are in the
// archive too.
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
		`CREATE TABLE "Sales".parent (id int, note text)`,
		`CREATE TABLE "Sales".child (extra int) INHERITS ("Sales".parent)`,
		`INSERT INTO "Sales".parent SELECT i, 'line' || chr(10) || 'break' FROM generate_series(1, 7) i`,
		`INSERT INTO "Sales".child SELECT i, 'c', i FROM generate_series(1, 11) i`,
		`CREATE UNLOGGED TABLE "Sales".scratchpad (id int)`,
		`INSERT INTO "Sales".scratchpad SELECT generate_series(1, 3)`,
		`CREATE EXTENSION IF NOT EXISTS citext`,
		`CREATE TABLE ext_member (id int)`,
		`INSERT INTO ext_member VALUES (1), (2)`,
		`ALTER EXTENSION citext ADD TABLE ext_member`,
		`SELECT lo_from_bytea(0, convert_to('a large object' || chr(10) || 'of two lines', 'UTF8'))`,
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
		"Sales.parent":        7,
		"Sales.child":         11,
		"Sales.scratchpad":    3,
	}
	// And the same as dbtest's independent count of every table but the
	// partitioned parent and the extension's member.
	sameCounts(t, want, rowsFromHashes(t, dbtest.PostgresTableHashes(t, src), func(k string) bool {
		return !strings.HasPrefix(k, "sequence:") && k != "Sales.events" && k != "public.ext_member"
	}))
	// The custom archive is counted as it streams, the plain dump in the
	// exported snapshot.
	for format, method := range map[string]string{"custom": snapshot.MethodDumpStream, "plain": snapshot.MethodExportedSnapshot} {
		s := src
		s.Format = format
		_, _, tables := dumpCounted(t, s)
		sameCounts(t, want, countsOf(t, tables, method))
	}
}

// An archive the stream counter cannot read (here: pg_dump compresses it
// anyway) is counted with count(*) in the exported snapshot instead, and
// the backup is unaffected.
func TestPostgresDumpCountsFallback(t *testing.T) {
	real, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	wrapper := "#!/bin/sh\nexec " + real + " \"$@\" --compress=6\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 3000)
	info, data, tables := dumpCounted(t, src)
	if !bytes.HasPrefix(data, []byte("PGDMP")) {
		t.Fatalf("not a custom archive: %q", data[:min(len(data), 16)])
	}
	counts := countsOf(t, tables, snapshot.MethodExportedSnapshot)
	if counts["public.orders"] != 3000 {
		t.Fatalf("orders counted %d rows, want 3000", counts["public.orders"])
	}
	target := src.Database + "_f"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
	load(t, info, src, target, data)
	sameHashes(t, dbtest.PostgresTableHashes(t, src), dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)))
}

// The counts come from pg_dump's snapshot: rows committed after the
// snapshot was exported are neither in the dump nor in the counts, even
// though they were committed before either could read the table.
func TestPostgresDumpCountsFromSnapshot(t *testing.T) {
	for _, tc := range []struct {
		format, method string
		waiting        int // sessions that wait for the lock
	}{
		// Stream counts describe the bytes pg_dump wrote by construction;
		// this case checks end to end that they, and the dump, hold the
		// snapshot's rows. The plain case is the one where a separate
		// count(*) must read pg_dump's snapshot.
		{"custom", snapshot.MethodDumpStream, 1},      // pg_dump
		{"plain", snapshot.MethodExportedSnapshot, 2}, // pg_dump and count(*)
	} {
		t.Run(tc.format, func(t *testing.T) { testPostgresDumpCountsFromSnapshot(t, tc.format, tc.method, tc.waiting) })
	}
}

func testPostgresDumpCountsFromSnapshot(t *testing.T, format, method string, wantWaiting int) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	src.Format = format
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
		tables *dumpinfo.Tables
		data   []byte
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var buf bytes.Buffer
		tables, err := s.Dump(ctx, &buf)
		done <- result{tables, buf.Bytes(), err}
	}()

	// Wait until pg_dump (and the count(*), if any) waits for the lock.
	admin := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, "postgres"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND wait_event_type = 'Lock'`, src.Database).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting >= wantWaiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for the lock on orders, want %d", waiting, wantWaiting)
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
	counts := countsOf(t, r.tables, method)
	if counts["public.orders"] != 5000 {
		t.Fatalf("orders counted %d rows, want the 5000 of the snapshot (2500 after the delete)", counts["public.orders"])
	}
	// The dump holds the snapshot's rows too.
	target := src.Database + "_s"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
	load(t, dumpinfo.Info{Kind: "postgres", Format: "pg-" + format}, src, target, r.data)
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
