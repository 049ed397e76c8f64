package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

func execSource(t *testing.T, src config.Source) snapshot.Source {
	t.Helper()
	src.Type = "exec"
	s, err := snapshot.NewSource(src)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExecDump(t *testing.T) {
	s := execSource(t, config.Source{
		Command:   []string{"sh", "-c", `printf 'dump of %s' "$DB_NAME"`},
		Env:       map[string]config.Secret{"DB_NAME": config.NewSecret("shop")},
		Extension: "sql",
	})
	info, err := s.Describe(context.Background())
	if err != nil || info.Kind != "exec" || info.Format != "sql" {
		t.Fatalf("Describe = %+v, %v", info, err)
	}
	var buf bytes.Buffer
	tables, err := s.Dump(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if tables != nil {
		t.Errorf("an exec dump returned Tables %+v, want none", tables)
	}
	if buf.String() != "dump of shop" {
		t.Fatalf("dump = %q", buf.String())
	}
	info, _ = execSource(t, config.Source{Command: []string{"true"}}).Describe(context.Background())
	if info.Format != "dump" {
		t.Fatalf("default format %q, want dump", info.Format)
	}
}

// Bytes written before a non-zero exit do not make a dump.
func TestExecNonZeroExit(t *testing.T) {
	s := execSource(t, config.Source{
		Command: []string{"sh", "-c", `printf 'partial dump'; echo "disk on fire: $TOKEN" >&2; exit 1`},
		Env:     map[string]config.Secret{"TOKEN": config.NewSecret("tok-7f3a-secret")},
	})
	var buf bytes.Buffer
	_, err := s.Dump(context.Background(), &buf)
	if err == nil {
		t.Fatal("Dump succeeded after exit 1")
	}
	if buf.String() != "partial dump" {
		t.Errorf("wrote %q", buf.String())
	}
	msg := err.Error()
	if !strings.Contains(msg, "exit status 1") || !strings.Contains(msg, "disk on fire") {
		t.Errorf("error lacks the exit status or stderr: %v", err)
	}
	if strings.Contains(msg, "tok-7f3a-secret") || !strings.Contains(msg, "[REDACTED]") {
		t.Errorf("error does not redact the secret: %v", err)
	}
}

func TestExecKilledBySignal(t *testing.T) {
	s := execSource(t, config.Source{Command: []string{"sh", "-c", `printf x; kill -9 $$`}})
	if _, err := s.Dump(context.Background(), io.Discard); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Dump of a killed command: %v", err)
	}
}

// Cancelling the context kills the command and its children (the sleep
// holding stdout open too) and fails the dump.
func TestExecCancel(t *testing.T) {
	s := execSource(t, config.Source{Command: []string{"sh", "-c", `echo started; sleep 60; echo done`}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &signalWriter{first: make(chan struct{})}
	done := make(chan error, 1)
	go func() { _, err := s.Dump(ctx, w); done <- err }()
	<-w.first
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dump after cancel: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dump took %v to return after cancel", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Dump did not return after cancel")
	}
}

type signalWriter struct {
	first chan struct{}
	n     int
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		close(w.first)
	}
	w.n += len(p)
	return len(p), nil
}

// A write error stops the command and is returned.
func TestExecWriteError(t *testing.T) {
	s := execSource(t, config.Source{Command: []string{"yes", "coffer"}})
	done := make(chan error, 1)
	go func() { _, err := s.Dump(context.Background(), &failingWriter{left: 1 << 20}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, errBoom) {
			t.Fatalf("Dump into a failing writer: %v, want errBoom", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Dump did not stop after a write error")
	}
	noChild(t, "yes")
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		return 0, errBoom
	}
	w.left -= len(p)
	return len(p), nil
}

func TestExecNoLoader(t *testing.T) {
	if _, err := snapshot.NewLoader(dumpinfo.Info{Kind: "exec", Format: "dump"}, config.Source{}, "x", false); err == nil {
		t.Fatal("NewLoader accepted an exec dump")
	}
	if _, err := snapshot.NewSource(config.Source{Type: "exec"}); err == nil {
		t.Fatal("NewSource accepted an empty command")
	}
	if _, err := snapshot.NewSource(config.Source{Type: "oracle"}); err == nil {
		t.Fatal("NewSource accepted an unknown type")
	}
}
