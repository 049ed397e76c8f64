package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

var errBoom = errors.New("boom: backup payload is corrupt")

// failAfter returns the first n bytes of data, then errBoom.
func failAfter(data []byte, n int) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), errReader{errBoom})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// dump runs src.Dump into memory and fails the test on error.
func dump(t *testing.T, src config.Source) (dumpinfo.Info, []byte) {
	t.Helper()
	info, data, _ := dumpCounted(t, src)
	return info, data
}

// dumpCounted is dump that also returns the Tables Dump counted, which
// must be there for every source but exec.
func dumpCounted(t *testing.T, src config.Source) (dumpinfo.Info, []byte, *dumpinfo.Tables) {
	t.Helper()
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	info, err := s.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if info.ServerVersion == "" || info.ToolVersion == "" || info.Format == "" {
		t.Fatalf("Describe returned an incomplete Info: %+v", info)
	}
	var buf bytes.Buffer
	tables, err := s.Dump(ctx, &buf)
	if err != nil {
		t.Fatalf("Dump: %v", err)
	}
	if buf.Len() == 0 {
		t.Fatal("Dump wrote nothing")
	}
	if tables == nil && info.Kind != "exec" {
		t.Fatal("Dump returned no Tables")
	}
	return info, buf.Bytes(), tables
}

// load prepares target and loads data into it, failing the test on error.
func load(t *testing.T, info dumpinfo.Info, conn config.Source, target string, data []byte) {
	t.Helper()
	l, err := snapshot.NewLoader(info, conn, target, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Prepare(ctx); err != nil {
		t.Fatalf("Prepare %s: %v", l, err)
	}
	if err := l.Load(ctx, bytes.NewReader(data)); err != nil {
		t.Fatalf("Load %s: %v", l, err)
	}
}

// sameHashes fails the test unless got equals want.
func sameHashes(t *testing.T, want, got map[string]string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the source has no tables")
	}
	if !maps.Equal(want, got) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if want[k] != got[k] {
				t.Errorf("%s: source %q, restored %q", k, want[k], got[k])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: only in the restored copy", k)
			}
		}
	}
}

// childProcess is a process started by this test binary.
type childProcess struct {
	pid     int
	cmdline []string
	environ []string
}

// findChild waits until a direct child of this process named comm exists.
// When want is given, only a child whose environment holds every entry of
// it counts, so a tool left over from an earlier test cannot be mistaken
// for this test's.
func findChild(t *testing.T, comm string, want ...string) childProcess {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, ok := lookChild(comm, want...); ok {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no child process %q appeared", comm)
	return childProcess{}
}

func lookChild(comm string, want ...string) (childProcess, bool) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if i < 0 || j < i || s[i+1:j] != comm {
			continue
		}
		f := strings.Fields(s[j+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		dir := filepath.Dir(p)
		pid, _ := strconv.Atoi(filepath.Base(dir))
		cmd, err1 := os.ReadFile(filepath.Join(dir, "cmdline"))
		env, err2 := os.ReadFile(filepath.Join(dir, "environ"))
		if err1 != nil || err2 != nil || !hasAll(splitNul(env), want) {
			continue
		}
		return childProcess{pid: pid, cmdline: splitNul(cmd), environ: splitNul(env)}, true
	}
	return childProcess{}, false
}

func hasAll(env, want []string) bool {
	for _, w := range want {
		if !slices.Contains(env, w) {
			return false
		}
	}
	return true
}

func splitNul(b []byte) []string { return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00") }

// noChild fails the test if a child named comm is still running.
func noChild(t *testing.T, comm string) {
	t.Helper()
	if c, ok := lookChild(comm); ok {
		t.Errorf("child %s (pid %d) still running", comm, c.pid)
	}
}

// blockedDump starts s.Dump into a pipe nobody reads yet, so the dump tool
// blocks once the pipe is full. Reading the returned reader to the end
// returns Dump's error through done.
func blockedDump(t *testing.T, s snapshot.Source) (*io.PipeReader, <-chan error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := s.Dump(context.Background(), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() { pr.Close() })
	return pr, done
}
