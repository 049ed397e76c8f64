package snapshot

import (
	"context"
	"fmt"
	"regexp"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// scratchName is what a scratch database on a server may be called: plain
// enough to need no quoting anywhere.
var scratchName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// NewScratch returns the scratch database a drill restores a dump described
// by info into. info.Kind picks the engine. For postgres and mysql, server
// gives the host, port, user and password (its Database is not used) and
// name is the scratch database's name (lower-case letters, digits and _,
// at most 63); for sqlite, name is the full path of the scratch file and
// server is not used. Exec dumps have no scratch database.
//
// NewScratch connects to nothing. The scratch Loader's Prepare creates the
// database (or file) and fails if it already exists, even empty, without
// touching it; Drop removes whatever database (or file) has the name, so a
// caller drops only what its own Prepare created.
func NewScratch(info dumpinfo.Info, server config.Source, name string) (Scratch, error) {
	switch info.Kind {
	case "postgres", "mysql":
		if !scratchName.MatchString(name) {
			return nil, fmt.Errorf("scratch database name %q: want 1 to 63 of a-z, 0-9 and _", name)
		}
		if info.Kind == "postgres" {
			return newPostgresScratch(info, server, name)
		}
		return newMySQLScratch(info, server, name)
	case "sqlite":
		return newSQLiteScratch(info, name)
	case "exec":
		return nil, fmt.Errorf("no scratch database for exec dumps (format %q): Coffer cannot load them, so a drill cannot check them", info.Format)
	}
	return nil, fmt.Errorf("no scratch database for dumps of kind %q", info.Kind)
}

// scratchLoader is an engine's loader whose Prepare creates the scratch
// database, failing if it exists; Load, Reset and String are the engine's.
type scratchLoader struct {
	Loader
	create func(ctx context.Context) error
}

// Prepare creates the scratch database; an existing one is an error and is
// left as it is.
func (l scratchLoader) Prepare(ctx context.Context) error { return l.create(ctx) }

// SetParallel passes a parallel restore on to the loader, when it can.
func (l scratchLoader) SetParallel(p Parallel, size int64, tables int) {
	if pl, ok := l.Loader.(ParallelLoader); ok {
		pl.SetParallel(p, size, tables)
	}
}

// LoadReport is the loader's, when it has one.
func (l scratchLoader) LoadReport() LoadReport {
	if r, ok := l.Loader.(Reporter); ok {
		return r.LoadReport()
	}
	return LoadReport{}
}

// errScratchExists says that name is taken, and that it was not touched.
func errScratchExists(name fmt.Stringer) error {
	return fmt.Errorf("%s already exists: a drill restores only into a database it creates, and leaves this one untouched", name)
}
