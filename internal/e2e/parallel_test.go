package e2e

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/internal/dbtest"
	"github.com/coffer-backup/coffer/internal/testenv"
)

// spoolFiles lists the parallel restore's spool files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "coffer-restore-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestParallelRestore: `coffer restore --jobs 2` of a PostgreSQL
// custom-format backup restores rows equal to the source's through a spool
// file that is gone afterwards, and says so in --json (once the dump has
// tables enough for the workers; with too few it streams, and says why);
// a restore stopped
// by SIGTERM while pg_restore runs exits, and leaves no spool file.
func TestParallelRestore(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testenv.S3(t, "primary"), testenv.S3(t, "offsite"))
	src := dbtest.PostgresSource(t, dbtest.CreatePostgresDB(t))
	dbtest.SeedPostgres(t, src, 200_000)
	e.writeConfig("app", sourceYAML(src))
	e.backup("app")
	spool := t.TempDir()

	// Three tables are too few for two workers: it streams, and says why.
	few := src.Database + "_few"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, few) })
	out, stderr, code := e.run("restore", "--job", "app", "--identity", e.identity, "--target", few, "--jobs", "2", "--spool-dir", spool)
	if code != 0 || !strings.Contains(out, "streamed (no parallel restore): the dump holds 3 tables") {
		t.Fatalf("restore --jobs 2 of a 3-table backup: exit %d, want a stream and the reason\n%s%s", code, out, stderr)
	}

	// Two more tables: now the workers have tables enough to share.
	conn := dbtest.PostgresConnect(t, src)
	for _, tbl := range []string{"lessons", "rooms"} {
		if _, err := conn.Exec(t.Context(), "CREATE TABLE "+tbl+" (id int PRIMARY KEY, note text); INSERT INTO "+tbl+" SELECT i, md5(i::text) FROM generate_series(1, 5000) i"); err != nil {
			t.Fatal(err)
		}
	}
	want := dbtest.PostgresTableHashes(t, src)
	e.backup("app")

	target := src.Database + "_par"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target) })
	out, stderr, code = e.run("restore", "--job", "app", "--identity", e.identity, "--target", target, "--jobs", "2", "--spool-dir", spool, "--json")
	if code != 0 {
		t.Fatalf("restore --jobs 2: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Load struct {
			Jobs     int    `json:"jobs"`
			Fallback string `json:"fallback"`
			Steps    []struct {
				Name string `json:"name"`
			} `json:"steps"`
		} `json:"load"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("restore --json: %v\n%s", err, out)
	}
	// The schema is restored beside the spool; its step shows only when
	// it was still running as the spool ended.
	var steps []string
	for _, s := range rep.Load.Steps {
		if s.Name != "pg_restore pre-data (schema)" {
			steps = append(steps, s.Name)
		}
	}
	if rep.Load.Jobs != 2 || rep.Load.Fallback != "" ||
		!slices.Equal(steps, []string{"download and spool", "pg_restore data", "pg_restore post-data (indexes, constraints)"}) {
		t.Errorf("load report %+v, want 2 workers and the steps spool, (pre-data,) data, post-data", rep.Load)
	}
	if got := dbtest.PostgresTableHashes(t, dbtest.PostgresSource(t, target)); !maps.Equal(got, want) {
		t.Error("the parallel restore's rows differ from the source's")
	}
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("spool files left after the restore: %v", left)
	}

	// SIGTERM as soon as the spool file exists (spooling or restoring).
	target2 := src.Database + "_term"
	t.Cleanup(func() { dbtest.DropPostgresDB(t, target2) })
	cmd := exec.Command(cofferBin, "restore", "--job", "app", "--identity", e.identity, "--target", target2,
		"--jobs", "2", "--spool-dir", spool, "--config", e.config)
	cmd.Env = append(os.Environ(), e.extraEnv...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(spoolFiles(t, spool)) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no spool file appeared\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the restore finished before SIGTERM reached it: nothing was tested")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("restore did not stop within 30 s of SIGTERM\n%s", errb.String())
	}
	if left := spoolFiles(t, spool); len(left) != 0 {
		t.Errorf("spool files left after SIGTERM: %v\n%s", left, errb.String())
	}
	// The restore created target2 (the spool exists only after that):
	// stopped, it drops it rather than leave a partly loaded database.
	if dbtest.PostgresDBExists(t, target2) {
		t.Errorf("database %s, created by the restore SIGTERM stopped, is still there\n%s", target2, errb.String())
	}
}
