package audit

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

func newDirStore(t *testing.T) *fs.Store {
	t.Helper()
	s, err := fs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// auditObjects returns the keys under _coffer/audit/ and the event IDs in
// each object.
func auditObjects(t *testing.T, s storage.Store) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for obj, err := range s.List(t.Context(), Prefix) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(obj.Key, ".jsonl") {
			continue // a head
		}
		err := readObject(t.Context(), s, obj.Key, func(ev Event, _ int) error {
			out[obj.Key] = append(out[obj.Key], ev.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func record(t *testing.T, l *Log, n int) []string {
	t.Helper()
	before := len(readLinesIfAny(t, l.Path()))
	for range n {
		if err := l.Record(Event{Action: ActionBackup, Job: "db", Outcome: OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	for _, ev := range readLinesIfAny(t, l.Path())[before:] {
		ids = append(ids, ev.ID)
	}
	return ids
}

func readLinesIfAny(t *testing.T, path string) []Event {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return readLines(t, path)
}

func TestShipUploadsOnlyNewEvents(t *testing.T) {
	bucket := s3test.NewBucket(t, "primary")
	l := openLog(t, t.TempDir())
	host, _ := os.Hostname()

	first := record(t, l, 3)
	n, err := l.Ship(t.Context(), bucket)
	if err != nil || n != 3 {
		t.Fatalf("first Ship = %d, %v; want 3 events", n, err)
	}
	objs := auditObjects(t, bucket)
	if len(objs) != 1 {
		t.Fatalf("bucket holds %d audit objects, want 1: %v", len(objs), objs)
	}
	for key, ids := range objs {
		if !strings.HasPrefix(key, Prefix+keySegment(host)+"/") || !strings.HasSuffix(key, ".jsonl") {
			t.Errorf("object key %q, want %s<host>/<time>-<random>.jsonl", key, Prefix)
		}
		if strings.Join(ids, ",") != strings.Join(first, ",") {
			t.Errorf("object holds %v, want %v", ids, first)
		}
	}

	second := record(t, l, 2)
	n, err = l.Ship(t.Context(), bucket)
	if err != nil || n != 2 {
		t.Fatalf("second Ship = %d, %v; want 2 events", n, err)
	}
	objs = auditObjects(t, bucket)
	if len(objs) != 2 {
		t.Fatalf("bucket holds %d audit objects, want 2", len(objs))
	}
	found := false
	for _, ids := range objs {
		if strings.Join(ids, ",") == strings.Join(second, ",") {
			found = true
		}
	}
	if !found {
		t.Errorf("no object holds exactly the new events %v: %v", second, objs)
	}

	n, err = l.Ship(t.Context(), bucket)
	if err != nil || n != 0 {
		t.Fatalf("Ship with nothing new = %d, %v; want 0", n, err)
	}
	if got := len(auditObjects(t, bucket)); got != 2 {
		t.Errorf("Ship with nothing new left %d objects, want 2", got)
	}
}

func TestFailedShipKeepsEventsForTheNext(t *testing.T) {
	bucket := s3test.NewBucket(t, "primary")
	dir := t.TempDir()
	l := openLog(t, dir)
	shipped := record(t, l, 1)
	if _, err := l.Ship(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	offset, _ := os.ReadFile(filepath.Join(dir, "audit.shipped"))

	pending := record(t, l, 2)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n, err := l.Ship(ctx, bucket)
	if err == nil || n != 0 {
		t.Fatalf("Ship with a cancelled context = %d, %v; want 0 and an error", n, err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "audit.shipped")); string(after) != string(offset) {
		t.Errorf("failed Ship moved the offset from %q to %q", offset, after)
	}
	if got := len(auditObjects(t, bucket)); got != 1 {
		t.Errorf("failed Ship left %d objects, want 1 (the earlier one)", got)
	}

	n, err = l.Ship(t.Context(), bucket)
	if err != nil || n != 2 {
		t.Fatalf("Ship after the failure = %d, %v; want the 2 pending events", n, err)
	}
	evs, err := Read(t.Context(), "", []storage.Store{bucket}, zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(evs), strings.Join(append(shipped, pending...), ","); got != want {
		t.Errorf("bucket holds %s, want %s", got, want)
	}
}

func TestShipLeavesATrailingPartialLineForLater(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	store := newDirStore(t)
	record(t, l, 1)
	// Another process is half-way through writing a line.
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	half := `{"id":"20260101T000000.000000000Z-aaaaaaaaaaaa","time":"2026-01-01T00:00:00Z","action":"backup"`
	if _, err := f.WriteString(half); err != nil {
		t.Fatal(err)
	}
	if n, err := l.Ship(t.Context(), store); err != nil || n != 1 {
		t.Fatalf("Ship = %d, %v; want 1", n, err)
	}
	if _, err := f.WriteString("}\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if n, err := l.Ship(t.Context(), store); err != nil || n != 1 {
		t.Fatalf("Ship after the line was finished = %d, %v; want 1", n, err)
	}
}

func TestShipRefusesAMalformedLine(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	store := newDirStore(t)
	record(t, l, 2)
	if _, err := l.Ship(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(l.Path(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "garbage\n")
	f.Close()
	n, err := l.Ship(t.Context(), store)
	if err == nil || n != 0 || !strings.Contains(err.Error(), l.Path()) || !strings.Contains(err.Error(), "line 3:") {
		t.Fatalf("Ship = %d, %v; want an error naming %s line 3", n, err, l.Path())
	}
}
