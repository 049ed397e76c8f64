package snapshot

import "context"

// TableRows is one table's row count.
type TableRows struct {
	// Name is schema-qualified for PostgreSQL ("public.pupils") and bare
	// for MySQL and SQLite ("pupils").
	Name string `json:"name"`
	Rows int64  `json:"rows"`
}

// Tables is what a dump holds: every table and its row count, sorted by
// name, taken from the same snapshot the dump read.
type Tables struct {
	// Exact is true when the counts describe exactly the data in the
	// dump (taken in the dump's own snapshot, or counted in the dump
	// itself).
	Exact bool `json:"exact"`
	// Method says how the counts were taken, e.g. "exported-snapshot",
	// "dump-stream", "snapshot-copy".
	Method string      `json:"method"`
	Counts []TableRows `json:"counts"`
}

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
	Tables(ctx context.Context) (*Tables, error)
	// Query runs a read-only query and returns the first column of the
	// first row as text ("NULL" for SQL NULL).
	Query(ctx context.Context, query string) (string, error)
	// Drop removes the scratch database; dropping a missing one is not
	// an error.
	Drop(ctx context.Context) error
	// String names the scratch database for messages, without secrets.
	String() string
}
