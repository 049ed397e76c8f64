package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// Parallel asks a loader that can restore with several workers (a
// PostgreSQL custom-format dump, through pg_restore --jobs) to do so.
type Parallel struct {
	// Jobs is the number of pg_restore workers. 1 or less streams the dump
	// into one pg_restore, as a plain load does.
	Jobs int
	// SpoolDir is where the dump is written before pg_restore reads it
	// (pg_restore needs a file to run workers); "" is os.TempDir().
	SpoolDir string
	// Head is the digest of the dump's head that the backup's manifest
	// recorded (dumpinfo.Tables.Head). When the spooled head matches it,
	// pg_restore starts before the rest of the dump is spooled and
	// checked; nil waits for the whole check.
	Head *dumpinfo.Head
}

// ParallelLoader is a Loader that can load a dump with several workers.
type ParallelLoader interface {
	Loader
	// SetParallel asks the following Loads for a parallel restore of a
	// dump of size plain bytes holding tables tables (the manifest's; 0
	// when it does not say), so the loader can check that its spool fits
	// and that the dump has tables enough for the workers to share.
	SetParallel(p Parallel, size int64, tables int)
}

// LoadStep is one timed step of a Load.
type LoadStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// LoadReport says how a loader's last Load ran.
type LoadReport struct {
	// Jobs is the number of workers that loaded the data (1: one stream).
	Jobs int `json:"jobs"`
	// Steps are the Load's steps with their times, in order.
	Steps []LoadStep `json:"steps,omitempty"`
	// DataOffsets is how many data blocks' offsets a parallel restore
	// filled in in its spool file's table of contents, so that its
	// workers seek to them (0: none, and the workers read their way).
	DataOffsets int `json:"data_offsets,omitempty"`
	// TablesDuringSpool is how many tables a parallel restore began to
	// load while the dump was still being spooled.
	TablesDuringSpool int `json:"tables_during_spool,omitempty"`
	// Fallback says why a parallel restore that was asked for streamed
	// instead (no room for the spool, a plain-format dump, ...).
	Fallback string `json:"fallback,omitempty"`
}

// Reporter is a Loader that reports how its last Load ran.
type Reporter interface {
	LoadReport() LoadReport
}

// TablesPerWorker is how many tables a dump needs per pg_restore worker
// before a parallel restore is worth its spool file. Measured on a 2-core
// machine: a 2-table database restored in 19.5 s with 2 workers against
// 18.1-18.6 s as one stream (the spool costs more than the one extra
// worker gains), a 40-table one in 0.82 times the stream's time.
const TablesPerWorker = 2

// spoolMargin is the free space a spool leaves: the file system is not
// filled to the last block.
const spoolMargin = 256 << 20

// spoolRoom says why a spool of size bytes does not fit in dir ("" when it
// does).
func spoolRoom(dir string, size int64) string {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Sprintf("spool directory %s: %v", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need := size + size/20 + spoolMargin; free < need {
		return fmt.Sprintf("spool directory %s has %d MiB free; the %d MiB dump needs %d MiB (the dump, 5%% and 256 MiB to spare)",
			dir, free>>20, size>>20, need>>20)
	}
	return ""
}

// spoolFile creates the spool file in dir (Parallel.spoolDir), private to
// this user.
func spoolFile(dir string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "coffer-restore-*.pgdump")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return f, nil
}

// stepTimer records a Load's steps.
type stepTimer struct {
	rep   *LoadReport
	start time.Time
}

func (t *stepTimer) begin() { t.start = time.Now() }

func (t *stepTimer) end(name string) {
	t.rep.Steps = append(t.rep.Steps, LoadStep{Name: name, Seconds: time.Since(t.start).Seconds()})
	t.start = time.Now()
}

// spoolDir returns the directory a Parallel spools into.
func (p Parallel) spoolDir() string {
	if p.SpoolDir == "" {
		return os.TempDir()
	}
	return filepath.Clean(p.SpoolDir)
}
