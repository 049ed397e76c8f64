package audit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/internal/s3test"
	"github.com/coffer-backup/coffer/storage"
)

var zeroTime time.Time

func ids(evs []Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, ev.ID)
	}
	return strings.Join(s, ",")
}

func TestReadMergesLocalAndBucketsWithoutDuplicates(t *testing.T) {
	bucket := s3test.NewBucket(t, "primary")
	here := openLog(t, t.TempDir())
	shipped := record(t, here, 3)
	if _, err := here.Ship(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	localOnly := record(t, here, 1)

	// Another host shipped its own events to the same bucket.
	other := openLog(t, t.TempDir())
	other.host = "other-host"
	if err := other.Record(Event{Action: ActionLeaseAcquired, Job: "db"}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Ship(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	otherEvs := readLines(t, other.Path())

	// The bucket is given twice, as two jobs sharing a destination would.
	evs, err := Read(t.Context(), here.Path(), []storage.Store{bucket, bucket}, zeroTime)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(shipped, localOnly...), otherEvs[0].ID)
	if len(evs) != len(want) {
		t.Fatalf("Read returned %d events (%s), want %d", len(evs), ids(evs), len(want))
	}
	for _, id := range want {
		if !slices.ContainsFunc(evs, func(ev Event) bool { return ev.ID == id }) {
			t.Errorf("event %s missing", id)
		}
	}
	if !slices.IsSortedFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) }) {
		t.Errorf("events not in time order: %s", ids(evs))
	}
}

func TestReadSince(t *testing.T) {
	l := openLog(t, t.TempDir())
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []int{3, 1, 2, 0} { // recorded out of order
		if err := l.Record(Event{Time: base.AddDate(0, 0, d), Action: ActionDrill, Detail: "day " + string(rune('0'+d))}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := Read(t.Context(), l.Path(), nil, base.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Detail)
	}
	if strings.Join(got, ",") != "day 1,day 2,day 3" {
		t.Errorf("since day 1: got %v, want day 1, day 2, day 3 in order", got)
	}
}

// TestFirstByJob: each job's earliest event, however old, from the local
// log and from another host's events shipped to a store; events of no job
// are left out.
func TestFirstByJob(t *testing.T) {
	store := newDirStore(t)
	base := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	other := openLog(t, t.TempDir())
	other.host = "other-host"
	for _, ev := range []Event{
		{Time: base, Action: ActionBackup, Job: "app", Outcome: OutcomeFailed},
		{Time: base.AddDate(0, 0, -3), Action: ActionConfigReload},
	} {
		if err := other.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.Ship(t.Context(), store); err != nil {
		t.Fatal(err)
	}
	here := openLog(t, t.TempDir())
	for _, ev := range []Event{
		{Time: base.AddDate(2, 0, 0), Action: ActionBackup, Job: "app", Outcome: OutcomeOK},
		{Time: base.AddDate(1, 0, 0), Action: ActionPrune, Job: "db", Outcome: OutcomeDeleted},
		{Time: base.AddDate(1, 1, 0), Action: ActionBackup, Job: "db", Outcome: OutcomeOK},
	} {
		if err := here.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	first, err := FirstByJob(t.Context(), here.Path(), []storage.Store{store})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"app": base, "db": base.AddDate(1, 0, 0)}
	if len(first) != len(want) {
		t.Errorf("FirstByJob = %v, want %v", first, want)
	}
	for job, w := range want {
		if !first[job].Equal(w) {
			t.Errorf("job %s: first event %s, want %s", job, first[job], w)
		}
	}
}

func TestReadWithoutLocalLog(t *testing.T) {
	evs, err := Read(t.Context(), filepath.Join(t.TempDir(), FileName), nil, zeroTime)
	if err != nil || len(evs) != 0 {
		t.Fatalf("Read of a missing local log = %v, %v; want no events, no error", evs, err)
	}
}

func TestReadNamesTheMalformedLine(t *testing.T) {
	good := `{"id":"a","time":"2026-01-01T00:00:00Z","action":"backup"}`
	t.Run("local file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, []byte(good+"\n{\"id\": \"b\", \n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Read(t.Context(), path, nil, zeroTime)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2:") {
			t.Fatalf("Read: %v; want an error naming %s line 2", err, path)
		}
	})
	t.Run("event without time", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, []byte(`{"id":"a","action":"backup"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(t.Context(), path, nil, zeroTime); err == nil || !strings.Contains(err.Error(), "line 1:") {
			t.Fatalf("Read: %v; want an error about line 1", err)
		}
	})
	t.Run("object", func(t *testing.T) {
		store := newDirStore(t)
		key := Prefix + "h/20260101T000000.000Z-0000.jsonl"
		if _, err := store.Put(t.Context(), key, strings.NewReader(good+"\n"+good+"\nnot json\n")); err != nil {
			t.Fatal(err)
		}
		_, err := Read(t.Context(), "", []storage.Store{store}, zeroTime)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "line 3:") {
			t.Fatalf("Read: %v; want an error naming %s line 3", err, key)
		}
	})
}

func TestDestinationsAreEachJobsFirstOnce(t *testing.T) {
	cfg := &config.Config{
		JobOrder: []string{"web", "app", "db", "empty"},
		Jobs: map[string]*config.Job{
			"web":   {Destinations: []string{"nas", "offsite"}},
			"app":   {Destinations: []string{"offsite", "nas"}},
			"db":    {Destinations: []string{"nas"}},
			"empty": {},
		},
	}
	if got, want := Destinations(cfg), []string{"nas", "offsite"}; !slices.Equal(got, want) {
		t.Errorf("Destinations = %v, want %v", got, want)
	}
}
