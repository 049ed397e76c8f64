package dbtest

import (
	"database/sql"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// MariaDBSource returns a mysql config.Source for database on the test
// MariaDB server (testenv.MariaDBURL).
func MariaDBSource(t testing.TB, database string) config.Source {
	t.Helper()
	return sourceFromURL(t, "mysql", testenv.MariaDBURL(t), database)
}

// MariaDBOpen opens a database/sql handle described by src (its database
// may be empty), closed at cleanup.
func MariaDBOpen(t testing.TB, src config.Source) *sql.DB {
	t.Helper()
	db, err := mariaDBOpen(src)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mariaDBOpen(src config.Source) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = src.User, src.Password.Reveal(), src.Database
	port := src.Port
	if port == 0 {
		port = 3306
	}
	host := src.Host
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, strconv.Itoa(port))
	cfg.MultiStatements = true
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to mariadb database %q: %w", src.Database, err)
	}
	return db, nil
}

func myIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// CreateMariaDB creates a fresh, empty, uniquely named database on the test
// MariaDB server and drops it at cleanup. It returns the name.
func CreateMariaDB(t testing.TB) string {
	t.Helper()
	name := uniqueName("coffer_test_")
	db := MariaDBOpen(t, MariaDBSource(t, ""))
	if _, err := db.Exec("CREATE DATABASE " + myIdent(name) + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("dbtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() { DropMariaDB(t, name) })
	return name
}

// DropMariaDB drops database name (if it exists) on the test server.
func DropMariaDB(t testing.TB, name string) {
	t.Helper()
	db, err := mariaDBOpen(MariaDBSource(t, ""))
	if err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
		return
	}
	defer db.Close()
	if _, err := db.Exec("DROP DATABASE IF EXISTS " + myIdent(name)); err != nil {
		t.Errorf("dbtest: drop database %s: %v", name, err)
	}
}

// SeedMariaDB creates tables with mixed data in the database of src:
// customers (rows/10), orders (rows, with a foreign key, JSON, DECIMAL,
// DATETIME/TIMESTAMP, binary, NULLs, unicode, indexes, AUTO_INCREMENT),
// a small table of odd values, a view, a trigger and a procedure.
// It uses MariaDB's SEQUENCE engine (seq_1_to_N) to generate rows.
func SeedMariaDB(t testing.TB, src config.Source, rows int) {
	t.Helper()
	if rows < 1 {
		rows = 1
	}
	customers := max(rows/10, 1)
	db := MariaDBOpen(t, src)
	stmts := []string{
		`CREATE TABLE customers (
			id BIGINT AUTO_INCREMENT PRIMARY KEY,
			name VARCHAR(100) NOT NULL,
			email VARCHAR(200) NULL UNIQUE,
			country CHAR(2),
			balance DECIMAL(14,2) NOT NULL DEFAULT 0,
			created_at DATETIME(6) NOT NULL,
			note TEXT NULL
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
		`CREATE TABLE orders (
			id BIGINT AUTO_INCREMENT PRIMARY KEY,
			customer_id BIGINT NOT NULL,
			amount DECIMAL(12,2) NOT NULL,
			status ENUM('new', 'paid', 'shipped', 'cancelled') NOT NULL,
			placed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
			shipped_on DATE NULL,
			meta JSON NULL,
			payload VARBINARY(40) NULL,
			KEY orders_placed_idx (placed_at),
			CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
		"CREATE TABLE `Odd Values ü` (k VARCHAR(20) PRIMARY KEY, d DOUBLE, b BLOB, flag BIT(3), y YEAR) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
		`CREATE VIEW paid_orders AS SELECT id, customer_id, amount FROM orders WHERE status = 'paid'`,
		`CREATE TRIGGER customers_country BEFORE INSERT ON customers FOR EACH ROW SET NEW.country = UPPER(NEW.country)`,
		`CREATE PROCEDURE order_count(OUT n BIGINT) SELECT COUNT(*) INTO n FROM orders`,
		fmt.Sprintf(`INSERT INTO customers (name, email, country, balance, created_at, note)
			SELECT ELT(1 + seq %% 4, CONCAT('Zoë ', seq), CONCAT('Müller ', seq), CONCAT('山田 ', seq), CONCAT('O''Brien "q" ', seq)),
				IF(seq %% 7 = 0, NULL, CONCAT('user', seq, '@example.com')),
				ELT(1 + seq %% 5, 'de', 'fr', 'jp', 'us', 'br'),
				((seq * 37) %% 100000) / 100,
				TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 1023500 MICROSECOND,
				IF(seq %% 3 = 0, NULL, CONCAT(REPEAT('note ', seq %% 5), 'tab\there\nnewline 😀 \\ back'))
			FROM seq_1_to_%d`, customers),
		fmt.Sprintf(`INSERT INTO orders (customer_id, amount, status, placed_at, shipped_on, meta, payload)
			SELECT 1 + seq %% %d,
				((seq * 7919) %% 1000000) / 100,
				ELT(1 + seq %% 4, 'new', 'paid', 'shipped', 'cancelled'),
				TIMESTAMP'2024-06-01 12:00:00' + INTERVAL seq MINUTE,
				IF(seq %% 4 = 2, DATE'2024-06-01' + INTERVAL seq %% 365 DAY, NULL),
				IF(seq %% 9 = 0, NULL, JSON_OBJECT('sku', CONCAT('SKU-', seq %% 997), 'qty', seq %% 13, 'gift', seq %% 11 = 0, 'tags', JSON_ARRAY('a', seq %% 3, 'ß'))),
				IF(seq %% 5 = 0, NULL, CONCAT(UNHEX(MD5(seq)), X'00FF'))
			FROM seq_1_to_%d`, customers, rows),
		"INSERT INTO `Odd Values ü` VALUES " +
			`('empty', 0, '', b'000', 1901),
			('big', 1.7976931348623157e308, X'000102FEFF', b'101', 2155),
			('tiny', 5e-324, 'ünï', b'111', NULL),
			('null', NULL, NULL, NULL, NULL)`,
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("dbtest: seed mariadb %s: %v\n%s", src.Database, err, q)
		}
	}
}

// MariaDBTableHashes returns, for every base table of src's database, its
// row count and a hash of its rows read in primary-key order, plus the
// names of its views, triggers and routines ("views", "triggers",
// "routines" keys).
func MariaDBTableHashes(t testing.TB, src config.Source) map[string]string {
	t.Helper()
	db := MariaDBOpen(t, src)
	out := make(map[string]string)
	tables := queryStrings(t, db, `SELECT TABLE_NAME FROM information_schema.TABLES
		WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME`, src.Database)
	for _, table := range tables {
		keys := queryStrings(t, db, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
			WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
			src.Database, table)
		order := "1"
		if len(keys) > 0 {
			for i, k := range keys {
				keys[i] = myIdent(k)
			}
			order = strings.Join(keys, ", ")
		}
		// No arguments: the text protocol, so values arrive as text.
		rows, err := db.Query("SELECT * FROM " + myIdent(table) + " ORDER BY " + order)
		if err != nil {
			t.Fatalf("dbtest: read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]sql.RawBytes, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		h := newRowHasher()
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("dbtest: read %s: %v", table, err)
			}
			bs := make([][]byte, len(vals))
			for i, v := range vals {
				if v != nil {
					bs[i] = append([]byte{}, v...)
				}
			}
			h.row(bs...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("dbtest: read %s: %v", table, err)
		}
		rows.Close()
		out[table] = h.sum()
	}
	out["views"] = strings.Join(queryStrings(t, db, `SELECT TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY 1`, src.Database), ",")
	out["triggers"] = strings.Join(queryStrings(t, db, `SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1`, src.Database), ",")
	out["routines"] = strings.Join(queryStrings(t, db, `SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY 1`, src.Database), ",")
	return out
}

func queryStrings(t testing.TB, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("dbtest: %v\n%s", err, q)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatalf("dbtest: %v", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return out
}
