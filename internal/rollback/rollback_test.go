package rollback

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestObserve(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	day1 := time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := Key("app", "s3://acme-db")
	if w := s.Observe(key, "app", Mark{Sequence: 14, ID: "b14"}, day1); w != nil {
		t.Fatalf("first observation warned: %s", w)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, FileName)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, mode %v; want 0600", err, st.Mode())
	}

	// Another process (a later command) sees the newest visible backup
	// go back to 12.
	s2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := s2.Observe(key, "app", Mark{Sequence: 12, ID: "b12"}, day1.Add(48*time.Hour))
	want := "possible rollback of job app: newest visible backup is seq 12 (id b12), but seq 14 (id b14) was seen on 2026-11-20"
	if w == nil || w.String() != want {
		t.Fatalf("warning %v, want %q", w, want)
	}
	if s2.Observe(Key("app", "s3://other-tenant"), "app", Mark{Sequence: 1, ID: "x"}, day1) != nil {
		t.Error("a job of the same name elsewhere warned")
	}
	// The warning keeps the mark: it repeats until a newer backup shows.
	if s2.Observe(key, "app", Mark{Sequence: 12, ID: "b12"}, day1) == nil {
		t.Error("second look at the rolled-back bucket did not warn")
	}
	if w := s2.Observe(key, "app", Mark{Sequence: 15, ID: "b15"}, day1); w != nil {
		t.Errorf("a newer backup warned: %s", w)
	}
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	s3, _ := Load(dir)
	if m := s3.jobs[key]; m.Sequence != 15 || m.ID != "b15" {
		t.Fatalf("mark after save %+v, want seq 15", m)
	}
}

// TestSaveMerges: a process holding an older view does not lower the mark
// another process saved meanwhile.
func TestSaveMerges(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	a, _ := Load(dir)
	b, _ := Load(dir)
	key := Key("app", "here")
	a.Observe(key, "app", Mark{Sequence: 9, ID: "b9"}, now)
	b.Observe(key, "app", Mark{Sequence: 5, ID: "b5"}, now)
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	c, _ := Load(dir)
	if w := c.Observe(key, "app", Mark{Sequence: 5, ID: "b5"}, now); w == nil || w.Seen.Sequence != 9 {
		t.Fatalf("mark was lowered by a stale writer: %v", w)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state directory holds %v, want only %s", entries, FileName)
	}
}

func TestDamagedFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte("{not json"), 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "delete it to start over") {
		t.Fatalf("damaged file: %v", err)
	}
}
