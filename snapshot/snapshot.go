package snapshot

import (
	"context"
	"io"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// Source dumps one database.
type Source interface {
	// Describe connects to the database and returns its Info without dumping.
	Describe(ctx context.Context) (dumpinfo.Info, error)
	// Dump writes one consistent dump to w. See the package guarantees.
	// It returns the row count of every table the dump holds, taken from
	// the dump's own snapshot (nil for exec sources, which are opaque);
	// when it returns an error, the Tables are nil.
	Dump(ctx context.Context, w io.Writer) (*dumpinfo.Tables, error)
}

// Loader reads a dump back into a target database or file.
type Loader interface {
	// Prepare checks the target: it must not exist or be empty (unless
	// forced); a missing database is created.
	Prepare(ctx context.Context) error
	// Load reads the plain dump from r into the prepared target. A read
	// error from r aborts the load and is returned.
	Load(ctx context.Context, r io.Reader) error
	// Reset empties the target again after a failed Load, so that a retry
	// from another copy starts clean.
	Reset(ctx context.Context) error
	// String names the target for messages, without secrets.
	String() string
}

// Staged is implemented by a Loader that may load into a staging place
// rather than the target itself (PostgreSQL forced over a non-empty
// database): the target is replaced only by Commit, after a Load that
// returned nil, and Abort removes the staging place, leaving the target as
// it was. A restore must call Commit after its successful Load and Abort
// whenever it gives up; both do nothing when nothing was staged.
type Staged interface {
	// Commit makes what Load loaded the target's contents. When it fails,
	// a database is still under the target's name: the old or the new.
	Commit(ctx context.Context) error
	// Abort drops what was staged; safe after Commit. PostgreSQL's
	// loader also puts back a target that was not staged: it drops one
	// its Prepare created and empties one a Load began on, so a restore
	// that gave up leaves no partly loaded database.
	Abort(ctx context.Context) error
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
