package snapshot

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/go-sql-driver/mysql"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// myScratch is a scratch database on a MySQL or MariaDB server.
type myScratch struct {
	l *myLoader // l.p.database is the scratch database
}

func newMySQLScratch(info dumpinfo.Info, server config.Source, name string) (*myScratch, error) {
	l, err := newMySQLLoader(info, myParamsFrom(server), name, false)
	if err != nil {
		return nil, err
	}
	return &myScratch{l: l}, nil
}

// String names the scratch database and its server, without the password.
func (s *myScratch) String() string { return s.l.String() }

// Loader restores into the scratch database with the mariadb (or mysql)
// client; its Prepare creates the database.
func (s *myScratch) Loader() Loader { return scratchLoader{Loader: s.l, create: s.create} }

// create runs CREATE DATABASE, which fails by itself if the name is taken.
func (s *myScratch) create(ctx context.Context) error {
	db, err := s.l.p.open("")
	if err != nil {
		return err
	}
	defer db.Close()
	err = s.l.create(ctx, db)
	if myErr := (*mysql.MySQLError)(nil); errors.As(err, &myErr) && myErr.Number == 1007 { // ER_DB_CREATE_EXISTS
		return errScratchExists(s)
	}
	return err
}

// Exists looks the scratch database up in information_schema.
func (s *myScratch) Exists(ctx context.Context) (bool, error) {
	db, err := s.l.p.open("")
	if err != nil {
		return false, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", s.l.p.database).Scan(&n); err != nil {
		return false, fmt.Errorf("look up %s: %w", s, err)
	}
	return n > 0, nil
}

// Tables counts the rows of every table of the scratch database in one
// consistent read-only transaction.
func (s *myScratch) Tables(ctx context.Context) (*dumpinfo.Tables, error) {
	db, err := s.l.p.open("")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	counts, err := myCountTables(ctx, db, s.l.p.database)
	if err != nil {
		return nil, fmt.Errorf("count rows in %s: %w", s, err)
	}
	return newTables(MethodScratch, counts), nil
}

// Query runs one statement (the driver refuses several) in a read-only
// session and transaction that is rolled back, and returns the first column of its
// first row as the server sends it in text.
func (s *myScratch) Query(ctx context.Context, query string) (out string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("query %s: %w", s, err)
		}
	}()
	db, err := s.l.p.open(s.l.p.database)
	if err != nil {
		return "", err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	// A READ ONLY transaction alone does not stop DDL, whose implicit
	// commit would end it; a read-only session does (the connection is
	// this call's own).
	for _, q := range []string{"SET SESSION TRANSACTION READ ONLY", "START TRANSACTION READ ONLY"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return "", err
		}
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
	// No arguments: the text protocol, so values arrive as the server
	// prints them.
	rows, err := conn.QueryContext(ctx, query)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cols, err := firstRow(rows)
	if err != nil {
		return "", err
	}
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return "", err
	}
	if vals[0] == nil {
		return "NULL", nil
	}
	return string(vals[0]), nil
}

// Drop drops the scratch database.
func (s *myScratch) Drop(ctx context.Context) error {
	db, err := s.l.p.open("")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+myIdent(s.l.p.database)); err != nil {
		return fmt.Errorf("drop %s: %w", s, err)
	}
	return nil
}
