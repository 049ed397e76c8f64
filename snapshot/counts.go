package snapshot

import (
	"cmp"
	"context"
	"slices"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// Methods of Tables: how the counts were taken.
const (
	// MethodExportedSnapshot: counted with count(*) in the PostgreSQL
	// transaction whose snapshot pg_dump read (pg_export_snapshot, pg_dump
	// --snapshot): for plain-format dumps, and for archives the stream
	// counter cannot read.
	MethodExportedSnapshot = "exported-snapshot"
	// MethodDumpStream: counted in the dump as it streamed past: the
	// COPY data of a pg_dump custom archive, the INSERTs of a MySQL or
	// MariaDB dump.
	MethodDumpStream = "dump-stream"
	// MethodSnapshotCopy: counted in the SQLite copy that was streamed.
	MethodSnapshotCopy = "snapshot-copy"
	// MethodScratch: counted in one read-only transaction in a scratch
	// database (Scratch.Tables).
	MethodScratch = "scratch"
)

// newTables returns exact Tables with counts sorted by name, never with a
// nil Counts (so that it encodes as [] rather than null).
func newTables(method string, counts []dumpinfo.TableRows) *dumpinfo.Tables {
	if counts == nil {
		counts = []dumpinfo.TableRows{}
	}
	slices.SortFunc(counts, func(a, b dumpinfo.TableRows) int { return cmp.Compare(a.Name, b.Name) })
	return &dumpinfo.Tables{Exact: true, Method: method, Counts: counts}
}

// countWhile runs count in the background while stream runs, and waits for
// both: the counts come from the same snapshot the stream reads. A stream
// that fails cancels the count.
func countWhile(ctx context.Context, count func(context.Context) ([]dumpinfo.TableRows, error), stream func() error) (counts []dumpinfo.TableRows, streamErr, countErr error) {
	countCtx, stopCount := context.WithCancel(ctx)
	defer stopCount()
	done := make(chan struct{})
	go func() {
		defer close(done)
		counts, countErr = count(countCtx)
	}()
	if streamErr = stream(); streamErr != nil {
		stopCount()
	}
	<-done
	return counts, streamErr, countErr
}
