package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// TestScratchCountsTablesAsTheyLoad: a restore into a drill's scratch
// database, parallel or one stream, counts each table as soon as its data
// is loaded, so that after the restore nothing is left to count: the
// counts made beside the restore are every table's, equal to the
// source's, and the scratch's Tables reports them. A later Tables counts
// afresh (a table changed since shows).
func TestScratchCountsTablesAsTheyLoad(t *testing.T) {
	for _, jobs := range []int{2, 1} {
		t.Run(fmt.Sprintf("jobs-%d", jobs), func(t *testing.T) { testScratchCounts(t, jobs) })
	}
}

func testScratchCounts(t *testing.T, jobs int) {
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 20000)
	pgDump, err := lookTool("pg_dump")
	if err != nil {
		t.Fatal(err)
	}
	data, err := exec.Command(pgDump, "--format=custom", "--compress=0", "-h", src.Host, "-p", strconv.Itoa(src.Port), "-U", src.User, src.Database).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	want := map[[2]string]int64{{"public", "customers"}: 2000, {"public", "orders"}: 20000, {"public", "Odd Values ü"}: 0}
	name := fmt.Sprintf("%s_early_counts_%d", src.Database, jobs)
	t.Cleanup(func() { dbtest.DropPostgresDB(t, name) })
	s, err := newPostgresScratch(dumpinfo.Info{Kind: "postgres", Format: "pg-custom"}, src, name)
	if err != nil {
		t.Fatal(err)
	}
	l := s.Loader()
	l.(ParallelLoader).SetParallel(Parallel{Jobs: jobs, SpoolDir: t.TempDir()}, int64(len(data)), 0)
	ctx := context.Background()
	if err := l.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Load(ctx, bytes.NewReader(data)); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The counter may still be counting the last table when Load returns.
	counted := func() int {
		s.l.counts.mu.Lock()
		defer s.l.counts.mu.Unlock()
		return len(s.l.counts.counts)
	}
	for deadline := time.Now().Add(20 * time.Second); counted() < len(want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	s.l.counts.mu.Lock()
	early := maps.Clone(s.l.counts.counts)
	s.l.counts.mu.Unlock()
	if len(early) != len(want) {
		t.Fatalf("counted beside the restore: %v, want every table (%v)", early, want)
	}
	odd := early[[2]string{"public", "Odd Values ü"}]
	want[[2]string{"public", "Odd Values ü"}] = odd // its rows are SeedPostgres's own
	if odd < 1 || !maps.Equal(early, want) {
		t.Fatalf("counted beside the restore: %v, want %v", early, want)
	}
	got, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range got.Counts {
		if c.Rows != early[[2]string{"public", c.Name[len("public."):]}] {
			t.Errorf("Tables: %s has %d rows, counted %d beside the restore", c.Name, c.Rows, early[[2]string{"public", c.Name[len("public."):]}])
		}
	}
	conn := dbtest.PostgresConnect(t, dbtest.PostgresSource(t, name))
	if _, err := conn.Exec(ctx, "DELETE FROM orders WHERE id <= 10"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	again, err := s.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again.Counts {
		if c.Name == "public.orders" && c.Rows != 20000-10 {
			t.Errorf("Tables after deleting 10 orders: %d, want %d", c.Rows, 20000-10)
		}
	}
	if err := s.Drop(ctx); err != nil {
		t.Fatal(err)
	}
}
