package snapshot_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/progress"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// spoolLeft returns the spool files left in dir.
func spoolLeft(t *testing.T, dir string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(dir, "coffer-restore-*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// prepareParallel builds the loader of target (dropped at the end of the
// test) on src's server, asks it for a parallel restore of a dump of size
// bytes and tables tables, and prepares the target.
func prepareParallel(t *testing.T, info dumpinfo.Info, src config.Source, target string, par snapshot.Parallel, size int64, tables int) snapshot.Loader {
	t.Helper()
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
	l, err := snapshot.NewLoader(info, src, target, false)
	if err != nil {
		t.Fatal(err)
	}
	l.(snapshot.ParallelLoader).SetParallel(par, size, tables)
	if err := l.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPostgresParallelLoad restores a custom-format dump with two
// pg_restore workers from a spool file: the restored tables equal the
// source's, the load reports its steps and workers, and the spool file is
// gone afterwards.
func TestPostgresParallelLoad(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	want := dbtest.PostgresTableHashes(t, src)
	info, data := dump(t, src) // custom format by default
	if info.Format != "pg-custom" {
		t.Fatalf("dump format %q, want pg-custom", info.Format)
	}
	spool := t.TempDir()
	target := src.Database + "_par"
	l := prepareParallel(t, info, src, target, snapshot.Parallel{Jobs: 2, SpoolDir: spool}, int64(len(data)), 0)
	ctx := context.Background()
	if err := l.Load(ctx, bytes.NewReader(data)); err != nil {
		t.Fatalf("parallel Load: %v", err)
	}
	sameHashes(t, want, dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)))
	rep := l.(snapshot.Reporter).LoadReport()
	if rep.Jobs != 2 || rep.Fallback != "" || !sameSteps(rep.Steps, "download and spool", "pg_restore data", "pg_restore post-data (indexes, constraints)") {
		t.Fatalf("load report %+v, want 2 workers and the steps spool, (pre-data,) data, post-data", rep)
	}
	if rep.DataOffsets < 3 {
		t.Errorf("load report %+v: %d data offsets set in the spool, want one per table (3)", rep, rep.DataOffsets)
	}
	if left := spoolLeft(t, spool); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
}

// TestPostgresParallelLoadProgress: with a progress.Meter in the context,
// a parallel restore shows its phases, and pg_restore's data and
// post-data sections count the tables and the indexes and constraints
// done, which at the end equal the totals from the archive's table of
// contents: SeedPostgres's 3 tables; its 3 primary keys, a unique
// constraint, 2 indexes and a foreign key.
func TestPostgresParallelLoadProgress(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	want := dbtest.PostgresTableHashes(t, src)
	info, data := dump(t, src)
	target := src.Database + "_prog"
	l := prepareParallel(t, info, src, target, snapshot.Parallel{Jobs: 2, SpoolDir: t.TempDir()}, int64(len(data)), 0)
	m := progress.NewMeter()
	ctx := progress.WithMeter(context.Background(), m)
	m.Start(progress.Phase{Name: "download", Destination: "primary", Unit: progress.Bytes, Total: int64(len(data))})
	counted := &countingReader{r: bytes.NewReader(data), m: m}
	if err := l.Load(ctx, counted); err != nil {
		t.Fatalf("parallel Load: %v", err)
	}
	sameHashes(t, want, dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)))
	// The schema's phase shows only when it is still being restored as
	// the spool ends (it begins when the table of contents is spooled).
	got := slices.DeleteFunc(m.Phases(), func(c progress.Count) bool { return c.Phase.Name == "pg_restore pre-data (schema)" })
	wantPhases := []progress.Count{
		{Phase: progress.Phase{Name: "download and spool", Destination: "primary", Unit: progress.Bytes, Total: int64(len(data))}, Done: int64(len(data))},
		{Phase: progress.Phase{Name: "pg_restore data", Unit: "tables", Total: 3}, Done: 3},
		{Phase: progress.Phase{Name: "pg_restore post-data", Unit: "indexes and constraints", Total: 7}, Done: 7},
	}
	if !slices.Equal(got, wantPhases) {
		t.Fatalf("phases:\n%+v\nwant:\n%+v", got, wantPhases)
	}
}

