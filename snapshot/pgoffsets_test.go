package snapshot

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coffer-backup/coffer/internal/dbtest"
)

// TestPGDataOffsetsAsPgDumpWrites: an archive pg_dump wrote to a pipe, its
// data offsets filled in by the recorder, holds at every offset it set the
// bytes pg_dump itself writes there when it dumps the same database to a
// file (where it can seek back and fill them in), and is otherwise
// unchanged.
func TestPGDataOffsetsAsPgDumpWrites(t *testing.T) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 5000)
	pgDump, err := lookTool("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--format=custom", "--compress=0", "-h", src.Host, "-p", strconv.Itoa(src.Port), "-U", src.User, src.Database}
	dir := t.TempDir()
	file := filepath.Join(dir, "file.dump")
	if out, err := exec.Command(pgDump, append(args, "--file="+file)...).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump --file: %v\n%s", err, out)
	}
	piped, err := exec.Command(pgDump, args...).Output()
	if err != nil {
		t.Fatalf("pg_dump to a pipe: %v", err)
	}

	spool, err := os.Create(filepath.Join(dir, "spool.dump"))
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	rec := newPGOffsetRecorder(spool, &pgDataOffsets{}, nil)
	for rest := piped; len(rest) > 0; rest = rest[min(len(rest), 1000):] { // many small writes
		if _, err := rec.Write(rest[:min(len(rest), 1000)]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rec.finish(); err != nil {
		t.Fatalf("parse: %v", err)
	}
	offsets := rec.p.offsets
	n, err := offsets.patch(spool)
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 { // SeedPostgres's three tables at least
		t.Fatalf("%d data offsets set, want one per table (3 or more)", n)
	}
	patched, err := os.ReadFile(spool.Name())
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(patched) != len(want) || len(patched) != len(piped) {
		t.Fatalf("sizes: patched %d, pg_dump --file %d, piped %d", len(patched), len(want), len(piped))
	}
	width := 1 + offsets.offSize
	changed := 0
	for i := range patched {
		if patched[i] != piped[i] {
			changed++
		}
	}
	for id, slot := range offsets.slots {
		got, exp := patched[slot:slot+int64(width)], want[slot:slot+int64(width)]
		if _, ok := offsets.blocks[id]; ok && !bytes.Equal(got, exp) {
			t.Errorf("entry %d: offset bytes % x, pg_dump --file wrote % x", id, got, exp)
		}
	}
	if changed > n*width {
		t.Errorf("%d bytes differ from the piped archive; only the %d offsets (%d bytes each) may", changed, n, width)
	}
}
