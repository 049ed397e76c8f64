package dbtest

import (
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// SQLiteOpen opens the SQLite file at path (created if missing), closed at
// cleanup.
func SQLiteOpen(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteURI(path)+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// sqliteURI is a file: URI for path.
func sqliteURI(path string) string {
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

func sqliteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// SeedSQLite creates an SQLite database at path in WAL mode with customers
// (rows/10), orders (rows, with a foreign key, JSON text, blobs, reals,
// NULLs, unicode, indexes, AUTOINCREMENT), a table of odd values and a
// view.
func SeedSQLite(t testing.TB, path string, rows int) {
	t.Helper()
	if rows < 1 {
		rows = 1
	}
	customers := max(rows/10, 1)
	db := SQLiteOpen(t, path)
	stmts := []string{
		`PRAGMA journal_mode = WAL`,
		`CREATE TABLE customers (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			name TEXT NOT NULL,
			email TEXT UNIQUE,
			country TEXT,
			balance NUMERIC NOT NULL DEFAULT 0,
			created_at TEXT NOT NULL,
			note TEXT)`,
		`CREATE TABLE orders (
			id INTEGER PRIMARY KEY,
			customer_id INTEGER NOT NULL REFERENCES customers (id),
			amount REAL NOT NULL,
			status TEXT NOT NULL CHECK (status IN ('new', 'paid', 'shipped', 'cancelled')),
			placed_at TEXT NOT NULL,
			meta TEXT,
			payload BLOB)`,
		`CREATE INDEX orders_customer_idx ON orders (customer_id)`,
		`CREATE TABLE "Odd Values ü" (k TEXT, v ANY)`, // no primary key: rowids
		`CREATE VIEW paid_orders AS SELECT id, customer_id, amount FROM orders WHERE status = 'paid'`,
		fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
			INSERT INTO customers (name, email, country, balance, created_at, note)
			SELECT CASE i %% 4 WHEN 0 THEN 'Zoë ' || i WHEN 1 THEN 'Müller ' || i WHEN 2 THEN '山田 ' || i ELSE 'O''Brien "q" ' || i END,
				CASE WHEN i %% 7 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
				substr('DEFRJPUSBR', 1 + 2 * (i %% 5), 2),
				(i * 37 %% 100000) / 100.0,
				strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ', '2024-01-01', '+' || (i * 1023) || ' seconds'),
				CASE WHEN i %% 3 = 0 THEN NULL ELSE 'tab' || char(9) || 'newline' || char(10) || '😀 ' || i END
			FROM s`, customers),
		fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
			INSERT INTO orders (customer_id, amount, status, placed_at, meta, payload)
			SELECT 1 + i %% %d,
				(i * 7919 %% 1000000) / 100.0,
				CASE i %% 4 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' ELSE 'cancelled' END,
				strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', '2024-06-01 12:00:00', '+' || i || ' minutes'),
				CASE WHEN i %% 9 = 0 THEN NULL ELSE json_object('sku', 'SKU-' || (i %% 997), 'qty', i %% 13, 'tags', json_array('a', i %% 3, 'ß')) END,
				CASE WHEN i %% 5 = 0 THEN NULL ELSE randomblob(16) || x'00ff' END
			FROM s`, rows, customers),
		`INSERT INTO "Odd Values ü" VALUES ('int', 42), ('real', 1.5e300), ('text', 'ünï'), ('blob', x'000102'), ('null', NULL), ('int', 42)`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("dbtest: seed sqlite %s: %v\n%s", path, err, q)
		}
	}
}

// SQLiteTableHashes returns, for every table of the SQLite file at path
// (sqlite_sequence included), its row count and a hash of its rows ordered
// by all columns (rowids are not compared: VACUUM may renumber them).
func SQLiteTableHashes(t testing.TB, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteURI(path)+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", path, err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatalf("dbtest: list tables of %s: %v", path, err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dbtest: list tables of %s: %v", path, err)
	}
	rows.Close()
	out := make(map[string]string)
	for _, table := range tables {
		var ncols int
		if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?)`, table).Scan(&ncols); err != nil {
			t.Fatalf("dbtest: columns of %s: %v", table, err)
		}
		order := make([]string, ncols)
		for i := range order {
			order[i] = strconv.Itoa(i + 1)
		}
		rows, err := db.Query("SELECT * FROM " + sqliteIdent(table) + " ORDER BY " + strings.Join(order, ", "))
		if err != nil {
			t.Fatalf("dbtest: read %s: %v", table, err)
		}
		vals := make([]any, ncols)
		ptrs := make([]any, ncols)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		h := newRowHasher()
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dbtest: read %s: %v", table, err)
			}
			bs := make([][]byte, ncols)
			for i, v := range vals {
				bs[i] = sqliteValue(v)
			}
			h.row(bs...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dbtest: read %s: %v", table, err)
		}
		rows.Close()
		out[table] = h.sum()
	}
	return out
}

// sqliteValue encodes a scanned value with its type, nil for NULL.
func sqliteValue(v any) []byte {
	switch v := v.(type) {
	case nil:
		return nil
	case int64:
		return []byte("i" + strconv.FormatInt(v, 10))
	case float64:
		return []byte("f" + strconv.FormatUint(math.Float64bits(v), 16))
	case string:
		return []byte("s" + v)
	case []byte:
		return append([]byte("b"), v...)
	case time.Time:
		return []byte("t" + v.UTC().Format(time.RFC3339Nano))
	default:
		return []byte(fmt.Sprintf("%T:%v", v, v))
	}
}