// sameSteps says whether steps are named want, in order, but for the
// schema's step, there only when the schema was still being restored when
// the spool ended (a small dump's spool ends at once).
func sameSteps(steps []snapshot.LoadStep, want ...string) bool {
	var names []string
	for _, s := range steps {
		if s.Name != "pg_restore pre-data (schema)" {
			names = append(names, s.Name)
		}
	}
	return slices.Equal(names, want)
}

// countingReader counts what is read through it in m, as a restore does.
type countingReader struct {
	r io.Reader
	m *progress.Meter
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.m.Add(int64(n))
	return n, err
}

// TestPostgresParallelLoadBadStream: a stream that fails its checks
// partway (the restore's verifier errs instead of ending) fails the Load
// with the stream's error, stops every pg_restore (tables load while the
// spool is written) and leaves no spool file; Abort, which a restore
// calls when it gives up, then drops the target Prepare created, so no
// partly loaded database is left.
func TestPostgresParallelLoadBadStream(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 2000)
	info, data, tables := dumpCounted(t, src)
	spool := t.TempDir()
	target := src.Database + "_bad"
	// With the head's digest, so that the schema and tables load while the
	// rest is spooled, before the stream fails.
	l := prepareParallel(t, info, src, target, snapshot.Parallel{Jobs: 2, SpoolDir: spool, Head: tables.Head}, int64(len(data)), 0)
	ctx := context.Background()
	if err := l.Load(ctx, failAfter(data, len(data)-10)); !errors.Is(err, errBoom) {
		t.Fatalf("Load from a failing reader: %v, want errBoom", err)
	}
	noChild(t, "pg_restore")
	if left := spoolLeft(t, spool); len(left) != 0 {
		t.Fatalf("spool files left: %v", left)
	}
	if err := l.(snapshot.Staged).Abort(ctx); err != nil {
		t.Fatalf("Abort after the failed Load: %v", err)
	}
	if dbtest.PostgresDBExists(t, target) {
		t.Fatalf("database %s, created for a restore that failed, is still there after Abort", target)
	}
}

