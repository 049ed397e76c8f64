package audit

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWriteCSV(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	evs := []Event{
		{ID: "1", Time: time.Date(2026, 3, 1, 3, 4, 5, 600, cet), Host: "db1", User: "coffer", Action: ActionPrune,
			Job: "shop", BackupID: "20260101T020000.000Z-7f3a", Destination: "offsite", Outcome: OutcomeOK,
			Rule: "older than keep_within 28d", Detail: "a, \"quoted\"\nmultiline detail"},
		{ID: "2", Time: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), Host: "=cmd|' /C calc'!A0", User: "+1",
			Action: ActionRestore, Job: "-2", BackupID: "@SUM(A1)", Detail: "\t=1+1"},
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, evs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, buf.String())
	}
	want := [][]string{
		{"time", "host", "user", "action", "job", "backup_id", "destination", "outcome", "rule", "detail"},
		{"2026-03-01T02:04:05Z", "db1", "coffer", "prune", "shop", "20260101T020000.000Z-7f3a", "offsite", "ok",
			"older than keep_within 28d", "a, \"quoted\"\nmultiline detail"},
		{"2026-03-02T00:00:00Z", "'=cmd|' /C calc'!A0", "'+1", "restore", "'-2", "'@SUM(A1)", "", "", "", "'\t=1+1"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), buf.String())
	}
	for i := range want {
		if !slices.Equal(rows[i], want[i]) {
			t.Errorf("row %d:\n got %q\nwant %q", i, rows[i], want[i])
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no events: got %q, want []", buf.String())
	}
	in := []Event{{ID: "1", Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Action: ActionPurge, Job: "shop", Rule: ""}}
	buf.Reset()
	if err := WriteJSON(&buf, in); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, buf.String())
	}
	if len(out) != 1 || out[0]["action"] != "purge" || out[0]["job"] != "shop" || out[0]["backup_id"] != "" ||
		out[0]["time"] != "2026-03-01T00:00:00Z" {
		t.Errorf("got %v", out)
	}
}
