package snapshot

import (
	"context"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// Scratch is a throwaway database a drill restores into: a database on a
// PostgreSQL or MySQL server, or an SQLite file.
type Scratch interface {
	// Exists reports whether the scratch database (or file) is there.
	Exists(ctx context.Context) (bool, error)
	// Loader loads a dump into the scratch database; its Prepare creates
	// it and refuses one that already exists.
	Loader() Loader
	// Tables counts the rows of every table in the scratch database the
	// way the source counts them at backup time.
	Tables(ctx context.Context) (*dumpinfo.Tables, error)
	// Query runs a read-only query and returns the first column of the
	// first row as text ("NULL" for SQL NULL).
	Query(ctx context.Context, query string) (string, error)
	// Drop removes the scratch database; dropping a missing one is not
	// an error.
	Drop(ctx context.Context) error
	// String names the scratch database for messages, without secrets.
	String() string
}