// TestPostgresParallelLoadsWhileSpooling: when the spooled archive's head
// matches the digest the backup recorded (the manifest's), the schema and
// the tables whose data is in the spool whole load before the spool ends.
// The stream stops one byte short of its end (the last table's block is
// incomplete) until the target holds rows; then the Load completes, the
// database equals the source, and the report counts the tables loaded
// beside the spool. Without a digest, or with one the head does not match,
// nothing reaches the database until the whole dump is in (and checked).
func TestPostgresParallelLoadsWhileSpooling(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	want := dbtest.PostgresTableHashes(t, src)
	info, data, tables := dumpCounted(t, src)
	head := tables.Head
	if head == nil || head.Bytes <= 0 || head.Bytes >= int64(len(data)) {
		t.Fatalf("the dump's head digest %+v: want one for the archive's first bytes (of %d)", head, len(data))
	}
	if sum := sha256.Sum256(data[:head.Bytes]); hex.EncodeToString(sum[:]) != head.SHA256 {
		t.Fatalf("the head digest %s is not the SHA-256 of the dump's first %d bytes", head.SHA256, head.Bytes)
	}
	wrong := *head
	wrong.SHA256 = strings.Repeat("0", 64)
	for _, tc := range []struct {
		name  string
		head  *dumpinfo.Head
		early bool
	}{{"head matches", head, true}, {"no digest", nil, false}, {"head differs", &wrong, false}} {
		t.Run(tc.name, func(t *testing.T) {
			target := src.Database + "_early"
			l := prepareParallel(t, info, src, target, snapshot.Parallel{Jobs: 2, SpoolDir: t.TempDir(), Head: tc.head}, int64(len(data)), 0)
			tsrc := dbtest.PostgresSource(t, target)
			// schema says whether the tables exist; rows how many rows they hold.
			rows := func() (n int64, schema bool) {
				conn := dbtest.PostgresConnect(t, tsrc)
				defer conn.Close(context.Background())
				err := conn.QueryRow(context.Background(),
					`SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM orders) + (SELECT count(*) FROM "Odd Values ü")`).Scan(&n)
				return n, err == nil
			}
			wait := 30 * time.Second
			if !tc.early {
				wait = 3 * time.Second // long enough for the early path to show
			}
			var seen int64
			var seenSchema bool
			r := io.MultiReader(bytes.NewReader(data[:len(data)-1]), readerFunc(func(p []byte) (int, error) {
				for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if seen, seenSchema = rows(); seen > 0 {
						break
					}
				}
				return 0, io.EOF
			}), bytes.NewReader(data[len(data)-1:]))
			if err := l.Load(context.Background(), r); err != nil {
				t.Fatalf("parallel Load: %v", err)
			}
			sameHashes(t, want, dbtest.PostgresTableHashes(t, tsrc))
			rep := l.(snapshot.Reporter).LoadReport()
			switch {
			case tc.early && (seen == 0 || rep.TablesDuringSpool < 1):
				// The last table may be taken too, between its last byte
				// and the spool's end.
				t.Fatalf("no rows loaded while the spool waited (%d rows; report %+v)", seen, rep)
			case !tc.early && (seenSchema || rep.TablesDuringSpool != 0):
				t.Fatalf("the schema (%d rows) reached the database before the whole dump was in (report %+v)", seen, rep)
			}
		})
	}
}

// readerFunc is an io.Reader made of a function.
type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestPostgresParallelFallsBack: a spool that does not fit (the dump's
// size from the manifest against the free space), a missing spool
// directory, a plain-format dump and a dump of too few tables for the
// workers stream as before, and say why.
func TestPostgresParallelFallsBack(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 2000)
	want := dbtest.PostgresTableHashes(t, src)
	custom, customData := dump(t, src)
	plainSrc := src
	plainSrc.Format = "plain"
	plain, plainData := dump(t, plainSrc)
	cases := []struct {
		name   string
		data   []byte
		par    snapshot.Parallel
		size   int64
		tables int
		why    string
	}{
		{"too big", customData, snapshot.Parallel{Jobs: 2, SpoolDir: t.TempDir()}, 1 << 60, 0, "MiB free"},
		{"no directory", customData, snapshot.Parallel{Jobs: 2, SpoolDir: filepath.Join(t.TempDir(), "missing")}, 1000, 0, "missing"},
		{"plain format", plainData, snapshot.Parallel{Jobs: 2, SpoolDir: t.TempDir()}, 1000, 0, "plain-format"},
		{"too few tables", customData, snapshot.Parallel{Jobs: 2, SpoolDir: t.TempDir()}, 1000, 3, "holds 3 tables"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := custom
			if c.name == "plain format" {
				info = plain
			}
			target := src.Database + "_fb" + string(rune('a'+i))
			l := prepareParallel(t, info, src, target, c.par, c.size, c.tables)
			if err := l.Load(context.Background(), bytes.NewReader(c.data)); err != nil {
				t.Fatal(err)
			}
			sameHashes(t, want, dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)))
			rep := l.(snapshot.Reporter).LoadReport()
			if rep.Jobs != 1 || !strings.Contains(rep.Fallback, c.why) {
				t.Fatalf("load report %+v, want one stream and a reason naming %q", rep, c.why)
			}
			if _, err := os.Stat(c.par.SpoolDir); err == nil {
				if left := spoolLeft(t, c.par.SpoolDir); len(left) != 0 {
					t.Fatalf("spool files left: %v", left)
				}
			}
		})
	}
}
