package audit

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// readLines returns the events of a log file, failing on any line that is
// not a complete event.
func readLines(t *testing.T, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var evs []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxLine)
	for n := 1; sc.Scan(); n++ {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s line %d is not an event (%v): %.80q", path, n, err, sc.Text())
		}
		evs = append(evs, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return evs
}

func openLog(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConcurrentRecordWritesOneCompleteLineEach(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- l.Record(Event{Action: ActionBackup, Job: "db", Detail: strings.Repeat(string(rune('a'+i)), 4000)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	evs := readLines(t, l.Path())
	if len(evs) != 20 {
		t.Fatalf("got %d lines, want 20", len(evs))
	}
	host, _ := os.Hostname()
	ids := map[string]bool{}
	for _, ev := range evs {
		if ev.ID == "" || ev.Time.IsZero() || ev.User == "" || ev.Host != host {
			t.Errorf("Record did not fill id, time, host (%q) and user: %+v", host, ev)
		}
		if len(ev.Detail) != 4000 || strings.Trim(ev.Detail, ev.Detail[:1]) != "" {
			t.Errorf("event %s: detail mixed with another event's", ev.ID)
		}
		ids[ev.ID] = true
	}
	if len(ids) != 20 {
		t.Errorf("got %d distinct ids, want 20", len(ids))
	}
}

// Two Logs on one directory have separate file descriptions, like two
// processes: without O_APPEND they would overwrite each other's lines.
func TestTwoWritersOnOneLogLoseNothing(t *testing.T) {
	dir := t.TempDir()
	a, b := openLog(t, dir), openLog(t, dir)
	var wg sync.WaitGroup
	for i := range 50 {
		l := a
		if i%2 == 1 {
			l = b
		}
		wg.Go(func() {
			if err := l.Record(Event{Action: ActionPrune, Detail: strings.Repeat("x", 1000)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if evs := readLines(t, filepath.Join(dir, FileName)); len(evs) != 50 {
		t.Fatalf("got %d events, want 50", len(evs))
	}
}

func TestLogFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	l := openLog(t, dir)
	if err := l.Record(Event{Action: ActionRestore}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Ship(t.Context(), newDirStore(t)); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{
		dir:                                 0o700 | os.ModeDir,
		l.Path():                            0o600,
		filepath.Join(dir, "audit.shipped"): 0o600,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}

func TestOpenMakesAnExistingLogPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	openLog(t, dir)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after Open, want 0600", st.Mode().Perm())
	}
}

func TestRecordKeepsGivenFieldsAndRefusesNoAction(t *testing.T) {
	l := openLog(t, t.TempDir())
	at := time.Date(2026, 3, 1, 2, 0, 0, 0, time.FixedZone("CET", 3600))
	in := Event{ID: "given", Time: at, Host: "h1", User: "u1", Action: ActionPrune, Job: "db",
		BackupID: "20260101T020000.000Z-0001", Destination: "offsite", Outcome: OutcomeOK, Rule: "older than keep_within 28d"}
	if err := l.Record(in); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(Event{Job: "db"}); err == nil {
		t.Error("Record accepted an event without an action")
	}
	evs := readLines(t, l.Path())
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	got := evs[0]
	if !got.Time.Equal(at) {
		t.Errorf("time %v, want %v", got.Time, at)
	}
	got.Time = at
	in.Seq, in.Prev = 1, Genesis // the first event of a log chains to Genesis
	if got != in {
		t.Errorf("recorded %+v, want %+v", got, in)
	}
}

func TestOpenIsolatesATornLastLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path, []byte(`{"id":"x","ti`), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, dir)
	if err := l.Record(Event{Action: ActionBackup}); err != nil {
		t.Fatal(err)
	}
	// The new event chains to the torn line, which proves it a torn write
	// (a crash, a full disk): Read skips it, so that one full disk does
	// not stop the trail from being read or shipped for good.
	evs, err := Read(t.Context(), path, nil, time.Time{})
	if err != nil || len(evs) != 1 || evs[0].Action != ActionBackup {
		t.Fatalf("Read = %+v, %v; want the one event after the torn line", evs, err)
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var ev Event
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &ev) != nil || ev.Action != ActionBackup {
		t.Fatalf("the new event is not a line of its own:\n%s", b)
	}
}

// TestReadRefusesAnUnchainedBadLine: a line that does not decode and that
// the next event does not chain to was not torn by a crash but put there
// (or edited): Read names it.
func TestReadRefusesAnUnchainedBadLine(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, dir)
	for range 2 {
		if err := l.Record(Event{Action: ActionBackup}); err != nil {
			t.Fatal(err)
		}
	}
	path := l.Path()
	b, _ := os.ReadFile(path)
	first, rest, _ := strings.Cut(string(b), "\n")
	if err := os.WriteFile(path, []byte(first+"\n{\"id\":\"x\",\"ti\n"+rest), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(t.Context(), path, nil, time.Time{}); err == nil || !strings.Contains(err.Error(), "line 2:") {
		t.Fatalf("Read: %v, want an error about line 2", err)
	}
}
